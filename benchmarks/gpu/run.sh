#!/usr/bin/env bash
# The GPU script on a machine that has python3 with jax (CUDA), equinox, optax and flax but
# not the rest of learned-rl's dependencies: install the wheels carried in .whl/ (made here by
# benchmarks/gpu/wheels.sh; nothing comes from the network), then run benchmarks/gpu/run.py.
#   bash benchmarks/gpu/run.sh OUT_DIR [run.py flags]
set -euo pipefail
out=${1:?usage: bash benchmarks/gpu/run.sh OUT_DIR [run.py flags]}
shift
cd "$(dirname "$0")/../.."
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/learned_rl_site .whl/*.whl
  export PYTHONPATH=/tmp/learned_rl_site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
exec python3 benchmarks/gpu/run.py --out "$out" "$@"
