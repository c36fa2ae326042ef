"""Checks of a published round before anything reads it: every file there, readable, unchanged.

`check_round` is cheap (parses the small files, reads parquet footers and safetensors headers); with
`checksums` it also compares the SHA-256 that publishing recorded in the marker, for the files a
caller is about to load. Damage raises `DamagedRoundError` naming the file and the way back.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from si_hf.layout import MARKER, ROUNDS, RoundPaths, round_dirname

from .errors import DamagedRoundError


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root` but the marker, by path relative to `root`."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != MARKER)
    return {f.relative_to(root).as_posix(): _sha256(f) for f in files}


def damaged(path: Path, problem: str, round: int) -> DamagedRoundError:
    rounds_dir = path
    while rounds_dir.name != ROUNDS and rounds_dir != rounds_dir.parent:
        rounds_dir = rounds_dir.parent
    return DamagedRoundError(
        f"{path}: {problem}. Round {round} is damaged. To recover, delete {rounds_dir}/{round_dirname(round)} "
        f"and every later round, then rerun the same command: they are computed again"
    )


def read_json(path: Path, round: int) -> dict:
    if not path.is_file():
        raise damaged(path, "missing", round)
    try:
        value = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise damaged(path, f"not valid JSON ({e})", round) from None
    if not isinstance(value, dict):
        raise damaged(path, f"expected a JSON object, got {type(value).__name__}", round)
    return value


def _readable(files: list[Path], what: str, where: Path, round: int, read) -> None:
    if not files:
        raise damaged(where, f"no {what} file", round)
    for f in files:
        try:
            read(f)
        except Exception as e:  # pyarrow / safetensors raise their own types for truncated files
            raise damaged(f, f"unreadable {what} file ({type(e).__name__}: {e})", round) from None


def check_round(path: Path, round: int, *, checksums: str | None = None) -> dict:
    """The marker of the round at `path` after the cheap checks; with `checksums` (a prefix such as
    "model/" or "" for all) the recorded SHA-256 of those files is compared too."""
    import pyarrow.parquet as pq
    from safetensors import safe_open

    files = RoundPaths(path)
    marker = read_json(files.marker, round)
    if not isinstance(marker.get("info"), dict):
        raise damaged(files.marker, "no round info in the marker", round)
    read_json(files.metrics, round)
    read_json(files.model / "config.json", round)
    _readable(files.weight_files(), "weights", files.model, round, lambda f: safe_open(str(f), "pt").keys())
    if round > 0:
        _readable(files.parquet_files(), "parquet", files.data, round, pq.read_metadata)
    if checksums is not None and "checksums" in marker:  # rounds published before checksums have none
        for name, digest in marker["checksums"].items():  # only the files about to be loaded
            if not name.startswith(checksums):
                continue
            if not (path / name).is_file():
                raise damaged(path / name, "missing", round)
            if _sha256(path / name) != digest:
                raise damaged(path / name, "changed since it was published (checksum differs)", round)
    return marker


def check_weights(model_dir: Path, marker: dict, *, where: str) -> None:
    """The weights of a round downloaded from the Hub (`model_dir`: the files of its `model/` folder):
    readable, and equal to the SHA-256 the round recorded when it was published."""
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise DamagedRoundError(f"{where}: no weights file in {model_dir}; the round cannot be resumed")
    recorded = marker.get("checksums") or {}
    for f in files:
        try:
            safe_open(str(f), "pt").keys()
        except Exception as e:  # safetensors raises its own types for truncated files
            raise DamagedRoundError(f"{where}: {f.name} is unreadable ({type(e).__name__}: {e})") from None
        digest = recorded.get(f"model/{f.name}")
        if digest is not None and _sha256(f) != digest:
            raise DamagedRoundError(f"{where}: {f.name} differs from the weights the round published")
