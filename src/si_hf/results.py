"""RunResults: what a run's rounds measured, read from what the store writes (nothing new on disk).

Two ways in, one object out: `RunResults.from_output_dir` reads `<output_dir>/metrics.json` and the
markers under `rounds/` (what `si-hf report` is given); `RunResults.from_store` reads a `LocalStore`
directly (what the store uses for the cards and the index it writes after each round). The figures,
the report and the cards only ask this object.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from si_hf import tables
from si_hf.checks import is_int
from si_hf.configs import TaskArguments
from si_hf.layout import RunPaths
from si_hf.tasks import difficulty_sort_key, task_from_args


@dataclasses.dataclass
class Record:
    """One published round of one member: its metrics.json and the info of its marker."""

    round: int
    member: int
    metrics: dict
    info: dict = dataclasses.field(default_factory=dict)

    def get(self, key: str):
        """A label count or data accuracy: the round loop puts them in both files, a round published
        by hand may have them only in its info."""
        return self.metrics.get(key, self.info.get(key))


def _check_entry(entry, where: str) -> tuple[int, int]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a JSON object per round, got {type(entry).__name__}")
    r, m = entry.get("round"), entry.get("member", 0)
    if not is_int(r) or r < 0 or not is_int(m) or m < 0:
        raise ValueError(
            f"{where}: expected non-negative int 'round' and 'member', got round={r!r} member={m!r}"
        )
    accuracy = entry.get("accuracy")
    if not isinstance(accuracy, dict):
        raise ValueError(
            f"{where} (round {r} member {m}): expected 'accuracy': {{difficulty: exact match}}, "
            f"got {accuracy!r:.100}"
        )
    for key, value in accuracy.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(
                f"{where} (round {r} member {m}): accuracy of difficulty {key!r} is {value!r}; expected a "
                "share in [0, 1]"
            )
    return r, m


def supervised_keys(info: dict) -> list[str]:
    """The difficulty keys of D_0, from the config a round recorded (section 3: the supervised range);
    [] when the round recorded no config (rounds published by hand, as in the store tests) or a task
    that is not registered here (a plugin's)."""
    cfg = (info.get("config") or {}).get("task")
    if not isinstance(cfg, dict) or "task" not in cfg:
        return []
    names = {f.name for f in dataclasses.fields(TaskArguments)}
    args = TaskArguments(**{k: v for k, v in cfg.items() if k in names})
    try:
        task = task_from_args(args)
    except ValueError:
        return []
    return [task.difficulty_key(d) for d in task.d0_difficulties(task.parse_difficulty(args.d0))]


def _round_info(paths: RunPaths, r: int, m: int) -> dict:
    """The info of a round the run's metrics.json lists, its own files checked (a truncated or missing
    marker or metrics.json is named, not read past)."""
    from si_hf.store.verify import read_json

    folder = paths.round(r, m)
    if not folder.root.is_dir():
        raise ValueError(f"{paths.metrics} lists round {r} member {m}, but {folder.root} does not exist")
    read_json(folder.metrics, r)
    return read_json(folder.marker, r).get("info", {})


class RunResults:
    """Exact match per round and difficulty, data accuracy and label counts, per member and averaged."""

    def __init__(self, records: list[Record], source: str = ""):
        if not records:
            raise ValueError(f"{source or 'the run'} holds no completed round yet: nothing to report")
        for x in records:
            _check_entry({**x.metrics, "round": x.round, "member": x.member}, f"{source} round {x.round}")
        self.records = sorted(records, key=lambda x: (x.round, x.member))
        self.source = source
        self._by = {(x.round, x.member): x for x in self.records}
        self.rounds = sorted({x.round for x in self.records})
        self.members = sorted({x.member for x in self.records})
        infos = [x.info for x in self.records if x.info]
        self.task = next((i["task"] for i in infos if i.get("task")), "unknown")
        self.supervised = next((keys for i in infos if (keys := supervised_keys(i))), [])
        if not self.supervised and (0, self.members[0]) in self._by:
            # round 0 labels nothing: the levels it records are D_0's
            self.supervised = list(self._by[0, self.members[0]].info.get("levels", []))

    # ---- reading ----
    @classmethod
    def from_output_dir(cls, output_dir: str | Path) -> RunResults:
        """`<output_dir>/metrics.json` (every round the store completed) and each round's marker."""
        root, paths = Path(output_dir), RunPaths(output_dir)
        expected = "the --output_dir of an si-hf run (it holds metrics.json and rounds/)"
        if not root.is_dir():
            raise ValueError(f"{str(root)!r} is not a directory; expected {expected}")
        path = paths.metrics
        if not path.is_file():
            raise ValueError(f"{str(root)!r} has no metrics.json; expected {expected}")
        try:
            entries = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not valid JSON ({e}); expected a list of round metrics") from None
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a JSON list of round metrics, got {type(entries).__name__}")
        records = []
        for i, entry in enumerate(entries):
            r, m = _check_entry(entry, f"{path} entry {i}")
            records.append(Record(r, m, entry, _round_info(paths, r, m)))
        return cls(records, source=str(root))

    @classmethod
    def from_store(cls, local, *, member: int | None = None, extra: Record | None = None) -> RunResults:
        """The rounds of a LocalStore (one member's, or all), plus `extra`: a round being published,
        shown with the rounds before it only (an overwritten round must not show later ones)."""
        records = [
            Record(r, m, local.metrics(r, m), local.marker(r, m)["info"])
            for r, m in local.completed()
            if (member is None or m == member) and (extra is None or r < extra.round)
        ]
        return cls(records + ([extra] if extra is not None else []), source=str(local.root))

    # ---- what the figures and tables show ----
    def record(self, r: int, member: int) -> Record | None:
        return self._by.get((r, member))

    def keys(self) -> list[str]:
        """Every difficulty evaluated in some round, easiest first."""
        return sorted({k for x in self.records for k in x.metrics["accuracy"]}, key=difficulty_sort_key)

    def accuracy(self, member: int | None = None) -> dict[int, dict[str, float]]:
        """{round: {difficulty: exact match}} of one member, or averaged over the members (member=None)."""
        out = {}
        for r in self.rounds:
            accs = [
                x.metrics["accuracy"]
                for m in (self.members if member is None else [member])
                if (x := self.record(r, m))
            ]
            keys = {k for a in accs for k in a}
            if accs:
                out[r] = {k: _mean([a[k] for a in accs if k in a]) for k in keys}
        return out

    def data_accuracy(self, member: int | None = None) -> dict[int, float]:
        """{round: oracle agreement of the kept labels} for rounds >= 1 (round 0 labels nothing)."""
        out = {}
        for r in self.rounds:
            members = self.members if member is None else [member]
            values = [x.get("data_accuracy") for m in members if (x := self.record(r, m)) and r > 0]
            values = [v for v in values if isinstance(v, int | float)]
            if values and len(values) == len(members):
                out[r] = _mean(values)
        return out

    def memorised(self, member: int) -> dict[str, dict[int, float]]:
        """Figure 26 for one member: {"round k right" / "round k reproduced": {evaluation round r: share}},
        the model of round r on round k's wrong training labels (empty when no round measured it)."""
        out: dict[str, dict[int, float]] = {}
        for r in self.rounds:
            x = self.record(r, member)
            for k, shares in ((x.metrics.get("memorised") if x else None) or {}).items():
                for what in ("right", "reproduced"):
                    out.setdefault(f"round {k} {what}", {})[r] = shares[what]
        return out

    def carries(self, member: int | None = None) -> dict[int, dict[str, dict[str, float]]]:
        """Appendix B.8 per round: {round: {operand length: {longest carry chain: exact match}}} of one
        member or the members' mean (rounds that did not measure it are left out)."""
        out = {}
        for r in self.rounds:
            found = [
                x.metrics["carry_accuracy"]
                for m in (self.members if member is None else [member])
                if (x := self.record(r, m)) and x.metrics.get("carry_accuracy")
            ]
            if found:
                cells = {(n, c) for f in found for n in f for c in f[n]}
                out[r] = {}
                for n, c in sorted(cells, key=lambda nc: (int(nc[0]), int(nc[1]))):
                    out[r].setdefault(n, {})[c] = _mean([f[n][c] for f in found if c in f.get(n, {})])
        return out

    def next_level(self, r: int, member: int) -> list[str]:
        """The level just past what round r labelled: n+1 for one-dimensional difficulties (figure 12);
        for multiplication, the pairs round r+1 labels (unknown for the last round: [])."""
        x = self.record(r, member)
        levels = list((x.info if x else {}).get("levels") or [])
        if not levels:
            return []
        if all(str(k).isdigit() for k in levels):
            return [str(max(int(k) for k in levels) + 1)]
        following = self.record(r + 1, member)
        return list((following.info if following else {}).get("levels") or [])

    def data_vs_next(self, member: int | None = None) -> list[tuple[int, float, float]]:
        """Figure 12's points: (round r, data accuracy of D_r, exact match of M_r one level past D_r).
        The mean (member=None) averages both coordinates over the members."""
        points = []
        for r in self.rounds:
            if r == 0:
                continue
            pairs = []
            for m in self.members if member is None else [member]:
                x, nxt = self.record(r, m), self.next_level(r, m)
                acc = x.metrics["accuracy"] if x else {}
                ys = [acc[k] for k in nxt if k in acc]
                da = x.get("data_accuracy") if x else None
                if ys and isinstance(da, int | float):
                    pairs.append((da, _mean(ys)))
            if pairs and len(pairs) == (len(self.members) if member is None else 1):
                points.append((r, _mean([p[0] for p in pairs]), _mean([p[1] for p in pairs])))
        return points

    def label_rows(self, member: int) -> list[dict]:
        """Per round >= 1: levels labelled, prompts labelled, labels kept, kept fraction, data accuracy."""
        rows = []
        for r in self.rounds:
            x = self.record(r, member)
            if r == 0 or x is None:
                continue
            gen, kept = x.get("n_generated"), x.get("n_kept")
            frac = kept / gen if is_int(gen) and gen > 0 and is_int(kept) else None
            rows.append(
                {
                    "round": r,
                    "levels": x.info.get("levels", []),
                    "n_generated": gen,
                    "n_kept": kept,
                    "kept_fraction": frac,
                    "data_accuracy": x.get("data_accuracy"),
                }
            )
        return rows

    def trained_top(self, r: int) -> int | None:
        """The longest length trained on by the end of round r (one-dimensional difficulties; None for
        the n x m grid or a round that recorded no trained levels)."""
        x = next((self.record(r, m) for m in self.members if self.record(r, m)), None)
        trained = (x.info if x else {}).get("trained") or (self.supervised if r == 0 else [])
        if not trained or not all(str(k).isdigit() for k in trained):
            return None
        return max(int(k) for k in trained)

    def margins(self, threshold: float = 0.99, member: int | None = None) -> dict[int, dict]:
        """Figures 9 and 10, per round: the trained top T, the margin (how many lengths T+1, T+2, ...
        in a row reach `threshold`: figure 9, "number of extra OOD digit lengths achieving over 99%
        accuracy"), and the reach (T + margin; with no margin, the longest trained length at >=
        threshold: figure 10, "maximum input length achieving over 99% accuracy"). `evaluated_to` is
        the longest length evaluated: a margin that ends there may have been cut off by the window.
        One member, or the members' mean exact match (member=None)."""
        out = {}
        for r, acc in sorted(self.accuracy(member).items()):
            top = self.trained_top(r)
            if top is None:
                continue
            margin = 0
            while acc.get(str(top + margin + 1), 0.0) >= threshold:
                margin += 1
            solved = [int(k) for k, v in acc.items() if k.isdigit() and int(k) <= top and v >= threshold]
            reach = top + margin if margin else max(solved, default=0)
            evaluated = max(int(k) for k in acc if k.isdigit())
            out[r] = {"trained": top, "margin": margin, "reach": reach, "evaluated_to": evaluated}
        return out

    def seconds(self, member: int | None = None) -> dict[int, float]:
        """Compute time of each round, summed over its members (or one member's): labelling, training
        and evaluation as the round recorded them (rounds without the figures count 0 for them)."""
        out = {}
        for r in self.rounds:
            total = 0.0
            for m in self.members if member is None else [member]:
                x = self.record(r, m)
                for key in ("label_seconds", "train_seconds", "eval_seconds"):
                    value = x.get(key) if x else None
                    total += value if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
            out[r] = total
        return out

    def is_grid(self) -> bool:
        """Two-dimensional difficulties ("n x m", multiplication): the last round also gets an n x m grid."""
        keys = self.keys()
        return bool(keys) and all(len(str(k).split("x")) == 2 for k in keys)


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def accuracy_markdown(results: RunResults, member: int | None = None) -> str:
    """Rows = rounds, columns = difficulties, cells = exact match in % ("-" where not evaluated) of one
    member or the members' mean; supervised columns carry a `*`."""
    rows = {str(r): acc for r, acc in sorted(results.accuracy(member).items())}
    return tables.accuracy_grid(rows, results.keys(), supervised=results.supervised)
