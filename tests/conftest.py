"""Suite-wide set-up: cheaper compiles, and a persistent XLA compilation cache private to this test session.

Most tests run tiny budgets, so compiling costs more than running: the suite asks XLA's CPU
backend for LLVM optimisation level 0 (`--xla_backend_optimization_level=0`). The HLO passes are
unchanged, but the machine code is not, so results agree with a default build to float rounding,
not bitwise (20k steps of PPO on CartPole: the sum of the agent's weights 9.35 vs 9.42); every
assertion here is about behaviour within one build (learning, gradients, determinism), never a
number from another build. Measured on 2 cores: `examples/meta_train_lpg.py` at its test budget
44 s -> 27 s; three run-bound learning tests 67 s -> 73 s. XLA_FLAGS that set the level win.

Many tests compile the same programs (the tiny meta-training presets, the CLI's training loops);
with the cache each distinct program is compiled once per session and loaded afterwards. The
directory is new for every run of the suite, so no state survives from one run to the next.

`make test` runs the suite on two pytest-xdist workers (`-n 2`): most tests are compile-bound and
LLVM compiles on one thread, so on 2 cores two workers finish the same suite in 11 min 57 s against
18 min 57 s for one (fresh clone, same machine, same hour, 2026-12-02). Both workers share the
run's cache.
"""

import os
import tempfile

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them once)

# pytest-xdist workers of one run share one cache (the run's id names it), so a program compiled by
# one worker is loaded by the other; without xdist, a new directory per session
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
if _RUN:
    _CACHE = os.path.join(tempfile.gettempdir(), f"learned-rl-tests-xla-{_RUN}")
    os.makedirs(_CACHE, exist_ok=True)
else:
    _CACHE = tempfile.mkdtemp(prefix="learned-rl-tests-xla-")
if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    jax.config.update("jax_compilation_cache_dir", _CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


import pytest


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    """Drop every compiled program after each test. The suite compiles hundreds of XLA
    programs; kept alive in one process, their code mappings approach the kernel's limit on memory
    maps per process (vm.max_map_count, 65,530 here), at which XLA aborts the process. With the
    persistent cache above, a later module that needs a program again loads it instead of
    recompiling it. (Seen: one test module alone reached 26,000 maps.)"""
    yield
    jax.clear_caches()
