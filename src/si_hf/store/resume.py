"""Resuming from a published round: a Hub revision (`user/name@round-3[/member-1]`) or a local round."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from si_hf.layout import DATA, DATASET, HUB_SPEC, MARKER, METRICS, MODEL, member_dirname, revision
from si_hf.schema import empty_round

from .errors import HubError, check_hub_reachable, hub_errors
from .local import read_parquet
from .verify import check_round, check_weights, read_json


@dataclass
class ResumeSource:
    round: int
    member: int
    model_path: str
    datasets: dict = field(default_factory=dict)  # round -> datasets.Dataset, rounds 1..r
    metrics: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    source: str = ""


def resolve_resume(spec: str, cache_dir=None, member: int | None = None) -> ResumeSource:
    """A finished round to resume from: ``user/name@round-3[/member-1]`` on the Hub, or a local round
    directory (``.../rounds/round-003/member-0`` or its ``model/``). Returns the model directory and the
    self-labelled datasets of rounds 1..r named by the round's marker. A run that itself started from
    another run records it in `info["resumed_from"]`; its earlier rounds are fetched from there."""
    source = _resolve_one(spec, cache_dir, member)
    parent = source.info.get("resumed_from")
    if parent:
        earlier = resolve_resume(parent["spec"], cache_dir, member=parent.get("member"))
        source.datasets = {**earlier.datasets, **source.datasets}
    missing = [r for r in range(1, source.round + 1) if r not in source.datasets]
    if missing:
        raise ValueError(
            f"{spec!r}: the self-labelled datasets of rounds {missing} are not recorded anywhere"
        )
    return source


def _resolve_one(spec: str, cache_dir, member: int | None) -> ResumeSource:
    path = Path(spec)
    if path.exists():
        root = path.parent if path.name == MODEL else path
        if not (root / MARKER).is_file():
            raise ValueError(f"resume_from: {spec!r} is not a published round: {root / MARKER} is missing")
        named = re.fullmatch(r"round-(\d+)", root.parent.name)
        # every file of the round, and the datasets of the earlier rounds it names, as they were published
        marker = check_round(
            root, int(named[1]) if named else read_json(root / MARKER, 0).get("round", 0), checksums=""
        )
        sets = {}
        for d in marker["datasets"]:
            source = root.parent.parent / d["path"]
            check_round(source.parent, d["round"], checksums=f"{DATASET}/")
            sets[d["round"]] = read_parquet(sorted((source / DATA).glob("*.parquet")))
        metrics = read_json(root / METRICS, marker["round"])
        return ResumeSource(
            marker["round"], marker["member"], str(root / MODEL), sets, metrics, marker["info"], spec
        )
    m = HUB_SPEC.match(spec)
    if not m:
        raise ValueError(
            f"resume_from must be an existing local round path or 'user/name@round-3', got {spec!r}"
        )
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    repo, rnd = m["repo"], int(m["round"])
    mem = int(m["member"]) if m["member"] is not None else (member or 0)
    rev = revision(rnd)
    sub = "" if m["member"] is None and member is None else f"{member_dirname(mem)}/"
    check_hub_reachable()
    with hub_errors("downloading the round", repo, rev):
        try:
            marker_file = hf_hub_download(repo, sub + MARKER, revision=rev, cache_dir=cache_dir)
        except LocalEntryNotFoundError:
            raise  # no connection and nothing cached: hub_errors says so
        except EntryNotFoundError as e:
            raise HubError(
                f"{repo}@{rev} has no {sub + MARKER}: the round is incomplete, cannot resume"
            ) from e
        allow = [f"{sub}*"] if sub else None
        snap = snapshot_download(repo, revision=rev, cache_dir=cache_dir, allow_patterns=allow)
    marker = json.loads(Path(marker_file).read_text())
    import datasets

    sets = {}
    for d in marker["datasets"]:
        if "repo" not in d:
            raise HubError(
                f"{repo}@{rev}: the dataset of round {d['round']} was never pushed (the run had no "
                "--hub_dataset_id), so this round cannot be resumed from the Hub; resume from its local "
                "round directory instead"
            )
        name = None if d.get("config", "default") == "default" else d["config"]
        try:
            sets[d["round"]] = datasets.load_dataset(
                d["repo"], name, revision=d["revision"], split="train", cache_dir=cache_dir
            )
        except ValueError as e:  # datasets cannot infer a split from a parquet file with no rows
            if "corresponds to no data" not in str(e):
                raise
            sets[d["round"]] = empty_round()
    model_dir = str(Path(snap) / sub) if sub else snap
    check_weights(Path(model_dir), marker, where=f"{repo}@{rev}")
    metrics = json.loads(Path(model_dir, METRICS).read_text())
    return ResumeSource(rnd, mem, model_dir, sets, metrics, marker["info"], spec)
