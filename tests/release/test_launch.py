"""``python -m launch.release``: writes the artefacts and prints the warnings; stale results
stop it with exit status 2 and a message naming them."""

import os
import subprocess
import sys

import pytest

from tests.release.helpers import make_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "launch.release", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_entry_point_writes_the_release_and_refuses_stale_results(tmp_path):
    pytest.importorskip("huggingface_hub")
    p = make_run(tmp_path)
    out = tmp_path / "release"
    args = [f"--workdir={tmp_path}", f"--export={p['export']}", f"--output={out}",
            "--config=configs/release_demo.py", f"--config.registry={p['registry']}"]
    proc = _run(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING: ethics review status not recorded" in proc.stdout
    assert "(6 evaluation results," in proc.stdout
    assert {"README.md", "DATASHEET.md", "energy.json", "release.json"} <= set(os.listdir(out))
    with open(os.path.join(p["export"], "model.safetensors"), "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))
    proc = _run(*args[:2], f"--output={tmp_path / 'again'}", *args[3:])
    assert proc.returncode == 2
    assert "release refused" in proc.stderr and "eurogest--de+en--" in proc.stderr
    assert not (tmp_path / "again").exists()
