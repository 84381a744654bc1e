"""Launch a job on a GKE TPU cluster with xpk (one workload, every host runs the command).

    python -m launch.pod.xpk --cluster=my-cluster --workload=eurollm-9b --tpu_type=v5p-128 \
        --image=us-docker.pkg.dev/PROJECT/eurollm/eurollm_jax:latest --dry_run -- \
        --config=configs/eurollm_9b.py --workdir=/mnt/shared/eurollm-9b

The image must contain this repository installed with the ``tpu`` extra.
"""

import sys

from absl import app, flags

from launch.pod import commands as C

_CLUSTER = flags.DEFINE_string("cluster", None, "xpk / GKE cluster name")
_WORKLOAD = flags.DEFINE_string("workload", None, "workload name")
_TPU = flags.DEFINE_string("tpu_type", "v5p-8", "TPU type per slice, e.g. v5p-128, v5litepod-256")
_SLICES = flags.DEFINE_integer("num_slices", 1, "number of slices (multislice over DCN)")
_IMAGE = flags.DEFINE_string("image", None, "docker image with eurollm_jax[tpu] installed")
_PROJECT = flags.DEFINE_string("project", None, "GCP project")
_ZONE = flags.DEFINE_string("zone", None, "GCP zone")
_MODULE = flags.DEFINE_string("module", "launch.train", "python module each host runs")
_DRY = flags.DEFINE_bool("dry_run", False, "print the command instead of running it")


def main(argv):
    job_args = argv[1:]
    missing = [
        n
        for n, f in (("cluster", _CLUSTER), ("workload", _WORKLOAD), ("image", _IMAGE))
        if not f.value
    ]
    if missing or not job_args:
        print(f"error: --{', --'.join(missing) or 'job flags after --'} required", file=sys.stderr)
        return 2
    command = C.train_command(job_args, module=_MODULE.value, cwd=None)  # the image's workdir
    cmd = C.xpk_create(
        _CLUSTER.value,
        _WORKLOAD.value,
        _TPU.value,
        _SLICES.value,
        _IMAGE.value,
        command,
        _PROJECT.value,
        _ZONE.value,
    )
    C.run(cmd, _DRY.value)
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
