"""Splitting a meta-training population across devices with JAX's own sharding.

Every meta-gradient estimator works on a *population* of independent inner problems along one
leading axis: LPG's lifetimes (`TruncatedMetaGradient`, one batch of `lifetimes_per_task` per task),
or the members of an evolution-strategies generation. This module puts that axis on a 1-D
`jax.sharding.Mesh` (axis name ``"population"``) and leaves everything else (the rule, the
meta-optimiser state, bandits, counters) replicated. The meta-step stays one `jax.jit` program:
XLA's SPMD partitioner (GSPMD) runs each device's slice of the population locally and turns the mean
over the population into an all-reduce, so the meta-gradient is the same average as on one device
(equal up to floating-point summation order).

How an estimator takes part (see `AbstractMetaEstimator`):

- `population_size()`: the length of its population axis (None: nothing to split). `meta_train`
  checks it is divisible by the number of devices before anything is compiled.
- `population_axes(state)`: which parts of its *state* carry that leading axis (a pytree prefix of
  booleans); those leaves are stored sharded between steps.
- Inside `estimate`, `constrain_population(x)` marks an array (or pytree) built inside the step
  (e.g. ES noise of shape ``[P, D]``) as split along its leading axis. Outside a sharded meta-step it
  returns its input unchanged, so estimators call it unconditionally.

Devices: ``None`` or ``1`` = the default device, no mesh; ``N`` = the first N of `jax.devices()`;
``"all"`` = every device. After `jax.distributed.initialize()`, `jax.devices()` lists the devices of
*every* host, so ``"all"`` spans hosts (each process then runs the same program on its local slice);
checkpoints are gathered with `process_allgather` and written by process 0 only.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "population"

_ACTIVE: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar("learned_rl_population_mesh", default=None)


def parse_devices(spec: Any) -> int | str | None:
    """Check a device spec (``None``, a positive int, ``"all"`` or a digit string) without looking
    at the machine. Raises `ValueError` naming the bad value."""
    if spec is None:
        return None
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s == "all":
            return "all"
        if s.lstrip("+-").isdigit():
            spec = int(s)
        else:
            raise ValueError(f"devices must be a positive integer or 'all', got {spec!r}")
    if isinstance(spec, bool) or not isinstance(spec, (int, np.integer)):
        raise ValueError(f"devices must be a positive integer or 'all', got {spec!r}")
    if spec <= 0:
        raise ValueError(f"devices must be a positive integer or 'all', got {int(spec)}")
    return int(spec)


def resolve_devices(spec: Any) -> list:
    """The devices a spec names (see `parse_devices`). Raises `ValueError` if there are fewer."""
    spec = parse_devices(spec)
    available = jax.devices()
    if spec is None:
        return available[:1]
    if spec == "all":
        return list(available)
    if spec > len(available):
        raise ValueError(
            f"devices={spec} but only {len(available)} {available[0].platform} device(s) are available "
            f"(on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count={spec} before starting Python)"
        )
    return list(available[:spec])


def population_mesh(spec: Any) -> Mesh | None:
    """A 1-D mesh over the devices `spec` names, or None for a single device (no sharding)."""
    devices = resolve_devices(spec)
    if len(devices) == 1:
        return None
    return Mesh(np.asarray(devices), (AXIS,))


def mesh_size(mesh: Mesh | None) -> int:
    return 1 if mesh is None else int(mesh.devices.size)


def check_divisible(population: int | None, mesh: Mesh | None, what: str = "population") -> None:
    """`ValueError` unless the population splits evenly over the mesh's devices."""
    n = mesh_size(mesh)
    if n == 1 or population is None:
        return
    if population % n:
        raise ValueError(f"{what} ({population}) is not divisible by the number of devices ({n})")


def _specs(tree: Any, mask: Any, mesh: Mesh) -> Any:
    """A NamedSharding per array leaf: split on the leading axis where `mask` (a prefix of `tree`)
    is True, replicated elsewhere."""
    split = NamedSharding(mesh, PartitionSpec(AXIS))
    rep = NamedSharding(mesh, PartitionSpec())

    def per_subtree(m, sub):
        return jax.tree.map(lambda x: split if (m and getattr(x, "ndim", 0) >= 1) else rep, sub)

    return jax.tree.map(per_subtree, mask, tree, is_leaf=lambda x: isinstance(x, bool))


def _put(x, sharding: NamedSharding):
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    # multi-host: every process holds the whole (host) value; each device takes its slice
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def place(tree: Any, mask: Any, mesh: Mesh | None) -> Any:
    """Put the array leaves of `tree` on `mesh`: leaves under a True of `mask` split along their
    leading axis, the rest replicated. Identity without a mesh."""
    if mesh is None:
        return tree
    arrays, static = _partition(tree)
    shardings = _specs(arrays, mask, mesh)
    placed = jax.tree.map(lambda x, s: x if x is None else _put(x, s), arrays, shardings, is_leaf=lambda x: x is None)
    return _combine(placed, static)


def constrain(tree: Any, mask: Any, mesh: Mesh | None) -> Any:
    """Inside jit: `with_sharding_constraint` with the shardings `place` would use."""
    if mesh is None:
        return tree
    arrays, static = _partition(tree)
    shardings = _specs(arrays, mask, mesh)
    out = jax.tree.map(lambda x, s: x if x is None else jax.lax.with_sharding_constraint(x, s), arrays, shardings, is_leaf=lambda x: x is None)
    return _combine(out, static)


def constrain_population(tree: Any) -> Any:
    """Mark every array in `tree` as split along its leading (population) axis over the mesh of the
    meta-step being traced; a no-op outside a sharded meta-step."""
    mesh = _ACTIVE.get()
    if mesh is None:
        return tree
    return constrain(tree, True, mesh)


@contextlib.contextmanager
def use_mesh(mesh: Mesh | None):
    """Make `mesh` the population mesh seen by `constrain_population` while tracing."""
    token = _ACTIVE.set(mesh)
    try:
        yield mesh
    finally:
        _ACTIVE.reset(token)


def host_copy(tree: Any) -> Any:
    """A pytree whose arrays can be written to disk by this process: unchanged on one host; on
    several hosts, sharded arrays are gathered (every process must call this)."""
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    arrays, static = _partition(tree)
    arrays = multihost_utils.process_allgather(arrays, tiled=True)
    return _combine(arrays, static)


def is_writer() -> bool:
    """True in the process that writes files (process 0)."""
    return jax.process_index() == 0


# -- helpers: split a pytree into array leaves and the rest (like eqx.partition, without importing
# equinox here so the module stays usable for any pytree)


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def _partition(tree):
    import equinox as eqx

    return eqx.partition(tree, _is_array)


def _combine(arrays, static):
    import equinox as eqx

    return eqx.combine(arrays, static)

