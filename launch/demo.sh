#!/usr/bin/env bash
# The end-to-end demo on a tiny config (see launch/demo.py); flags pass through, e.g. --small.
set -euo pipefail
cd "$(dirname "$0")/.."
export XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=8"
export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
exec python -m launch.demo "$@"
