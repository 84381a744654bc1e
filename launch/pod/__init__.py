"""TPU pod launching: create or reuse a slice and run the same command on every worker.

- ``python -m launch.pod.tpu_vm``: Cloud TPU VMs through ``gcloud compute tpus tpu-vm``
  (``--worker=all``);
- ``python -m launch.pod.xpk``: GKE clusters through ``xpk workload create``.

Both have ``--dry_run``, which prints the commands instead of running them. The command
builders are plain functions (``launch.pod.commands``) so tests can check them.
"""
