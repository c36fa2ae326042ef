"""One round's self-labelled data, from prompts to rows: sample prompts, filter per level, keep rows.

Everything here is a pure function of its arguments (the labelling itself is `si_hf.labeling`), so
the rows a round publishes can be tested without a model or a store.
"""

from __future__ import annotations

from datasets import Dataset

from si_hf.filtering import FilterResult, apply_filters, voting
from si_hf.labeling import Prediction
from si_hf.layout import member_dirname, revision
from si_hf.noise import inject
from si_hf.schema import ROUND_FEATURES
from si_hf.tokenization import encode_completions

# Where a round's labels come from: the previous round's models (the method) or the true answers (a
# control arm: appendix B.7's random labels are truth + noise_kind uniform at noise_fraction 1).
LABEL_SOURCES = ("model", "truth")

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
    "oracle_false_accept",
    "oracle_false_reject",
    "label_source",
    "noise_kind",
    "noise_fraction",
    "noise_rounds",
)
# Label settings added after stores were written, with the value those stores' labels were made with.
LABEL_SETTINGS_ADDED_LATER = {
    "decode_precision": "fp32",
    "plugin_options": None,
    "oracle_false_accept": 0.0,
    "oracle_false_reject": 0.0,
    "label_source": "model",
    "noise_kind": "uniform",
    "noise_fraction": 0.0,
    "noise_rounds": [],
}


def check_label_source(label_source: str) -> str:
    if label_source not in LABEL_SOURCES:
        raise ValueError(f"label_source: {label_source!r} is not one of {list(LABEL_SOURCES)}")
    return label_source


def truth_predictions(task, tokenizer, prompts: list[str]) -> list[Prediction]:
    """`label_source: truth`: each prompt's true answer as a finished prediction, for the filters to see
    exactly as they see a model's."""
    answers = [task.solve(p) for p in prompts]
    lengths = [len(ids) - 1 for ids in encode_completions(tokenizer, answers)]  # without EOS
    return [Prediction(text=a, finished=True, num_tokens=n) for a, n in zip(answers, lengths)]


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
        rows["injected"].append(False)
        rows["original_completion"].append(labels[i])
    return rows


def add_noise(task, rows: dict, si, *, seed: int, round: int, member: int) -> dict:
    """The kept rows of a round listed in `si.noise_rounds` with `si.noise_fraction` of their labels
    replaced by `si.noise_kind` (`si_hf.noise`); `oracle_correct` then describes the label trained on.
    Rows of other rounds come back unchanged."""
    if round not in (si.noise_rounds or []):
        return rows
    completions, injected = inject(
        rows["completion"], si.noise_kind, si.noise_fraction, seed=seed, round=round, member=member
    )
    out = dict(rows)
    out["completion"] = completions
    out["injected"] = injected
    out["original_completion"] = list(rows["completion"])
    out["oracle_correct"] = [
        bool(task.verify(p, c)) if hit else ok
        for p, c, hit, ok in zip(rows["prompt"], completions, injected, rows["oracle_correct"])
    ]
    return out


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
        "n_injected": sum(rows["injected"]),
        "data_accuracy": (sum(rows["oracle_correct"]) / kept) if kept else None,
        "label_seconds": seconds,
        "label_examples_per_second": labelled / seconds if seconds else None,
        "filter_counts": filter_counts(results),
        "n_kept_unfinished": rows["finished"].count(False),
        "generated_by": who,
    }


def round_labels(
    task,
    si,
    r: int,
    m: int,
    prompts,
    difficulties,
    predictions,
    labelers: list[int],
    seconds: float,
    *,
    seed: int,
) -> tuple[Dataset, dict]:
    """Member m's labels of round r from the labelling models' predictions: filtered per level
    (`filter_by_level`; a vote keeps m's own agreeing labels under `vote_labels: own`), the kept rows, the
    synthetic noise of the rounds that ask for it (after the filters, appendix B.6.2), as a typed dataset
    (even when no label was kept) and what labelling and filtering measured."""
    vote = voting(si.filters)
    own = labelers.index(m) if vote and si.vote_labels == "own" else None
    results = filter_by_level(si, task, prompts, difficulties, predictions, member=own)
    who = "truth" if si.label_source == "truth" else generated_by(r - 1, m, labelers, vote)
    rows = round_rows(
        task, r, prompts, difficulties, results, generated_by=who, filter_name="+".join(si.filters), member=m
    )
    rows = add_noise(task, rows, si, seed=seed, round=r, member=m)
    dataset = Dataset.from_dict(rows, features=ROUND_FEATURES)
    return dataset, label_info(rows, results, len(prompts) * len(labelers), seconds, who)


def wrong_labels(datasets: dict, limit: int) -> dict[int, tuple[list[str], list[str], list[bool]]]:
    """{round k: (prompts, labels, finished)} of the first `limit` rows of each round's dataset whose
    label is wrong (`oracle_correct` false), for `si_hf.evaluation.memorised_mistakes`. A round without a
    dataset, or written before `oracle_correct` existed, is left out."""
    out = {}
    for k, ds in sorted(datasets.items()):
        if ds is None or "oracle_correct" not in ds.column_names:
            continue
        rows = ds.select([i for i, ok in enumerate(ds["oracle_correct"]) if not ok][:limit])
        finished = rows["finished"] if "finished" in rows.column_names else [True] * len(rows)
        out[k] = (rows["prompt"], rows["completion"], finished)
    return out
