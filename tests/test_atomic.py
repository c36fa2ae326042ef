"""Atomic writes: a reader, or a rerun after a kill, sees the old version or the new one, never a part."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from si_hf import atomic


def _killed_mid_write(tmp_path, body: str) -> None:
    """Run `body` (with `atomic` and `target` defined) in a process and SIGKILL it once it printed
    "halfway", i.e. inside the write."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from si_hf import atomic
        target = Path({str(tmp_path / "target")!r})
        """
    ) + textwrap.dedent(body)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "halfway"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_a_file_killed_mid_write_keeps_its_old_content_and_the_next_write_succeeds(tmp_path):
    target = tmp_path / "target"
    atomic.write_text(target, "old")
    _killed_mid_write(
        tmp_path,
        """
        with atomic.open_atomic(target) as f:
            f.write("new, first half")
            f.flush()
            print("halfway", flush=True)
            time.sleep(60)
            f.write(" and second half")
        """,
    )
    assert target.read_text() == "old"
    assert (tmp_path / ".target.tmp").read_text() == "new, first half"  # what the kill left aside
    atomic.write_json(target, {"a": [1, 2]})
    assert target.read_text() == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert sorted(os.listdir(tmp_path)) == ["target"]  # the leftover was the next write's own file


def test_an_exception_mid_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "sub" / "target.bin"
    atomic.write_bytes(target, b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.open_atomic(target, "wb") as f:
            f.write(b"new")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old" and sorted(os.listdir(target.parent)) == ["target.bin"]
    with pytest.raises(TypeError):  # not JSON: refused before the file is touched
        atomic.write_json(target, {"a": object()})
    assert target.read_bytes() == b"old"
    with pytest.raises(ValueError, match="mode='a'"):
        with atomic.open_atomic(target, "a"):
            pass


def test_a_folder_killed_mid_write_is_invisible_and_recovered(tmp_path):
    target = tmp_path / "target"
    with atomic.staged_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    _killed_mid_write(
        tmp_path,
        """
        with atomic.staged_dir(target) as tmp:
            (tmp / "a.txt").write_text("new")
            print("halfway", flush=True)
            time.sleep(60)
        """,
    )
    assert (target / "a.txt").read_text() == "old"
    assert any(p.name.startswith(".tmp-target-") for p in tmp_path.iterdir())
    atomic.recover_dirs(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["target"] and (target / "a.txt").read_text() == "old"
    with atomic.staged_dir(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(os.listdir(target)) == ["b.txt"]  # replaced as a whole: nothing of the old one stays


def test_an_old_folder_moved_aside_goes_back_when_the_swap_was_cut_short(tmp_path):
    """A kill between the two renames of `staged_dir` leaves the old version aside and nothing in place."""
    target = tmp_path / "target"
    with atomic.staged_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    os.rename(target, tmp_path / ".old-target-1234abcd")
    atomic.recover_dirs(tmp_path)
    assert (target / "a.txt").read_text() == "old" and sorted(os.listdir(tmp_path)) == ["target"]
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.staged_dir(target) as tmp:
            (tmp / "a.txt").write_text("new")
            raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "old" and sorted(os.listdir(tmp_path)) == ["target"]
