"""RoundHistory: what rounds 0..r hold for each member, wherever they come from.

A run that starts from someone else's round (`--resume_from`) reads rounds up to that round from
the resume source and the later ones from its own store; everything else in the loop asks this
object and never branches on where a round lives. Nothing is duplicated in memory but the datasets
already read (rounds are immutable once published).
"""

from __future__ import annotations

import logging
from pathlib import Path

from si_hf import atomic
from si_hf.experiment import config_changes
from si_hf.layout import member_dirname
from si_hf.modeling import load_checkpoint
from si_hf.store import ResumeSource, Store, resolve_resume

logger = logging.getLogger("si_hf")


def resume_sources(spec: str, num_members: int, cache_dir: str) -> list[ResumeSource]:
    """One published round per member to start from (a Hub round or a local round directory)."""
    if Path(spec).exists():  # recorded in every later round, so it must not depend on the cwd
        spec = str(Path(spec).resolve())
    if num_members == 1:
        return [resolve_resume(spec, cache_dir=cache_dir)]
    if Path(spec).exists():
        return [
            resolve_resume(str(Path(spec) / member_dirname(m)), cache_dir=cache_dir)
            for m in range(num_members)
        ]
    return [resolve_resume(spec, cache_dir=cache_dir, member=m) for m in range(num_members)]


NATIVE_TYPES = ("si_llama", "smollm3", "llama")  # what si-hf trains and publishes


def check_sources(sources: list[ResumeSource] | None, task, tokenizer, model_args) -> None:
    """A resume source fits the run: a round of the same task, a model of the family si-hf trains with
    the run's tokenizer's vocabulary, the run's position encoding. Each mismatch is named."""
    from transformers import AutoConfig

    for src in sources or []:
        where = f"resume_from: {src.source!r}"
        if src.info.get("task") not in (None, task.name):
            raise ValueError(
                f"{where} is a round of task {src.info.get('task')!r}; this run's task is {task.name!r}"
            )
        config = AutoConfig.from_pretrained(src.model_path)
        if config.model_type not in NATIVE_TYPES:
            raise ValueError(
                f"{where}: its model is a {config.model_type!r}; expected one of {list(NATIVE_TYPES)}"
            )
        if config.vocab_size != len(tokenizer):
            raise ValueError(
                f"{where}: its model has {config.vocab_size} token embeddings; this run's tokenizer "
                f"{tokenizer.name_or_path!r} has {len(tokenizer)} tokens"
            )
        own = "nope" if config.model_type == "smollm3" else getattr(config, "position_encoding", "rope")
        if model_args.position_encoding not in (None, own):
            raise ValueError(
                f"{where}: its model uses position encoding {own!r}; this run asks for {model_args.position_encoding!r}"
            )


def recorded_sources(store: Store, num_members: int, cache_dir: str) -> list[ResumeSource] | None:
    """The resume source a run recorded in its first round: a continued run keeps starting from it."""
    done = store.completed_rounds(member=0)
    recorded = store.info(done[0], 0).get("resumed_from") if done else None
    if not recorded:
        return None
    return [
        resolve_resume(**store.info(done[0], m)["resumed_from"], cache_dir=cache_dir)
        for m in range(num_members)
    ]


class RoundHistory:
    """Info, metrics, dataset and model path of (round, member), from the resume source or the store."""

    def __init__(self, store: Store, sources: list[ResumeSource] | None, num_members: int):
        self.store, self.sources, self.num_members = store, sources, num_members
        self.source_round = sources[0].round if sources else -1
        self._datasets: dict[tuple[int, int], object] = {}

    def _sourced(self, r: int) -> bool:
        return r <= self.source_round

    def info(self, r: int, member: int = 0) -> dict:
        return self.sources[member].info if self._sourced(r) else self.store.info(r, member)

    def metrics(self, r: int, member: int = 0) -> dict:
        return self.sources[member].metrics if self._sourced(r) else self.store.metrics(r, member)

    def model_path(self, r: int, member: int = 0) -> str:
        if r == self.source_round:
            return self.sources[member].model_path
        return self.store.model_path(r, member)

    def load_model(self, r: int, member: int, *, device, attn_implementation: str | None = None):
        """The checkpoint of round r on `device`: the same device and dtype as a model that stayed in
        memory, so labels do not depend on resuming. A NoPE round comes back as the SILlamaForCausalLM
        it was trained as (it is published as SmolLM3)."""
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        return load_checkpoint(self.model_path(r, member), device=device, **kwargs)

    def dataset(self, r: int, member: int = 0):
        """The kept labels of round r >= 1 (read once, then kept: rounds are immutable)."""
        if (r, member) not in self._datasets:
            sourced = self._sourced(r)
            ds = self.sources[member].datasets[r] if sourced else self.store.load_dataset(r, member)
            self._datasets[r, member] = ds
        return self._datasets[r, member]

    def remember_dataset(self, r: int, member: int, dataset) -> None:
        self._datasets[r, member] = dataset

    def exists(self, r: int) -> bool:
        """Round r is there for every member (a resume source holds only its own round's model)."""
        if self._sourced(r):
            return r == self.source_round
        return not self.missing_members(r)

    def check_contiguous(self) -> None:
        """Every member's rounds run without a gap from the first one this store makes: a round 1
        without its round 0 is damage to report, not a round 0 to train again."""
        start = self.source_round + 1
        for m in range(self.num_members):
            done = self.store.completed_rounds(member=m)
            missing = sorted(set(range(start, max(done, default=start - 1) + 1)) - set(done))
            if missing:
                raise ValueError(
                    f"member {m}: rounds {missing} are missing in {self.store.local.rounds_dir} but later rounds "
                    f"{[r for r in done if r > missing[0]]} exist; restore them, or delete round {missing[0]} and every "
                    "later round to compute them again"
                )

    def check_config(self, snapshot: dict, *, allow_change: bool = False) -> None:
        """Refuse to continue this store with another experiment: every `si_hf.experiment` setting must
        equal the one its latest round ran with, unless `allow_change` (then the changes are logged)."""
        done = self.store.completed_rounds(member=0)
        if not done:
            return
        changes = config_changes(self.store.info(done[-1], 0).get("config", {}), snapshot)
        if changes and not allow_change:
            raise ValueError(
                f"{self.store.local.root} holds rounds {done} of another experiment; these settings differ from "
                f"the ones round {done[-1]} ran with: {'; '.join(changes)}. Use another --output_dir, or pass "
                "--allow_config_change true to continue anyway"
            )
        for change in changes:
            logger.warning("continuing %s with a changed setting: %s", self.store.local.root, change)

    def missing_members(self, r: int) -> list[int]:
        return [m for m in range(self.num_members) if r not in self.store.completed_rounds(member=m)]

    def first_incomplete(self) -> int:
        r = self.source_round + 1
        while not self.missing_members(r):
            r += 1
        return r

    def trained(self, r: int) -> list[str]:
        """Difficulty keys trained on by the end of round r."""
        return list(self.info(r)["trained"])

    def mean_accuracy(self, r: int) -> dict[str, float]:
        """Accuracy per difficulty key after round r, averaged over the members."""
        per_member = [self.metrics(r, m).get("accuracy", {}) for m in range(self.num_members)]
        keys = set().union(*per_member)
        return {k: sum(a.get(k, 0.0) for a in per_member) / len(per_member) for k in keys}

    def write_metrics(self, path: Path) -> None:
        """`metrics.json`: every completed round, rebuilt from the store (the store is the truth)."""
        atomic.write_json(path, self.all_metrics())  # `si-hf report` never reads half of it

    def all_metrics(self) -> list[dict]:
        """Every round this store completed, member by member."""
        return [
            self.store.metrics(r, m)
            for m in range(self.num_members)
            for r in self.store.completed_rounds(member=m)
        ]
