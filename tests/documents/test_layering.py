"""The documents package is the bottom layer: in a fresh interpreter, importing and using it
loads no stage package, and the tokenizer (which reads through it) does not load data."""

import json
import pathlib
import subprocess
import sys

REPO = str(pathlib.Path(__file__).resolve().parents[2])

_PROBE = r"""
import json, sys
{body}
print(json.dumps(sorted({{m.split(".")[1] for m in sys.modules
                         if m.startswith("eurollm_jax.")}})))
"""


def loaded_subpackages(body: str) -> set[str]:
    """The ``eurollm_jax`` sub-packages a fresh interpreter holds after running ``body``."""
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(body=body)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_documents_imports_no_stage_package(tmp_path):
    # Import, then read and write every file format: the lazy imports must stay below too.
    body = f"""
import eurollm_jax.documents as d
for fmt in d.FORMATS:
    path = {str(tmp_path)!r} + "/x." + fmt
    with d.ShardWriter(path) as w:
        w.write(d.Document("1", "text", {{"lang": "en"}}).to_record())
    assert [x.text for x in d.iter_documents(path)] == ["text"], fmt
"""
    loaded = loaded_subpackages(body)
    # schema: ReaderConfig is a typed config section (schema is a bottom-layer utility too)
    assert loaded <= {"documents", "fileio", "languages", "schema"}, loaded
    assert not loaded & {"tokenizer", "data", "filtering"}


def _corpus_file(tmp_path) -> str:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"id": "1", "text": "Tere", "lang": "et"}) + "\n")
    return str(path)


def test_tokenizer_reads_corpora_without_importing_data(tmp_path):
    """Was a cycle: tokenizer.train imported eurollm_jax.data's reader inside functions."""
    body = f"""
from eurollm_jax.tokenizer import jsonl_corpus
from eurollm_jax.tokenizer.fertility import heldout_texts
assert list(jsonl_corpus([{_corpus_file(tmp_path)!r}])()) == [("Tere", "et")]
assert heldout_texts([{_corpus_file(tmp_path)!r}]) == {{"et": ["Tere"]}}
"""
    loaded = loaded_subpackages(body)
    assert "documents" in loaded and "tokenizer" in loaded
    assert "data" not in loaded and "filtering" not in loaded, loaded


def test_filtering_reads_through_documents_without_data_or_tokenizer(tmp_path):
    body = f"""
import eurollm_jax.filtering.runner
from eurollm_jax.filtering import read_documents
assert [d.text for d in read_documents({_corpus_file(tmp_path)!r})] == ["Tere"]
"""
    loaded = loaded_subpackages(body)
    assert "documents" in loaded
    assert "data" not in loaded and "tokenizer" not in loaded, loaded
