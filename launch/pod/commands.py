"""Builders for the gcloud / xpk command lines of a pod launch (argv lists, no side effects)."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import sys
from typing import Sequence

REMOTE_DIR = "~/eurollm_jax"


@dataclasses.dataclass(frozen=True)
class Slice:
    name: str
    zone: str
    accelerator: str  # e.g. v5p-128, v5litepod-256
    version: str  # TPU VM runtime, e.g. v2-alpha-tpuv5, v2-alpha-tpuv5-lite, v2-alpha-tpuv6e
    project: str | None = None
    spot: bool = False


def _scope(s: Slice) -> list[str]:
    out = [f"--zone={s.zone}"]
    if s.project:
        out.append(f"--project={s.project}")
    return out


def describe(s: Slice) -> list[str]:
    return [
        "gcloud",
        "compute",
        "tpus",
        "tpu-vm",
        "describe",
        s.name,
        *_scope(s),
        "--format=value(state)",
    ]


def create(s: Slice) -> list[str]:
    cmd = [
        "gcloud",
        "compute",
        "tpus",
        "tpu-vm",
        "create",
        s.name,
        *_scope(s),
        f"--accelerator-type={s.accelerator}",
        f"--version={s.version}",
    ]
    if s.spot:
        cmd.append("--spot")
    return cmd


def delete(s: Slice) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "delete", s.name, *_scope(s), "--quiet"]


def ssh_all(s: Slice, command: str) -> list[str]:
    """Run ``command`` on every worker of the slice at once."""
    return [
        "gcloud",
        "compute",
        "tpus",
        "tpu-vm",
        "ssh",
        s.name,
        *_scope(s),
        "--worker=all",
        f"--command={command}",
    ]


def copy_repo(s: Slice, local_dir: str = ".") -> list[str]:
    return [
        "gcloud",
        "compute",
        "tpus",
        "tpu-vm",
        "scp",
        "--recurse",
        local_dir,
        f"{s.name}:{REMOTE_DIR}",
        *_scope(s),
        "--worker=all",
    ]


def setup_command() -> str:
    return f"cd {REMOTE_DIR} && python3 -m pip install -q -e '.[tpu]'"


def train_command(
    module_args: Sequence[str],
    module: str = "launch.train",
    env: dict | None = None,
    cwd: str | None = REMOTE_DIR,
) -> str:
    """The shell command every worker runs (jax.distributed discovers the slice itself),
    from ``cwd`` (None: where the worker starts, e.g. a container's working directory)."""
    env = {"EUROLLM_AUTO_DISTRIBUTED": "1", **(env or {})}
    exports = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in sorted(env.items()))
    args = " ".join(shlex.quote(a) for a in module_args)
    command = f"{exports} python3 -m {module} {args}"
    return f"cd {cwd} && {command}" if cwd else command


def xpk_create(
    cluster: str,
    workload: str,
    tpu_type: str,
    num_slices: int,
    image: str,
    command: str,
    project: str | None = None,
    zone: str | None = None,
) -> list[str]:
    cmd = [
        "xpk",
        "workload",
        "create",
        f"--cluster={cluster}",
        f"--workload={workload}",
        f"--tpu-type={tpu_type}",
        f"--num-slices={num_slices}",
        f"--docker-image={image}",
        f"--command={command}",
    ]
    if project:
        cmd.append(f"--project={project}")
    if zone:
        cmd.append(f"--zone={zone}")
    return cmd


def show(cmd: Sequence[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


def run(cmd: Sequence[str], dry_run: bool, check: bool = True) -> int:
    """Print (dry run) or execute one command; returns its exit code."""
    print(("[dry-run] " if dry_run else "+ ") + show(cmd), flush=True)
    if dry_run:
        return 0
    return subprocess.run(list(cmd), check=check, stdout=sys.stdout, stderr=sys.stderr).returncode
