"""Evaluation: exact match per difficulty on held-out prompts, plus move/end validity for mazes.

Evaluation prompts come from the "eval" seed stream *and* the eval split of the prompt space
(`split="eval"`), so they can never be training prompts, whatever the seeds (the authors' code drew
both from one stream, and evaluation problems leaked into training).
The model answers greedily through `si_hf.labeling.label`, with no ground truth; accuracy is computed
by the local `evaluate` metric module in `si_hf/metrics/` (loaded by path, nothing from the Hub).

What counts as correct (paper section 3): "a prediction is considered correct only if all tokens of
the output sequence match the ground truth". The EOS is part of that sequence, so an answer must end
with EOS within the prompt's length bound and spell exactly the reference: a model that writes the
right digits and then never stops scores 0 there. The share of answers that ended with EOS is
reported beside the accuracy (`finished`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

from si_hf import tables
from si_hf.checks import require_int
from si_hf.tasks import EmptySplitError, difficulty_sort_key

logger = logging.getLogger(__name__)

METRIC_PATH = Path(__file__).parent / "metrics" / "exact_match_by_difficulty.py"


@functools.cache
def load_metric():
    """The exact-match-by-difficulty metric, loaded from the local module file (cached per process)."""
    import evaluate  # slow to import; only evaluation needs it

    return evaluate.load(str(METRIC_PATH), keep_in_memory=True)


class EvalSets(dict):
    """difficulty key -> (prompts, answers); `skipped` maps unevaluable keys to the reason."""

    def __init__(self, *args, skipped: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped = dict(skipped or {})


def _is_valid(task, d) -> bool:
    try:
        task.parse_difficulty(d)
    except ValueError:
        return False
    return True


def eval_difficulties(task, frontier, *, start=1, beyond: int = 3) -> list:
    """The levels to evaluate: from `start` to `beyond` levels past the frontier (the hardest trained).

    Levels the task rejects (e.g. maze_nodes below num_hops + 1) are left out. Multiplication takes
    the full square grid (i, j), 1 <= i, j <= max(n, m) + beyond for a frontier (n, m) or n (any task
    whose difficulties are pairs): its schedule trains both (n+1)xm and mx(n+1), and the paper reports
    accuracy over the whole grid.
    """
    require_int(beyond, "beyond", 0)
    if task.difficulty_dims == 2:
        n, m = (frontier, frontier) if isinstance(frontier, int) else task.parse_difficulty(frontier)
        top = max(n, m) + beyond
        lo = start if isinstance(start, int) else min(task.parse_difficulty(start))
        levels = [(i, j) for i in range(lo, top + 1) for j in range(lo, top + 1)]
    else:
        top = task.parse_difficulty(frontier) + beyond
        levels = list(range(start, top + 1))
    levels = [d for d in levels if _is_valid(task, d)]
    if not levels:
        raise ValueError(
            f"{task.name}: no valid difficulty between start={start!r} and frontier={frontier!r}+{beyond}"
        )
    return levels


def build_eval_sets(task, difficulties, *, num_per_difficulty: int, seed: int) -> EvalSets:
    """Held-out (prompts, answers) per difficulty key, each level from its own "eval" stream.

    Duplicate prompts are dropped, so a level with a small prompt space has fewer than
    `num_per_difficulty` problems (the metric reports the real count). A level with no prompt in the
    eval split (the task raises EmptySplitError: its prompt space is too small) is skipped and
    listed in `.skipped`, not an error.
    """
    require_int(num_per_difficulty, "num_per_difficulty", 1)
    sets = EvalSets()
    for d in difficulties:
        key = task.difficulty_key(d)
        try:
            rows = task.generate(num_per_difficulty, seed=seed, purpose="eval", difficulty=d, split="eval")
        except EmptySplitError as err:
            sets.skipped[key] = str(err)
            logger.warning("not evaluable: %s", err)
            continue
        unique = dict(zip(rows["prompt"], rows["answer"]))
        sets[key] = (list(unique), list(unique.values()))
    return sets


@dataclass
class EvalResult:
    """Per-difficulty metrics keyed by difficulty key; move/end validity only for maze tasks."""

    accuracy: dict[str, float]
    count: dict[str, int]
    move_valid: dict[str, float] | None = None
    end_valid: dict[str, float] | None = None
    finished: dict[str, float] = field(default_factory=dict)  # share of answers that ended with EOS
    skipped: dict[str, str] = field(default_factory=dict)
    # figure 26: per earlier round k (str), the model on that round's wrong training labels
    # {"n", "right", "reproduced"} (`memorised_mistakes`)
    memorised: dict[str, dict] = field(default_factory=dict)
    # appendix B.8: {operand length: {longest carry chain: exact match}} (`eval_carry_sets`)
    carries: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def overall(self) -> float:
        total = sum(self.count.values())
        return sum(self.accuracy[k] * self.count[k] for k in self.count) / total if total else 0.0

    def to_dict(self) -> dict:
        out = {"accuracy": self.accuracy, "count": self.count, "finished": self.finished}
        if self.move_valid is not None:
            out.update(move_valid=self.move_valid, end_valid=self.end_valid)
        if self.memorised:
            out["memorised"] = self.memorised
        if self.carries:
            out["carry_accuracy"] = self.carries
        return {**out, "overall": self.overall, "skipped": self.skipped}

    def merged(self, other: EvalResult) -> EvalResult:
        """This result with `other`'s levels added (levels evaluated in two passes, e.g. by
        `eval_until_below`); a level in both takes `other`'s figures."""

        def both(a, b):
            return None if a is None and b is None else {**(a or {}), **(b or {})}

        return EvalResult(
            accuracy={**self.accuracy, **other.accuracy},
            count={**self.count, **other.count},
            move_valid=both(self.move_valid, other.move_valid),
            end_valid=both(self.end_valid, other.end_valid),
            finished={**self.finished, **other.finished},
            skipped={**self.skipped, **other.skipped},
            memorised={**self.memorised, **other.memorised},
            carries={**self.carries, **other.carries},
        )

    @classmethod
    def from_dict(cls, d: dict) -> EvalResult:
        names = ("accuracy", "count", "move_valid", "end_valid", "finished", "skipped", "memorised")
        return cls(**{k: d[k] for k in names if k in d}, carries=d.get("carry_accuracy", {}))


def _rates(flags_by_key: dict[str, list[bool]]) -> dict[str, float]:
    return {k: sum(v) / len(v) for k, v in flags_by_key.items()}


def _maze_validity(task, prompt: str, answer: str) -> dict[str, bool]:
    try:
        return task.validity(prompt, answer)
    except ValueError:  # an answer the maze alphabet cannot spell is neither move- nor end-valid
        return {"move_valid": False, "end_valid": False}


def evaluate_model(
    model,
    tokenizer,
    task,
    eval_sets: dict,
    *,
    batch_size: int = 256,
    progress: bool = False,
    cache_implementation: str = "dynamic",
    decode_dtype: str = "fp32",
) -> EvalResult:
    """Greedy answers to every eval prompt (one labeling pass), scored per difficulty.

    Exact match counts an answer only when it is complete (EOS within the bound) and equal to the
    reference; move/end validity of mazes is likewise False for an incomplete answer."""
    from si_hf.labeling import label

    keys = [k for k, (prompts, _) in eval_sets.items() for _ in prompts]
    prompts = [p for ps, _ in eval_sets.values() for p in ps]
    answers = [a for _, answers in eval_sets.values() for a in answers]
    if len(prompts) != len(answers):
        raise ValueError(
            f"eval_sets: {len(prompts)} prompts but {len(answers)} answers; expected equal lengths"
        )
    predictions = label(
        model,
        tokenizer,
        task,
        prompts,
        batch_size=batch_size,
        progress=progress,
        cache_implementation=cache_implementation,
        decode_dtype=decode_dtype,
        desc="evaluating",
    )
    scores = load_metric().compute(
        predictions=[p.text for p in predictions],
        references=answers,
        difficulties=keys,
        finished=[p.complete for p in predictions],
    )
    by_key = {k: [] for k in eval_sets}
    for k, p in zip(keys, predictions):
        by_key[k].append(p.finished)
    result = EvalResult(
        accuracy=scores["exact_match_by_difficulty"],
        count=scores["count_by_difficulty"],
        finished=_rates(by_key),
        skipped=dict(getattr(eval_sets, "skipped", {})),
    )
    if hasattr(task, "validity"):
        move, end = {k: [] for k in by_key if by_key[k]}, {k: [] for k in by_key if by_key[k]}
        for k, prompt, p in zip(keys, prompts, predictions):
            if p.complete:
                v = _maze_validity(task, prompt, p.text)
            else:  # an output that never stops is no path
                v = {"move_valid": False, "end_valid": False}
            move[k].append(bool(v["move_valid"]))
            end[k].append(bool(v["end_valid"]))
        result.move_valid, result.end_valid = _rates(move), _rates(end)
    return result


def _rows(results_by_round) -> dict[str, object]:
    if isinstance(results_by_round, dict):
        return {str(name): r for name, r in results_by_round.items()}
    rows = list(results_by_round)
    if not all(isinstance(r, dict) and "round" in r for r in rows):
        raise ValueError(
            "results_by_round: expected {round: EvalResult or dict} or a list of metric dicts with 'round'"
        )
    members = {r.get("member", 0) for r in rows}
    return {str(r["round"]) + (f"/{r.get('member', 0)}" if len(members) > 1 else ""): r for r in rows}


def format_table(results_by_round, *, metric: str = "accuracy") -> str:
    """Rows = rounds, columns = difficulties, cells = `metric` in % ("-" where not evaluated), as a
    markdown table (`si_hf.tables`).

    `results_by_round` is {round: EvalResult or its to_dict()} or a list of metric dicts carrying
    "round" (and "member": rows are then labelled round/member when there are several members).
    """
    rows = {}
    for name, result in _rows(results_by_round).items():
        values = result.to_dict() if isinstance(result, EvalResult) else result
        if not isinstance(values, dict) or metric not in values:
            raise ValueError(
                f"round {name!r}: expected an EvalResult or a dict with {metric!r}, got {values!r}"
            )
        rows[name] = values[metric] or {}
    columns = sorted({k for r in rows.values() for k in r}, key=difficulty_sort_key)
    return tables.accuracy_grid(rows, columns)


def memorised_mistakes(
    model, tokenizer, task, mistakes: dict[int, tuple[list[str], list[str], list[bool]]], **decode
) -> dict[str, dict]:
    """Figure 26 ("we isolate incorrect self-generated samples and evaluate the model's performance on
    them"): for each earlier round k, its wrong training labels as `(prompts, labels, finished)`, answered
    greedily by `model`. Returns {str(k): {"n": how many, "right": share now answered correctly (complete
    and true), "reproduced": share where the answer is the wrong label itself (same text, ended or not
    alike)}}; rounds with no wrong label are left out. `decode`: `si_hf.labeling.label`'s keywords
    (batch_size, progress, cache_implementation, decode_dtype), as evaluation runs them."""
    from si_hf.labeling import label

    rounds = [k for k in sorted(mistakes) if mistakes[k][0]]
    prompts = [p for k in rounds for p in mistakes[k][0]]
    if not prompts:
        return {}
    predictions = label(model, tokenizer, task, prompts, desc="memorised mistakes", **decode)
    out, start = {}, 0
    for k in rounds:
        ps, labels, finished = mistakes[k]
        preds = predictions[start : start + len(ps)]
        start += len(ps)
        right = sum(p.complete and bool(task.verify(q, p.text)) for q, p in zip(ps, preds))
        same = sum(p.text == y and p.finished == f for p, y, f in zip(preds, labels, finished))
        out[str(k)] = {"n": len(ps), "right": right / len(ps), "reproduced": same / len(ps)}
    return out
