"""launch.convert on the command line: HF -> Orbax -> HF gives the same tensors."""

import subprocess
import sys

import numpy as np

from eurollm_jax.checkpoint import safetensors_io
from tests.model.helpers import small_config


def test_convert_cli_round_trip(tmp_path):
    import eurollm_jax

    model = eurollm_jax.create_model(small_config(), seed=5)
    eurollm_jax.save_hf_checkpoint(model, str(tmp_path / "hf"))
    env_cmd = [sys.executable, "-m", "launch.convert"]
    subprocess.run(env_cmd + ["--to=orbax", f"--input={tmp_path / 'hf'}", f"--output={tmp_path / 'orbax'}"],
                   check=True, capture_output=True)
    subprocess.run(env_cmd + ["--to=hf", f"--input={tmp_path / 'orbax'}", f"--output={tmp_path / 'hf2'}"],
                   check=True, capture_output=True)
    a = safetensors_io.TensorIndex(str(tmp_path / "hf"))
    b = safetensors_io.TensorIndex(str(tmp_path / "hf2"))
    assert set(a.keys()) == set(b.keys())
    for key in a.keys():
        np.testing.assert_array_equal(a.get(key), b.get(key))
    bad = subprocess.run(env_cmd + ["--to=hf", f"--input={tmp_path / 'hf'}", f"--output={tmp_path / 'x'}"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "not a params directory" in bad.stderr
