"""Launch a job on a Cloud TPU VM slice: create (or reuse) it, copy the code, install, run the
same command on every worker, optionally delete the slice afterwards.

    python -m launch.pod.tpu_vm --name=eurollm-9b --zone=us-east5-a --accelerator=v5p-128 \
        --version=v2-alpha-tpuv5 --dry_run -- \
        --config=configs/eurollm_9b.py --workdir=/mnt/shared/eurollm-9b \
        --config.train.batch_size=2816

Everything after ``--`` is passed to ``python -m launch.train`` (or ``--module``) on every
worker; ``--workdir`` must be a directory all workers share (a gcsfuse or Filestore
mount). Rerunning the same
command reuses the slice and resumes from the latest checkpoint.
"""

import subprocess
import sys

from absl import app, flags

from launch.pod import commands as C

_NAME = flags.DEFINE_string("name", None, "TPU VM (slice) name")
_ZONE = flags.DEFINE_string("zone", None, "GCP zone, e.g. us-east5-a")
_ACCEL = flags.DEFINE_string(
    "accelerator", "v5p-8", "accelerator type, e.g. v5p-128, v5litepod-256"
)
_VERSION = flags.DEFINE_string("version", "v2-alpha-tpuv5", "TPU VM runtime version")
_PROJECT = flags.DEFINE_string("project", None, "GCP project (default: gcloud's)")
_SPOT = flags.DEFINE_bool("spot", False, "create a Spot (preemptible) slice")
_MODULE = flags.DEFINE_string("module", "launch.train", "python module each worker runs")
_SKIP_SETUP = flags.DEFINE_bool("skip_setup", False, "do not copy the code / pip install")
_DELETE = flags.DEFINE_bool("delete_after", False, "delete the slice when the job ends")
_DRY = flags.DEFINE_bool("dry_run", False, "print the commands instead of running them")


def plan(s: C.Slice, job_args, *, exists: bool, setup: bool, delete_after: bool, module: str):
    cmds = []
    if not exists:
        cmds.append(C.create(s))
    if setup:
        cmds += [C.copy_repo(s), C.ssh_all(s, C.setup_command())]
    cmds.append(C.ssh_all(s, C.train_command(job_args, module=module)))
    if delete_after:
        cmds.append(C.delete(s))
    return cmds


def main(argv):
    job_args = argv[1:]
    if not _NAME.value or not _ZONE.value:
        print("error: --name and --zone are required", file=sys.stderr)
        return 2
    if not job_args:
        print(
            "error: pass the job's flags after --, e.g. "
            "-- --config=configs/tiny.py --workdir=/mnt/shared/run",
            file=sys.stderr,
        )
        return 2
    s = C.Slice(_NAME.value, _ZONE.value, _ACCEL.value, _VERSION.value, _PROJECT.value, _SPOT.value)
    if _DRY.value:
        print("[dry-run] " + C.show(C.describe(s)) + "   # reuse the slice if this succeeds")
        exists = False
    else:
        exists = subprocess.run(C.describe(s), capture_output=True).returncode == 0
        print(f"slice {s.name}: {'reusing' if exists else 'creating'}")
    for cmd in plan(
        s,
        job_args,
        exists=exists,
        setup=not _SKIP_SETUP.value,
        delete_after=_DELETE.value,
        module=_MODULE.value,
    ):
        C.run(cmd, _DRY.value)
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
