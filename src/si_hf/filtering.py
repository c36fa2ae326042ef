"""Unsupervised label filters, registered in `FILTERS`, and their composition `apply_filters`.

A filter is a `Filter` registered with its name, help, options and validation (docs/extending.md adds
one from a user's module). Built in:

- `none`: every label, run-on outputs included (their text up to the prompt's length bound). Only a
  label that cannot be tokenized back (maze numbers run together) is dropped, because it cannot be
  trained on; the count is recorded. This is the paper's no-filter baseline (figures 5, 8, 32).
- `finished`: complete outputs only (EOS within the bound). Every filter but `none` implies it: a
  run-on output is no label for them.
- `length`, `majority_vote`, `verifier`: see their functions.
- `oracle`: the true answer decides, with a graded error rate (`oracle_stage`). A research instrument that
  reads the ground truth, so never the method: it measures the floor an imperfect check sets.

A filter is a *stage* (`stage(inputs, keep) -> keep`: a keep mask over one label per prompt, given the
mask of the stages before it) or a *vote* (it turns k members' predictions into one label per prompt and
must come first). `apply_filters` runs a list of them on one difficulty level's predictions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from si_hf.checks import is_int, require_int
from si_hf.configs import SelfImproveArguments
from si_hf.labeling import Prediction
from si_hf.registry import Registry
from si_hf.tasks.seeding import rng_for

FILTERS = Registry("filter", key="filters")
CHECKS = ("move", "end")
# Which label member m of a voting run trains on (paper section 5: its own agreeing labels).
VOTE_LABELS = ("own", "consensus")
# Appendix B.2.4, table 2: (initial training data cost, self-improve data cost per round) in units of
# one model's D_0 and one round's examples_per_round, for k members.
VOTE_VARIANTS = {
    "independent": ("k", "k"),  # the paper's main setting: k seeds, each member its own labels
    "shared_data": ("k", "1"),  # k seeds, every member trains on one voted dataset
    "shared_seed": ("1", "k"),  # one round-0 model for all, then each member its own labels
    "more_data": ("1", "k"),  # no vote: one model, k times the prompts a round
}


def check_vote_variant(settings) -> None:
    """A variant other than `independent` is an ablation of the vote: it needs the majority_vote filter
    over k >= 2 members."""
    variant = settings.vote_variant
    if variant not in VOTE_VARIANTS:
        raise ValueError(f"vote_variant: {variant!r} is not one of {list(VOTE_VARIANTS)}")
    if variant != "independent" and ("majority_vote" not in settings.filters or settings.num_members < 2):
        raise ValueError(
            f"vote_variant: {variant!r} is an ablation of the majority vote; expected filters with majority_vote "
            f"and num_members >= 2, got filters {list(settings.filters)} and num_members {settings.num_members}"
        )


def label_member(settings, m: int) -> int:
    """The member whose prompts and labels member m trains on: its own, or member 0's under
    `shared_data` (one voted dataset for every member)."""
    return 0 if settings.vote_variant == "shared_data" else m


def vote_variant_settings(settings):
    """The settings a vote variant runs with. `more_data` (B.2.4, baseline 1): one model labelling k times
    examples_per_round prompts a round, the majority_vote filter dropped (the others kept); `shared_data`:
    every member trains on the winning labels (vote_labels consensus). The others run as given."""
    k = settings.num_members
    if settings.vote_variant == "more_data":
        kept = [f for f in settings.filters if f != "majority_vote"] or ["finished"]
        return replace(settings, num_members=1, examples_per_round=k * settings.examples_per_round,
                                   filters=kept)  # fmt: skip
    if settings.vote_variant == "shared_data":
        return replace(settings, vote_labels="consensus")
    return settings


def _check_mask(mask, n: int, what: str) -> list[bool]:
    if mask is None:
        return [True] * n
    if len(mask) != n:
        raise ValueError(f"{what} has {len(mask)} entries, expected one per prediction ({n})")
    return [bool(m) for m in mask]


def length_filter(
    predictions: Sequence[Prediction], tau: int, batch_size: int, *, keep: Sequence[bool] | None = None
) -> tuple[list[bool], list[dict]]:
    """Drop a prediction that is at least `tau` tokens shorter than the longest finished one in its batch.

    Batches are consecutive chunks of `batch_size` predictions in the order given (the prompts' order
    at labeling time). Reading of the paper (section 5): with L the longest finished prediction of the
    batch, keep a prediction iff `L - num_tokens < tau`; tau=2 keeps answers one token short of L.
    Incomplete (run-on) predictions are dropped and never set L, so one run-on output cannot empty a
    batch.
    `keep` restricts the candidates (and the references) to predictions an earlier filter kept.
    """
    require_int(tau, "length filter tau", 1, unit="tokens")
    require_int(batch_size, "length filter batch_size", 1)
    alive = _check_mask(keep, len(predictions), "keep mask")
    mask, info = [], []
    for start in range(0, len(predictions), batch_size):
        idx = range(start, min(start + batch_size, len(predictions)))
        lengths = [predictions[i].num_tokens for i in idx if alive[i] and predictions[i].complete]
        ref = max(lengths, default=None)
        for i in idx:
            p = predictions[i]
            ok = alive[i] and p.complete and ref - p.num_tokens < tau
            mask.append(ok)
            info.append({"reference": ref, "run_on": not p.finished})
    return mask, info


def vote_threshold(tau: float, k: int) -> int:
    """ceil(tau * k) votes, robust to float error (0.28 * 25 is 7.000000000000001 in floats)."""
    if not is_int(k) or k < 1:
        raise ValueError(f"majority vote needs k >= 1 members, got k={k!r}")
    if isinstance(tau, bool) or not isinstance(tau, int | float) or not 0 < tau <= 1:
        raise ValueError(f"majority vote tau={tau!r}: expected a number in (0, 1]")
    return max(1, math.ceil(round(tau * k, 9)))


def majority_vote(
    member_predictions: Sequence[Sequence[Prediction]], tau: float
) -> tuple[list[bool], list[dict]]:
    """Keep prompt i when at least ceil(tau*k) of the k members produced the same decoded string.

    Paper section 5: "we retain only those data points (x_i, M^(s)(x_i)) where the output M^(s)(x_i)
    matches at least ceil(tau*k) of the k outputs". Strings are compared, never token tuples (padding
    must not decide agreement); incomplete predictions cast no vote. info[i] = {"label": winning
    string or None, "votes": its count, "member": the first member that produced it, "agreeing": the
    members whose own label is the winning one}. Ties in count (possible only for tau <= 0.5) go to
    the string produced by the lowest-indexed member, so the result depends only on the members' order.
    """
    k = len(member_predictions)
    need = vote_threshold(tau, k)
    n = len(member_predictions[0])
    for m, preds in enumerate(member_predictions):
        if len(preds) != n:
            raise ValueError(f"member {m} has {len(preds)} predictions, member 0 has {n}: expected equal")
    mask, info = [], []
    for i in range(n):
        votes = Counter()
        first = {}
        for m in range(k):
            p = member_predictions[m][i]
            if p.complete:
                votes[p.text] += 1
                first.setdefault(p.text, m)
        if votes:
            label = min(votes, key=lambda s: (-votes[s], first[s]))
            agreeing = [
                m
                for m in range(k)
                if member_predictions[m][i].complete and member_predictions[m][i].text == label
            ]
            mask.append(votes[label] >= need)
            info.append({"label": label, "votes": votes[label], "member": first[label], "agreeing": agreeing})
        else:
            mask.append(False)
            info.append({"label": None, "votes": 0, "member": None, "agreeing": []})
    return mask, info


def verifier_filter(
    task, prompts: Sequence[str], predictions: Sequence[Prediction], checks: Sequence[str] = CHECKS
) -> tuple[list[bool], list[dict]]:
    """Maze oracle verifiers: keep when every requested check of `task.validity` passes.

    checks: subset of ("move", "end") -> `move_valid` (each hop is an edge), `end_valid` (reaches the
    target). info[i] is the validity dict ({} for incomplete predictions, dropped unchecked).
    """
    if not callable(getattr(task, "validity", None)):
        raise ValueError(f"verifier filter needs a maze task with validity(); task {task.name!r} has none")
    checks = tuple(checks)
    bad = [c for c in checks if c not in CHECKS]
    if bad or not checks:
        raise ValueError(f"verifier checks {checks!r}: expected a non-empty subset of {CHECKS}")
    if len(prompts) != len(predictions):
        raise ValueError(f"{len(prompts)} prompts but {len(predictions)} predictions: expected equal")
    mask, info = [], []
    for prompt, p in zip(prompts, predictions):
        valid = task.validity(prompt, p.text) if p.complete else {}
        mask.append(bool(valid) and all(valid[f"{c}_valid"] for c in checks))
        info.append(valid)
    return mask, info


@dataclass
class FilterResult:
    keep: list[bool]
    labels: list[str | None]  # the candidate label per prompt (None when there is none)
    votes: list[int]  # members agreeing on the label (1 without majority vote, 0 for no label)
    counts: dict[str, int] = field(default_factory=dict)  # survivors after each stage, in order
    finished: list[bool] = field(default_factory=list)  # the label ended with EOS within the bound
    agreeing: list[list[int]] = field(default_factory=list)  # voting: members whose own label it is

    @property
    def num_kept(self) -> int:
        return sum(self.keep)


@dataclass(frozen=True)
class FilterInputs:
    """What a filter stage sees for one difficulty level: the prompts, one candidate prediction per
    prompt (the vote's winner when there was a vote), the task, the run's settings
    (`SelfImproveArguments`: the built-in filters' options are fields of it) and the stage's own
    `plugin_options`."""

    prompts: Sequence[str] | None
    predictions: Sequence[Prediction]
    task: object
    settings: object
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Vote:
    """A vote's outcome per prompt: the candidate label's prediction, kept or not, its votes, and the
    members whose own label it is."""

    predictions: list[Prediction]
    keep: list[bool]
    votes: list[int]
    agreeing: list[list[int]]


@dataclass(frozen=True)
class Filter:
    """A registered filter: a `stage` (FilterInputs, keep mask) -> one decision per prompt (a label
    stays only when every stage so far kept it), or a `vote` (k members' predictions, settings,
    member) -> Vote that comes first. `keeps_run_ons`: the `none` filter, which
    alone keeps run-on outputs and combines with no other."""

    stage: Callable[[FilterInputs, list[bool]], list[bool]] | None = None
    vote: Callable[..., Vote] | None = None
    keeps_run_ons: bool = False


def _finished_stage(inputs: FilterInputs, keep: list[bool]) -> list[bool]:
    return keep  # the stage every filter but none starts with: nothing left to drop


def _length_stage(inputs: FilterInputs, keep: list[bool]) -> list[bool]:
    s = inputs.settings
    return length_filter(inputs.predictions, s.length_filter_tau, s.label_batch_size, keep=keep)[0]


def _verifier_stage(inputs: FilterInputs, keep: list[bool]) -> list[bool]:
    if inputs.task is None or inputs.prompts is None:
        raise ValueError("the verifier filter needs task= and prompts=")
    ok, _ = verifier_filter(inputs.task, inputs.prompts, inputs.predictions, inputs.settings.verifier_checks)
    return ok


def oracle_stage(inputs: FilterInputs, keep: list[bool]) -> list[bool]:
    """Keep a label exactly when it is the prompt's true answer (`task.verify`), then err on purpose: a
    wrong label is kept with probability `oracle_false_accept` q, a right one dropped with probability
    `oracle_false_reject` p. q = 1 keeps every finished label (what `finished` keeps); q = p = 0 is the
    perfect check. Each draw is seeded by the prompt and the label, so the same label of the same prompt
    gets the same decision on every machine and in every rerun."""
    if inputs.task is None or inputs.prompts is None:
        raise ValueError("the oracle filter needs task= and prompts=")
    q, p = inputs.settings.oracle_false_accept, inputs.settings.oracle_false_reject
    out = []
    for prompt, pred in zip(inputs.prompts, inputs.predictions):
        right = pred.complete and bool(inputs.task.verify(prompt, pred.text))
        draw = rng_for(0, "oracle", prompt, pred.text).random()
        out.append(draw >= p if right else draw < q)
    return out


def _check_oracle(settings, task) -> None:
    for name in ("oracle_false_accept", "oracle_false_reject"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{name}: {value!r}; expected a probability in [0, 1]")


def _vote(predictions, settings, member: int | None) -> Vote:
    """Majority vote as the first stage: one candidate Prediction per prompt (the winner's)."""
    keep, info = majority_vote(predictions, settings.vote_threshold)
    if member is not None:
        if not 0 <= member < len(predictions):
            raise ValueError(f"member={member}: expected 0..{len(predictions) - 1}")
        keep = [ok and member in d["agreeing"] for ok, d in zip(keep, info)]
    # The winning member's Prediction carries the label's token length for the length filter.
    preds = [
        predictions[d["member"]][i] if d["member"] is not None else predictions[0][i]
        for i, d in enumerate(info)
    ]
    return Vote(preds, keep, [d["votes"] for d in info], [list(d["agreeing"]) for d in info])


def _check_vote(settings, task) -> None:
    if settings.num_members < 2:
        raise ValueError(f"num_members: {settings.num_members}: majority_vote needs num_members >= 2")
    vote_threshold(settings.vote_threshold, settings.num_members)
    if settings.vote_labels not in VOTE_LABELS:
        raise ValueError(f"vote_labels: {settings.vote_labels!r} is not one of {list(VOTE_LABELS)}")


def _check_verifier(settings, task) -> None:
    if not callable(getattr(task, "validity", None)):
        raise ValueError(f"filters: 'verifier' needs a maze task (move/end validity), got task {task.name!r}")
    checks = settings.verifier_checks
    if isinstance(checks, str) or not checks or any(c not in CHECKS for c in checks):
        raise ValueError(f"verifier_checks: {checks!r}; expected a non-empty subset of {list(CHECKS)}")


def _check_length(settings, task) -> None:
    require_int(settings.length_filter_tau, "length_filter_tau", 1, unit="tokens")


FILTERS.register(
    "none",
    Filter(keeps_run_ons=True),
    help="keep every label that tokenizes, run-on outputs included (the no-filter baseline)",
)
FILTERS.register(
    "finished", Filter(stage=_finished_stage), help="drop run-on outputs (no EOS within the bound)"
)
FILTERS.register(
    "length",
    Filter(stage=_length_stage),
    help="drop labels at least length_filter_tau tokens shorter than the longest of their batch (section 5)",
    options=("length_filter_tau",),
    validate=_check_length,
)
FILTERS.register(
    "majority_vote",
    Filter(vote=_vote),
    help="keep a label that at least ceil(vote_threshold * num_members) members give (section 5); comes first",
    options=("vote_threshold", "vote_labels"),
    validate=_check_vote,
)
FILTERS.register(
    "oracle",
    Filter(stage=oracle_stage),
    help="the true answer decides, wrong labels kept with probability oracle_false_accept and right ones "
    "dropped with oracle_false_reject (a research instrument that reads the ground truth, never the method)",
    options=("oracle_false_accept", "oracle_false_reject"),
    validate=_check_oracle,
)
FILTERS.register(
    "verifier",
    Filter(stage=_verifier_stage),
    help="maze move / end validity (section 6.3)",
    options=("verifier_checks",),
    validate=_check_verifier,
)


def check_spec(spec) -> list[str]:
    """The filter names of `spec`, checked: registered, none alone, a vote first, no repeats."""
    if isinstance(spec, str):
        raise ValueError(f"filters: {spec!r} is a string; expected a list of filter names, e.g. [{spec!r}]")
    spec = list(spec)
    if not spec:
        raise ValueError("filters: [] names no filter; use [none] for the no-filter baseline")
    filters = [FILTERS.get(name).obj for name in spec]
    repeated = sorted({n for n in spec if spec.count(n) > 1})
    if repeated:
        raise ValueError(f"filters: {spec}: {repeated} appear more than once")
    if any(f.keeps_run_ons for f in filters) and len(spec) > 1:
        raise ValueError(f"filters: {spec}: 'none' cannot be combined with other filters")
    votes = [n for n, f in zip(spec, filters) if f.vote is not None]
    if votes and (spec[0] != votes[0] or len(votes) > 1):
        raise ValueError(
            f"filters: {spec}: {votes[0]} must come first (it picks the label), and only one vote"
        )
    return spec


def check_filters(settings, task) -> list[str]:
    """`settings.filters` checked as a list, then each filter's own validation of its options; an option
    of a filter the run does not use may not be set."""
    spec = check_spec(settings.filters)
    FILTERS.refuse_unused_options(settings, spec)
    for name in spec:
        entry = FILTERS.get(name)
        if entry.validate is not None:
            entry.validate(settings, task)
    return spec


def voting(spec) -> bool:
    """The first filter is a vote: every member labels every prompt."""
    spec = list(spec)
    return bool(spec) and FILTERS.get(spec[0]).obj.vote is not None


def _keep_all(predictions) -> FilterResult:
    """`none`: every label that tokenizes back, run-on outputs included."""
    preds = list(predictions)
    keep = [p.tokenizes for p in preds]
    return FilterResult(
        keep=keep,
        labels=[p.text if p.tokenizes else None for p in preds],
        votes=[int(k) for k in keep],
        counts={"total": len(preds), "tokenizes": sum(keep)},
        finished=[p.finished for p in preds],
        agreeing=[[] for _ in preds],
    )


def apply_filters(
    spec: Sequence[str],
    predictions: Sequence[Prediction] | Sequence[Sequence[Prediction]],
    *,
    prompts: Sequence[str] | None = None,
    task=None,
    settings=None,
    member: int | None = None,
) -> FilterResult:
    """Run the filters named in `spec` in order, each on the survivors of the previous ones.

    `predictions` is one model's list, or k members' lists (required by a vote, which must then come
    first: it turns k predictions per prompt into one label). `["none"]` keeps every label that
    tokenizes back, run-on ones included; any other filter first drops incomplete predictions (the
    implied `finished` stage). `settings` holds the filters' options (a `SelfImproveArguments`; its
    defaults when None). With `member` set, majority vote keeps only the prompts where that member's
    own label is the winning string, the paper's rule (section 5): "we retain only those data points
    (x_i, M^(s)(x_i)) where the output M^(s)(x_i) matches at least ceil(tau*k) of the k outputs".
    Without it every member gets the winning label (the `consensus` ablation).
    """
    spec = check_spec(spec)
    settings = SelfImproveArguments() if settings is None else settings
    members = bool(predictions) and not isinstance(predictions[0], Prediction)
    first = FILTERS.get(spec[0]).obj
    if first.vote is not None:
        if not members:
            raise ValueError(f"{spec[0]} needs k members' predictions (a list of lists), got one list")
        vote = first.vote(predictions, settings, member)
        preds, keep, votes, agreeing = vote.predictions, vote.keep, vote.votes, vote.agreeing
        counts = {"total": len(preds), spec[0]: sum(keep)}
        stages = spec[1:]
    elif members:
        raise ValueError(f"filters {spec} have no vote: expected one list of predictions")
    elif first.keeps_run_ons:
        return _keep_all(predictions)
    else:
        preds = list(predictions)
        keep = [p.complete for p in preds]
        votes = [int(k) for k in keep]
        agreeing = [[] for _ in preds]
        counts = {"total": len(preds), "finished": sum(keep)}
        stages = spec
    for name in stages:
        inputs = FilterInputs(prompts, preds, task, settings, settings.options_of(name))
        decisions = list(FILTERS.get(name).obj.stage(inputs, keep))
        if len(decisions) != len(preds):
            raise ValueError(
                f"filter {name!r} returned {len(decisions)} decisions for {len(preds)} predictions"
            )
        keep = [a and bool(b) for a, b in zip(keep, decisions)]  # a stage only drops: never revives a label
        counts[name] = sum(keep)
    labels = [p.text if p.complete else None for p in preds]
    return FilterResult(
        keep=keep,
        labels=labels,
        votes=votes,
        counts=counts,
        finished=[p.complete for p in preds],
        agreeing=agreeing,
    )
