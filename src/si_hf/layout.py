"""The store's layout: every file and folder name of a run and of a round, locally and on the Hub.

The store writes these names and nothing else; every reader (results, report, compare, resume,
reproduce) finds them here::

    <output_dir>/
        README.md, heatmap.png        the run's index page (rewritten after every round)
        metrics.json                  every completed round's metrics, rebuilt from the rounds
        rounds/round-003/member-0/    one published round of one member (immutable)
            si_hf_round.json          the marker: info, provenance, checksums; written last
            metrics.json
            dataset/README.md, dataset/data/train-00000-of-00001.parquet   (rounds >= 1)
            model/                    config, weights, tokenizer, README.md, heatmap.png
        work/round-003/member-0/      the round in progress: labels/ (staged), trainer/ (checkpoints)
        runs/member-0/                tracker logs (TensorBoard)
        resume/                       the cache of a --resume_from source
        .si_hf.lock, .si_hf.holder.json   the run lock and who holds it
        si_hf_store.json              the store marker: this folder is an si-hf store

On the Hub a round is branch `round-3` of the dataset and model repos; a k-member run keeps member m
under `member-m/` (dataset config `member-m`, model subfolder `member-m`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from si_hf.checks import is_int

ROUNDS, WORK = "rounds", "work"
MARKER = "si_hf_round.json"
METRICS = "metrics.json"
README, HEATMAP = "README.md", "heatmap.png"
DATASET, DATA, MODEL = "dataset", "data", "model"
PARQUET = "train-00000-of-00001.parquet"
LABELS, LABEL_INFO, TRAINER = "labels", "label_info.json", "trainer"
TRACKER_LOGS, RESUME_CACHE, REPORT = "runs", "resume", "report"
LOCK, HOLDER = ".si_hf.lock", ".si_hf.holder.json"
STORE_MARKER = "si_hf_store.json"  # written into an output_dir when a run first claims it
# Every name the store writes at the top of an output_dir: it never writes any other.
STORE_NAMES = (
    ROUNDS,
    WORK,
    METRICS,
    README,
    HEATMAP,
    TRACKER_LOGS,
    RESUME_CACHE,
    REPORT,
    LOCK,
    HOLDER,
    STORE_MARKER,
)
# What the store may write beside a round's data and at the top of a run: its pages (cards, figures).
ROUND_PAGES = (f"{DATASET}/{README}", f"{MODEL}/{README}", f"{MODEL}/{HEATMAP}")
RUN_PAGES = (README, HEATMAP)

HUB_SPEC = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)@round-(?P<round>\d+)(?:/member-(?P<member>\d+))?$")
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
_ROUND_DIR, _MEMBER_DIR = re.compile(r"round-(\d+)"), re.compile(r"member-(\d+)")


def check_address(round: int, member: int) -> None:
    for name, v in (("round", round), ("member", member)):
        if not is_int(v) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")


def round_dirname(round: int) -> str:
    """`round-003`: the local folder of a round (zero-padded so folders sort by round)."""
    return f"round-{round:03d}"


def member_dirname(member: int) -> str:
    return f"member-{member}"


def member_path(round: int, member: int) -> str:
    """`round-003/member-0`: a round/member relative to `rounds/` (or to `work/` while it is built)."""
    return f"{round_dirname(round)}/{member_dirname(member)}"


def revision(round: int) -> str:
    """`round-3`: the Hub branch of a round, in the dataset repo and the model repo alike."""
    return f"round-{round}"


def hub_prefix(member: int, num_members: int) -> str:
    """Where a member's files sit in a Hub repo: the root for single-model runs, `member-m/` otherwise."""
    return "" if num_members == 1 else f"{member_dirname(member)}/"


def resume_spec(repo: str, round: int, member: int, num_members: int) -> str:
    """`user/name@round-3`, or `user/name@round-3/member-1` in a k-member run (the `--resume_from` form)."""
    return f"{repo}@{revision(round)}" + (f"/{member_dirname(member)}" if num_members > 1 else "")


@dataclass(frozen=True)
class RoundPaths:
    """The files of one published round of one member."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    @property
    def dataset(self) -> Path:
        return self.root / DATASET

    @property
    def data(self) -> Path:
        return self.root / DATASET / DATA

    @property
    def model(self) -> Path:
        return self.root / MODEL

    def parquet_files(self) -> list[Path]:
        return sorted(self.data.glob("*.parquet"))

    def weight_files(self) -> list[Path]:
        return sorted(self.model.glob("*.safetensors"))


@dataclass(frozen=True)
class RunPaths:
    """The files of a run's output directory."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def rounds(self) -> Path:
        return self.root / ROUNDS

    @property
    def work(self) -> Path:
        return self.root / WORK

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    @property
    def store_marker(self) -> Path:
        return self.root / STORE_MARKER

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def holder(self) -> Path:
        return self.root / HOLDER

    @property
    def tracker_logs(self) -> Path:
        return self.root / TRACKER_LOGS

    @property
    def resume_cache(self) -> Path:
        return self.root / RESUME_CACHE

    @property
    def report(self) -> Path:
        return self.root / REPORT

    def round(self, round: int, member: int = 0) -> RoundPaths:
        check_address(round, member)
        return RoundPaths(self.rounds / member_path(round, member))

    def work_round(self, round: int, member: int = 0) -> Path:
        """`work/round-003/member-0`: what a round builds before it is published."""
        check_address(round, member)
        return self.work / member_path(round, member)

    def published(self) -> list[tuple[int, int]]:
        """Every (round, member) folder under `rounds/`, sorted (not yet checked: see `si_hf.store.verify`)."""
        out = []
        for p in self.rounds.glob("round-*/member-*"):
            r, m = _ROUND_DIR.fullmatch(p.parent.name), _MEMBER_DIR.fullmatch(p.name)
            if r and m and p.is_dir():
                out.append((int(r[1]), int(m[1])))
        return sorted(out)

    def relative(self, round: int, member: int, part: str = "") -> str:
        """`rounds/round-003/member-0[/part]`: a round's path relative to the output directory."""
        return "/".join(x for x in (ROUNDS, member_path(round, member), part) if x)
