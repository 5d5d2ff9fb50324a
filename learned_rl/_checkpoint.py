"""Saving and loading Equinox pytrees with a JSON header, atomically.

File format (``.eqx``): one line of JSON (the header), a newline, then the leaves serialised by
`eqx.tree_serialise_leaves`. The header holds the format version, a `kind`, the config needed to
rebuild the pytree's structure, and the SHA-256 of the payload, so a truncated or corrupt file is
detected and reported, never silently used. Writes go to a temporary file in the same directory,
are flushed to disk, and then renamed over the target, so a crash leaves the old file intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx

from ._io import atomic_write

FORMAT = "learned-rl"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint or rule file that cannot be used (missing, truncated, corrupt, wrong kind)."""


def save(path: str | os.PathLike, tree: Any, *, kind: str, config: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Atomically write `tree` to `path` with a JSON header ``{kind, config, ...}``. `extra` adds
    JSON-able header fields (a meta-training checkpoint keeps its pending metrics there)."""
    path = Path(path)
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, tree)
    payload = buf.getvalue()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "config": config,
        "payload_bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    clash = set(extra or {}) & set(header)
    if clash:
        raise ValueError(f"save: extra header fields {sorted(clash)} are reserved")
    header.update(extra or {})
    atomic_write(path, json.dumps(header, sort_keys=True).encode() + b"\n" + payload)
    return path


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], bytes]:
    """Read and check a file's header and payload. Raises `CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    data = path.read_bytes()
    nl = data.find(b"\n")
    try:
        header = json.loads(data[:nl].decode()) if nl > 0 else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a learned-rl file (missing or unreadable header)")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path}: format version {header.get('version')} is not supported (expected {VERSION})")
    payload = data[nl + 1 :]
    if len(payload) != header.get("payload_bytes"):
        raise CheckpointError(
            f"{path}: truncated or corrupt (payload is {len(payload)} bytes, header says {header.get('payload_bytes')})"
        )
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise CheckpointError(f"{path}: corrupt (checksum mismatch)")
    return header, payload


def load(path: str | os.PathLike, like: Callable[[dict[str, Any]], Any], *, kind: str | tuple[str, ...]) -> tuple[dict[str, Any], Any]:
    """Load a file written by `save`. `like(config)` builds a pytree of the right structure
    (arrays or `jax.ShapeDtypeStruct`s). Returns `(header, tree)`."""
    header, payload = read_header(path)
    kinds = (kind,) if isinstance(kind, str) else kind
    if header.get("kind") not in kinds:
        raise CheckpointError(f"{path}: holds a {header.get('kind')!r}, expected {' or '.join(repr(k) for k in kinds)}")
    skeleton = like(header["config"])
    try:
        tree = eqx.tree_deserialise_leaves(io.BytesIO(payload), skeleton)
    except Exception as e:  # shape/dtype mismatch: the file and the config disagree
        raise CheckpointError(f"{path}: contents do not match its config ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return header, tree
