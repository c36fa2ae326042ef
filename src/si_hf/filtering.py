"""Unsupervised label filters: finished, length, majority vote, maze verifiers, and their composition.

Every filter is a pure function over `Prediction`s that returns `(keep, info)`: a keep mask with one
bool per prompt and one info dict per prompt.

What each name keeps (`apply_filters`):
- `none`: every label, run-on outputs included (their text up to the prompt's length bound). Only a
  label that cannot be tokenized back (maze numbers run together) is dropped, because it cannot be
  trained on; the count is recorded. This is the paper's no-filter baseline (figures 5, 8, 32).
- `finished`: complete outputs only (EOS within the bound). `length`, `majority_vote` and
  `verifier` imply it: a run-on output is no label for them.
- `length`, `majority_vote`, `verifier`: see their functions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from si_hf.checks import is_int, require_int
from si_hf.labeling import Prediction

FILTERS = ("none", "finished", "length", "majority_vote", "verifier")
CHECKS = ("move", "end")
# Which label member m of a voting run trains on (paper section 5: its own agreeing labels).
VOTE_LABELS = ("own", "consensus")


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


def _check_spec(spec) -> list[str]:
    if isinstance(spec, str):
        raise ValueError(
            f"filter spec {spec!r} is a string; expected a list of filter names, e.g. [{spec!r}]"
        )
    spec = list(spec)
    unknown = [s for s in spec if s not in FILTERS]
    if unknown:
        raise ValueError(f"unknown filter(s) {unknown}; known filters: {list(FILTERS)}")
    if "none" in spec and len(spec) > 1:
        raise ValueError(f"filter spec {spec}: 'none' cannot be combined with other filters")
    if "majority_vote" in spec and spec[0] != "majority_vote":
        raise ValueError(f"filter spec {spec}: majority_vote must come first")
    return spec


def _vote(predictions, vote_tau: float, member: int | None):
    """Majority vote as the first stage: one candidate Prediction per prompt (the winner's)."""
    keep, info = majority_vote(predictions, vote_tau)
    if member is not None:
        if not 0 <= member < len(predictions):
            raise ValueError(f"member={member}: expected 0..{len(predictions) - 1}")
        keep = [ok and member in d["agreeing"] for ok, d in zip(keep, info)]
    # The winning member's Prediction carries the label's token length for the length filter.
    preds = [
        predictions[d["member"]][i] if d["member"] is not None else predictions[0][i]
        for i, d in enumerate(info)
    ]
    return preds, keep, [d["votes"] for d in info], [list(d["agreeing"]) for d in info]


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
    batch_size: int = 256,
    length_tau: int = 2,
    vote_tau: float = 0.8,
    checks: Sequence[str] = CHECKS,
    member: int | None = None,
) -> FilterResult:
    """Run the filters named in `spec` in order, each on the survivors of the previous ones.

    `predictions` is one model's list, or k members' lists (required by "majority_vote", which must
    then come first: it turns k predictions per prompt into one label). `[]` / `["none"]` keep every
    label that tokenizes back, run-on ones included; any other filter first drops incomplete
    predictions (the implied `finished` stage). With `member` set, majority vote keeps only the
    prompts where that member's own label is the winning string, the paper's rule (section 5): "we
    retain only those data points (x_i, M^(s)(x_i)) where the output M^(s)(x_i) matches at least
    ceil(tau*k) of the k outputs". Without it every member gets the winning label (the `consensus`
    ablation).
    """
    spec = _check_spec(spec)
    members = bool(predictions) and not isinstance(predictions[0], Prediction)
    if "majority_vote" in spec:
        if not members:
            raise ValueError("majority_vote needs k members' predictions (a list of lists), got one list")
        preds, keep, votes, agreeing = _vote(predictions, vote_tau, member)
        counts = {"total": len(preds), "majority_vote": sum(keep)}
        spec = spec[1:]
    elif members:
        raise ValueError(f"filter spec {spec} has no majority_vote: expected one list of predictions")
    elif spec in ([], ["none"]):
        return _keep_all(predictions)
    else:
        preds = list(predictions)
        keep = [p.complete for p in preds]
        votes = [int(k) for k in keep]
        agreeing = [[] for _ in preds]
        counts = {"total": len(preds), "finished": sum(keep)}
    for name in spec:
        if name == "length":
            keep, _ = length_filter(preds, length_tau, batch_size, keep=keep)
        elif name == "verifier":
            if task is None or prompts is None:
                raise ValueError("the verifier filter needs task= and prompts=")
            ok, _ = verifier_filter(task, prompts, preds, checks)
            keep = [a and b for a, b in zip(keep, ok)]
        # "finished" is the stage every filter but none starts with: nothing left to drop
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
