"""Memory checks before a run starts: what the device can still take, and a one-line refusal
(`RunTooLarge`) when an estimate exceeds it. Used by training runs and sweeps (`_experiment`) and
by meta-training (`meta.meta_train`)."""

from __future__ import annotations

import os

import jax
import numpy as np


class RunTooLarge(ValueError):
    """A run whose estimated memory exceeds what the device can still take."""


def available_memory() -> tuple[int, str]:
    """Bytes the default device can still take, and what they are: an accelerator's free memory
    (its allocator's limit less what is in use), or the host's available RAM (``MemAvailable``)."""
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)), f"free memory on {dev.device_kind}"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available RAM"
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available RAM"


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def tree_bytes(tree) -> int:
    """Bytes of a pytree's arrays (or `ShapeDtypeStruct`s)."""
    return int(sum(np.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree) if hasattr(x, "shape")))


def check_memory(need: float, desc: str, parts: str, *, runs: int | None = None, hint: str = "fewer --seeds or sweep points") -> None:
    """Refuse (`RunTooLarge`, one line) a run whose estimate `need` (bytes, made of `parts`)
    exceeds 90% of what the device can still take, with the estimate and the machine's figure.
    With `runs` (vmapped runs), the line also says how many would fit."""
    have, what = available_memory()
    if need > 0.9 * have:
        who = f"{runs} runs need" if runs is not None else "needs"
        fit = f"about {max(int(runs * 0.9 * have / need), 0)} would fit ({hint})" if runs is not None else hint
        raise RunTooLarge(f"{desc}: {who} about {gib(need)} ({parts}), more than this machine's {gib(have)} of {what}; {fit}")


def compiled_bytes(compiled) -> int | None:
    """What an ahead-of-time compiled program holds at once, by XLA's memory analysis: arguments,
    outputs (less those aliased to arguments) and temporaries; ``None`` where the backend gives no
    analysis."""
    mem = compiled.memory_analysis()
    if mem is None:
        return None
    return int(mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes + mem.temp_size_in_bytes)
