"""Writing files atomically: the one writer behind every file the library produces (rule and
checkpoint files, config.json/summary.json, metrics.csv). Each write goes to a hidden temporary
file in the target's directory, is flushed to disk, and is renamed over the target, so a crash
or a kill leaves either the old file or the new one, never a torn one."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write `data` (text is UTF-8 encoded) to `path` atomically; creates the parent directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """`obj` as indented JSON (NaN allowed), atomically."""
    return atomic_write(path, json.dumps(obj, indent=2, allow_nan=True) + "\n")


def write_csv(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> Path:
    """Rows as CSV, atomically; the columns are every key in order of first appearance (a row
    without a column leaves it empty)."""
    rows = list(rows)
    fields: list[str] = []
    for r in rows:
        fields.extend(k for k in r if k not in fields)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    return atomic_write(path, buf.getvalue())
