"""One round's self-labelled data, from prompts to rows: sample prompts, filter per level, keep rows.

Everything here is a pure function of its arguments (the labelling itself is `si_hf.labeling`), so
the rows a round publishes can be tested without a model or a store.
"""

from __future__ import annotations

from si_hf.filtering import FilterResult, apply_filters, voting
from si_hf.layout import member_dirname, revision
from si_hf.schema import ROUND_FEATURES

# What a staged round's labels depend on besides the round itself: changing one relabels.
LABEL_SETTINGS = (
    "examples_per_round",
    "filters",
    "length_filter_tau",
    "num_members",
    "vote_threshold",
    "vote_labels",
    "verifier_checks",
    "label_batch_size",
    "decode_precision",
    "plugin_options",  # the options of user-registered filters (docs/extending.md)
)
# Label settings added after stores were written, with the value those stores' labels were made with.
LABEL_SETTINGS_ADDED_LATER = {"decode_precision": "fp32", "plugin_options": None}


def same_label_settings(recorded: dict | None, current: dict) -> bool:
    """Staged labels were made with `current` settings; a setting added since counts as its old value."""
    return recorded is not None and {**LABEL_SETTINGS_ADDED_LATER, **recorded} == current


def label_settings(task, si, levels: list) -> dict:
    return {"levels": [task.difficulty_key(d) for d in levels], **{k: getattr(si, k) for k in LABEL_SETTINGS}}


def sample_round_prompts(
    task, n: int, levels: list, *, seed: int, round: int, member: int
) -> tuple[list[str], list[str]]:
    """`n` train-split prompts spread evenly over `levels`, from member m's own stream of round r."""
    per_level = [n // len(levels) + (1 if i < n % len(levels) else 0) for i in range(len(levels))]
    prompts, difficulties = [], []
    for level, count in zip(levels, per_level):
        cols = task.generate(
            count, seed=seed, purpose="round", keys=(round, member), difficulty=level, split="train"
        )
        prompts += cols["prompt"]
        difficulties += cols["difficulty"]
    return prompts, difficulties


def level_spans(keys: list[str]) -> list[tuple[int, int]]:
    """[lo, hi) ranges of equal consecutive keys."""
    spans, lo = [], 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[lo]:
            spans.append((lo, i))
            lo = i
    return spans


def filter_by_level(
    si, task, prompts: list[str], difficulties: list[str], predictions: list[list], *, member: int | None
) -> list[FilterResult]:
    """`si.filters` on each difficulty level of `prompts` on its own.

    `predictions` holds one list per labelling model (k lists when voting). A length-filter batch that
    mixed 7x1 with 1x7 answers would drop every short (correct) one, so levels never share a batch;
    the level comes from the prompt, not from an answer. `member` is the voter whose own agreeing
    labels are kept (`vote_labels: own`), None for the consensus label or without voting."""
    vote = voting(si.filters)
    return [
        apply_filters(
            si.filters,
            [p[lo:hi] for p in predictions] if vote else predictions[0][lo:hi],
            task=task,
            prompts=prompts[lo:hi],
            settings=si,
            member=member,
        )
        for lo, hi in level_spans(difficulties)
    ]


def generated_by(round: int, member: int, labelers: list[int], voting: bool) -> str:
    """`round-2/member-0`, or `round-2/members-0,1,2` when the members voted."""
    who = "members-" + ",".join(map(str, labelers)) if voting else member_dirname(member)
    return f"{revision(round)}/{who}"


def round_rows(
    task,
    r: int,
    prompts: list[str],
    difficulties: list[str],
    results: list[FilterResult],
    *,
    generated_by: str,
    filter_name: str,
    member: int,
) -> dict[str, list]:
    """The kept rows of round r, as columns of `ROUND_FEATURES`, from the filter results per level.

    `results` are `FilterResult`s of consecutive spans of `prompts`, in order."""
    keep = [k for res in results for k in res.keep]
    if len(keep) != len(prompts):
        raise ValueError(f"{len(keep)} filter decisions for {len(prompts)} prompts: expected one each")
    labels = [x for res in results for x in res.labels]
    votes = [x for res in results for x in res.votes]
    finished = [x for res in results for x in res.finished]
    agreeing = [x for res in results for x in res.agreeing]
    rows = {name: [] for name in ROUND_FEATURES}
    for i in (i for i, kept in enumerate(keep) if kept):
        rows["prompt"].append(prompts[i])
        rows["completion"].append(labels[i])
        rows["difficulty"].append(difficulties[i])
        rows["round"].append(r)
        rows["generated_by"].append(generated_by)
        rows["filter"].append(filter_name)
        rows["votes"].append(int(votes[i]))
        rows["finished"].append(bool(finished[i]))
        rows["agreeing_members"].append(list(agreeing[i]) or [member])
        rows["oracle_correct"].append(bool(task.verify(prompts[i], labels[i])))
    return rows


def filter_counts(results: list[FilterResult]) -> dict[str, int]:
    """Survivors after each filter stage, summed over the levels."""
    counts: dict[str, int] = {}
    for res in results:
        for step, n in res.counts.items():
            counts[step] = counts.get(step, 0) + n
    return counts


def label_info(rows: dict, results: list[FilterResult], labelled: int, seconds: float, who: str) -> dict:
    """What labelling and filtering a round measured: counts, data accuracy, speed, provenance."""
    kept = len(rows["prompt"])
    return {
        "n_generated": sum(len(res.keep) for res in results),
        "n_kept": kept,
        "data_accuracy": (sum(rows["oracle_correct"]) / kept) if kept else None,
        "label_seconds": seconds,
        "label_examples_per_second": labelled / seconds if seconds else None,
        "filter_counts": filter_counts(results),
        "n_kept_unfinished": rows["finished"].count(False),
        "generated_by": who,
    }
