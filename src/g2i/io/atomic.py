"""Write outputs so that a failure never leaves a half-written file or folder behind."""

from __future__ import annotations

import contextlib
import glob
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_orphans(target: Path) -> None:
    """Remove the temporary siblings of `target` left by a writer that was killed (kill -9, the OOM killer)
    before its `finally` could run: at the paper's sizes a generated set is gigabytes, hidden beside its
    target. Each temporary name carries its writer's PID; only those whose writer is gone are removed, so
    another live writer's folder is never touched (a reused PID only keeps an orphan longer)."""
    for kind in ("tmp", "old"):
        for orphan in target.parent.glob(f".{glob.escape(target.name)}.{kind}-*-*"):
            pid = orphan.name.rsplit("-", 2)[1]  # .<name>.<kind>-<pid>-<random>; the random part has no "-"
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                if orphan.is_dir() and not orphan.is_symlink():
                    shutil.rmtree(orphan, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        orphan.unlink()


def _prefix(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}-{os.getpid()}-"


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
    _remove_orphans(target)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(target, "tmp"), dir=parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder normal permissions
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=_prefix(target, "old"), dir=parent))
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
    _remove_orphans(target)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(target, "tmp"), dir=parent)
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
