"""The package layering of docs/architecture.md holds: no sub-package imports one above it.

The layer table is read from the ``layers`` block of docs/architecture.md, so the document
and this check cannot drift apart. Every import statement of every module is checked, the
function-level (lazy) ones included, by parsing the source; and a fresh interpreter checks
that importing the bottom layers pulls in nothing above them.
"""

import ast
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "eurollm_jax")


def _layers() -> dict[str, int]:
    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as f:
        text = f.read()
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```layers block"
    return {name: i for i, line in enumerate(block.group(1).splitlines()) for name in line.split()}


def _units() -> list[str]:
    return sorted(
        n[:-3] if n.endswith(".py") else n
        for n in os.listdir(PKG)
        if not n.startswith(("_", ".")) and (n.endswith(".py") or os.path.isdir(os.path.join(PKG, n)))
        and n != "__pycache__"
    )


def _imports(unit: str):
    """(file, line, imported top-level unit) for every eurollm_jax import in ``unit``."""
    path = os.path.join(PKG, unit)
    files = [path + ".py"] if os.path.isfile(path + ".py") else [
        os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(".py")
    ]
    for file in files:
        with open(file, encoding="utf-8") as f:
            tree = ast.parse(f.read(), file)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "eurollm_jax" and len(parts) > 1:
                    yield os.path.relpath(file, ROOT), node.lineno, parts[1]


def test_every_sub_package_has_a_layer():
    layers = _layers()
    missing = [u for u in _units() if u not in layers]
    assert not missing, f"add {missing} to the layers block of docs/architecture.md"


@pytest.mark.parametrize("unit", _units())
def test_no_import_points_up_or_sideways(unit):
    layers = _layers()
    bad = [
        f"{file}:{line} imports eurollm_jax.{other} (layer {layers.get(other)}) from {unit} "
        f"(layer {layers[unit]})"
        for file, line, other in _imports(unit)
        if other != unit and layers.get(other, 99) >= layers[unit]
    ]
    assert not bad, "\n".join(bad)


def test_bottom_layers_import_nothing_above_them():
    code = (
        "import sys; import eurollm_jax.documents, eurollm_jax.tokenizer; "
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('eurollm_jax.')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = set(ast.literal_eval(out.stdout.strip().splitlines()[-1]))
    layers = _layers()
    assert all(layers[m] <= layers["tokenizer"] for m in loaded), loaded
    assert "jax" not in out.stdout
