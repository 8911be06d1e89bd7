"""Write outputs so that a failure never leaves a half-written file or folder behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import G2IError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_writable_parent(target: Path) -> Path:
    """Create `target`'s parent, failing with a plain message when that is not possible."""
    parent = target.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise G2IError(f"{parent}: cannot create output folder ({exc.strerror})") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise G2IError(f"{parent}: output folder is not writable")
    return parent


@contextlib.contextmanager
def atomic_dir(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; rename it to `target` only if the block succeeds.

    The temporary folder lives beside `target` so the final rename stays on one file system.
    With `overwrite`, an existing `target` is replaced only after the new one is complete.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise G2IError(f"{target}: already exists (pass --force to replace it)")
    parent = ensure_writable_parent(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder normal permissions
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: str | Path, mode: str = "w") -> Iterator:
    """Open a temporary sibling of `target` for writing; rename it into place on success."""
    target = Path(target)
    parent = ensure_writable_parent(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | Path, payload: dict) -> None:
    """Write a JSON report atomically, keys sorted, so DVC metrics are stable from run to run."""
    import json

    with atomic_file(path) as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")
