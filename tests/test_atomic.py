"""Atomic outputs: nothing half-written, and nothing left behind by a writer that was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from g2i.errors import G2IError
from g2i.io.atomic import atomic_dir, atomic_file


def hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_failed_block_leaves_neither_target_nor_temporary(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "set") as tmp:
            (tmp / "part.npz").write_bytes(b"half")
            raise RuntimeError("generation failed")
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "report.json") as handle:
            handle.write("{")
            raise RuntimeError("failed")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(tmp_path / "set") as tmp:
        (tmp / "part.npz").write_bytes(b"whole")
    with pytest.raises(G2IError, match="already exists"):
        with atomic_dir(tmp_path / "set"):
            pass
    with atomic_dir(tmp_path / "set", overwrite=True) as tmp:
        (tmp / "part.npz").write_bytes(b"new")
    assert (tmp_path / "set/part.npz").read_bytes() == b"new" and hidden(tmp_path) == []


def test_a_killed_writer_leaves_a_temporary_that_the_next_writer_removes(tmp_path):
    """kill -9 skips the writer's `finally`: its hidden temporary (gigabytes for a paper-scale set) stays.
    The next write of the same target removes it; a live writer's temporary, and other targets', are kept."""
    writer = textwrap.dedent(f"""
        import sys, time
        from g2i.io.atomic import atomic_dir
        with atomic_dir({str(tmp_path / "set")!r}) as tmp:
            (tmp / "part.npz").write_bytes(b"x" * 1000)
            print(tmp.name, flush=True)
            time.sleep(60)
    """)
    killed = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    live = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    try:
        killed_tmp, live_tmp = killed.stdout.readline().strip(), live.stdout.readline().strip()
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=20)
        other = f".other.tmp-{killed.pid}-abc"          # another target's orphan: not this writer's business
        (tmp_path / other).mkdir()
        assert {killed_tmp, live_tmp} <= set(hidden(tmp_path))
        with atomic_dir(tmp_path / "set") as tmp:
            (tmp / "part.npz").write_bytes(b"done")
        assert killed_tmp not in hidden(tmp_path)
        assert live_tmp in hidden(tmp_path) and other in hidden(tmp_path)
        assert (tmp_path / "set/part.npz").read_bytes() == b"done"
    finally:
        live.kill()
        live.wait(timeout=20)
