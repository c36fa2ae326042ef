"""Atomic writes: whoever reads a file or a folder si-hf wrote, a run killed while writing it included,
sees the old version or the new one, never a part of one.

Every writer of si-hf goes through here:

- `open_atomic(path)` (and `write_text`, `write_bytes`, `write_json`) writes `.<name>.tmp` beside
  `path`, flushes and fsyncs it, then `os.replace`s it over `path`. An exception removes the temporary
  file; the one a kill leaves behind is overwritten by the next write of the same path.
- `staged_dir(final)` yields a new temporary folder `.tmp-<name>-<id>` beside `final`; when the block
  ends it is fsynced (every file, then the folder) and renamed into place. An existing `final` is moved
  aside to `.old-<name>-<id>` first and deleted afterwards, so a kill between the two renames leaves the
  old version aside, never a half-written one in place. `recover_dirs(parent)` puts such an old version
  back and deletes stale temporary folders; only one writer may use a parent at a time (the store's
  run lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX, OLD_PREFIX = ".tmp-", ".old-"


def _tmp_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a folder's entries (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """`with open_atomic(path) as f: f.write(...)`: `path` changes only once the block has ended."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r}: expected 'w' or 'wb' (the file is written anew)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_file(path)
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with open_atomic(path) as f:
        f.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with open_atomic(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_json(path: str | os.PathLike, value, **dumps_kwargs) -> Path:
    """`value` as JSON (indent 2 unless told otherwise); it is serialised before the file is touched."""
    return write_text(path, json.dumps(value, **{"indent": 2, **dumps_kwargs}))


def _fsync_tree(root: Path) -> None:
    # Durability before the rename: otherwise a power loss can leave a renamed folder of empty files.
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike) -> Iterator[Path]:
    """`with staged_dir(final) as tmp: <write into tmp>`: `final` becomes what was written, in one rename."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{TMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        old = None
        if final.exists():
            old = final.parent / f"{OLD_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_dirs(parent: str | os.PathLike) -> None:
    """Undo what a killed `staged_dir` left in `parent`: stale temporary folders go, and an old version
    moved aside goes back into place when no new one replaced it. Only for the parent's one writer:
    another live writer's temporary folder looks exactly the same."""
    parent = Path(parent)
    if not parent.is_dir():
        return
    for stale in parent.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    for old in parent.glob(f"{OLD_PREFIX}*"):
        final = parent / old.name[len(OLD_PREFIX) :].rsplit("-", 1)[0]
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(old, final)
