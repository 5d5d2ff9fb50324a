"""Suite-wide set-up: a persistent XLA compilation cache private to this test session.

Many tests compile the same programs (the tiny meta-training presets, the CLI's training loops);
with the cache each distinct program is compiled once per session and loaded afterwards. The
directory is new for every session, so no state survives from one run of the suite to the next.
"""

import os
import tempfile

import jax

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
