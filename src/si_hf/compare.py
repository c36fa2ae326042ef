"""Compare two si-hf output directories: same rounds, same labels, same weights, same metrics.

    si-hf compare outputs/a outputs/b        (or: python scripts/compare_runs.py outputs/a outputs/b)

Timings (`*_seconds`, `*_per_second`) and the config snapshot (paths differ) are left out; everything
else must be equal: every round's parquet rows, every tensor of every checkpoint bit for bit, and
every metric. Exits 1 and lists the differences otherwise. Use it to check that a change keeps a
run's artifacts, or that a resumed run matches an uninterrupted one.

It cannot pass by accident: a path that is not an si-hf run (no published round), or a round with a
missing or unreadable file (marker, metrics, weights, parquet), is an error (exit 2) that names it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file

from si_hf.layout import RoundPaths, RunPaths, member_path
from si_hf.store.errors import DamagedRoundError
from si_hf.store.verify import check_round

TIMING = ("_seconds", "_per_second")


def _metrics(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if not k.endswith(TIMING)}


def _rows(round_paths: RoundPaths) -> list[dict]:
    return [row for f in round_paths.parquet_files() for row in pq.read_table(f).to_pylist()]


def _weights(round_paths: RoundPaths) -> dict:
    out = {}
    for f in round_paths.weight_files():
        out.update(load_file(str(f)))
    return out


def _run(path: Path) -> RunPaths:
    """The run at `path`, each of its rounds checked; ValueError or DamagedRoundError name what is wrong."""
    if not path.exists():
        raise ValueError(f"{path} does not exist; expected the output_dir of an si-hf run")
    run = RunPaths(path)
    if not run.published():
        raise ValueError(f"{path} is not an si-hf run: it holds no published round (rounds/round-*/member-*)")
    for r, m in run.published():
        check_round(run.round(r, m).root, r)
    return run


def compare(a: Path, b: Path) -> list[str]:
    diffs = []
    if Path(a).resolve() == Path(b).resolve():
        raise ValueError(f"{a} and {b} are the same folder: nothing to compare")
    run_a, run_b = _run(Path(a)), _run(Path(b))
    members_a, members_b = run_a.published(), run_b.published()
    if members_a != members_b:
        names = [[member_path(*x) for x in members] for members in (members_a, members_b)]
        return [f"different rounds: {names[0]} vs {names[1]}"]
    for r, m in members_a:
        ra, rb, rel = run_a.round(r, m), run_b.round(r, m), member_path(r, m)
        if _metrics(ra.metrics) != _metrics(rb.metrics):
            diffs.append(f"{rel}: metrics differ")
        if ra.dataset.is_dir() != rb.dataset.is_dir():
            diffs.append(f"{rel}: only one has a dataset")
        elif ra.dataset.is_dir() and _rows(ra) != _rows(rb):
            diffs.append(f"{rel}: dataset rows differ")
        wa, wb = _weights(ra), _weights(rb)
        if wa.keys() != wb.keys() or any(not torch.equal(wa[k], wb[k]) for k in wa):
            diffs.append(f"{rel}: weights differ")
    return diffs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="si-hf compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    try:
        diffs = compare(args.a, args.b)
    except (ValueError, DamagedRoundError) as e:
        parser.error(str(e))  # exits 2 with the usage and the message
    for d in diffs:
        print(d)
    n = len(RunPaths(args.a).published())
    print(
        f"{n} round/member directories compared: {'identical' if not diffs else f'{len(diffs)} differences'}"
    )
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
