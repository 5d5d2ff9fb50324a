#!/usr/bin/env bash
# Make .whl/: learned-rl itself and the dependencies a CUDA JAX image usually lacks (gymnax,
# gymnasium, distrax and tensorflow-probability's JAX substrate, dm-tree), for CPython 3.12 on
# x86-64 Linux, so that benchmarks/gpu/run.sh installs them with no network.
#   bash benchmarks/gpu/wheels.sh [PYTHON_VERSION]     (default 3.12)
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${1:-3.12}
rm -rf .whl && mkdir .whl
python3 -m pip wheel -q --no-deps -w .whl .
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  gymnax==1.0.1 gymnasium==1.3.0 farama-notifications==0.0.6 distrax==0.1.9 dm-tree==0.1.10 \
  decorator==5.3.1 gast==0.7.0 "tfp-nightly==0.26.0.dev20261027"
ls -la .whl
