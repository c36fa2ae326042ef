"""Training streams: D_0 generated on the fly, mixed with the self-improvement rounds.

The stream `Trainer` reads is a `RoundMix` (`mix_rounds`), a torch `IterableDataset` of rows
{prompt, completion, difficulty} (difficulty is the task's difficulty key, a string such as "17" or
"5x6"). Nothing is materialised: a 5M-example D_0 costs nothing until it is read, one shard at a time,
and the rounds are read from their Arrow tables in chunks.

D_0 is a finite, reproducible pool (`D0Pool`) cut into shards of `shard_size` examples: example i
comes from shard j = i // shard_size, generated as
`task.generate(..., seed=seed, purpose="d0", keys=(member, j))` (its own stream), so pools of
different sizes share their first shards. `d0_dataset` shows the same pool as a
`datasets.IterableDataset`.

Epochs: `Trainer` with `max_steps` restarts an exhausted iterable dataset and calls `set_epoch(e)`
on it (through accelerate's dataloader); the stream then visits D_0's shards in a new order seeded by
(round seed, e) and reshuffles the rounds. Examples are i.i.d. draws, so a shard-level shuffle is
enough for D_0. So "repeat the pool epoch after epoch" is the Trainer's loop, not ours.

Distribution: dataloader worker w of W reads D_0's shards w, w+W, ... with its own seeded draws (the
order of the stream depends on the number of workers, never what an epoch of D_0 contains). Under
several processes the round loop runs accelerate with `dispatch_batches=False`: every process then
computes the same (cheap, seeded) stream and keeps its own slice of each global batch
(`accelerate`'s `IterableDatasetShard`), which spares process 0 from padding every process's batch.

Mixing (paper section 3): the newest round is drawn with probability `newest_probability`
(0.5 in the paper), D_0 and the older rounds share the rest in proportion to their weights (D_0:
`d0_weight`, the number of D_0 difficulty levels in the authors' code; each older round: 1). Every
row is an independent source draw (proportions exact in expectation), an exhausted source restarts
at once, and an epoch of the mix ends only when every source has been used up at least once (the
"all_exhausted" rule of `datasets.interleave_datasets`). Every pass over a round is a fresh full
shuffle.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import datasets
import torch
from datasets import Features, IterableDataset, Value

from si_hf.checks import is_int, require_int
from si_hf.tasks.seeding import rng_for

COLUMNS = ("prompt", "completion", "difficulty")
FEATURES = Features({name: Value("string") for name in COLUMNS})


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def difficulty_str(value) -> str:
    """A difficulty as its key: 17 -> "17", (5, 6) / [5, 6] -> "5x6", strings unchanged."""
    if isinstance(value, str):
        return value
    if is_int(value):
        return str(value)
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, int) for v in value):
        return "x".join(map(str, value))
    raise ValueError(f"difficulty {value!r}: expected an int, an (n, m) pair or a key string such as '5x6'")


@dataclass(frozen=True)
class D0Pool:
    """Member `member`'s D_0: `num_examples` examples of `task` up to difficulty `d0`, train split only,
    in shards of `shard_size` generated on demand. `order_seed` seeds the order in which a training
    stream visits the shards (epoch by epoch); iterating the pool itself reads epoch 0 in that order."""

    task: object
    d0: object
    num_examples: int
    seed: int
    member: int = 0
    shard_size: int = 10_000
    order_seed: int | None = None

    def __post_init__(self):
        require_int(self.num_examples, "num_examples", 1)
        require_int(self.shard_size, "shard_size", 1)
        require_int(self.member, "member", 0)
        self.task.d0_difficulties(self.d0)  # fail now, not in a dataloader worker, on a bad d0

    @property
    def n_shards(self) -> int:
        return math.ceil(self.num_examples / self.shard_size)

    def rows(self, shard: int) -> dict[str, list[str]]:
        """Shard `shard` as columns {prompt, completion, difficulty}."""
        size = min(self.shard_size, self.num_examples - shard * self.shard_size)
        keys = (self.member, shard)
        g = self.task.generate(size, seed=self.seed, purpose="d0", keys=keys, d0=self.d0, split="train")
        return {"prompt": g["prompt"], "completion": g["answer"], "difficulty": g["difficulty"]}

    def shard_order(self, shards: list[int], *keys) -> list[int]:
        """`shards` in the order a stream reads them for `keys` (epoch, worker, pass)."""
        if self.order_seed is None:
            return list(shards)
        order = list(shards)
        rng_for(self.order_seed, "d0-order", *keys).shuffle(order)
        return order

    def __iter__(self) -> Iterator[dict[str, str]]:
        for shard in self.shard_order(list(range(self.n_shards)), 0, 0, 0):
            yield from _as_rows(self.rows(shard))


def _as_rows(columns: dict[str, list]) -> Iterator[dict[str, str]]:
    for prompt, completion, difficulty in zip(
        columns["prompt"], columns["completion"], columns["difficulty"]
    ):
        yield {"prompt": prompt, "completion": completion, "difficulty": difficulty_str(difficulty)}


def _d0_rows(shards, *, pool):
    # datasets calls this once per shard (its gen_kwargs list is split one element per call).
    for shard in shards:
        yield from _as_rows(pool.rows(shard))


def d0_dataset(
    task, d0, *, num_examples: int, seed: int, member: int = 0, shard_size: int = 10_000
) -> IterableDataset:
    """D_0 as a `datasets.IterableDataset` (one epoch of the pool, shards in order), to inspect it
    with the `datasets` API. Training reads the same rows through `mix_rounds`, which is faster."""
    pool = D0Pool(task, d0, num_examples=num_examples, seed=seed, member=member, shard_size=shard_size)
    gen_kwargs = {"shards": list(range(pool.n_shards)), "pool": pool}
    return IterableDataset.from_generator(_d0_rows, features=FEATURES, gen_kwargs=gen_kwargs)


def _round_columns(dataset: datasets.Dataset) -> datasets.Dataset:
    return dataset.select_columns(list(COLUMNS))


class RoundMix(torch.utils.data.IterableDataset):
    """The training stream of one member in one round: rows {prompt, completion, difficulty} drawn
    row by row from D_0 and the rounds (see the module docstring). `Trainer` restarts it epoch after
    epoch and calls `set_epoch` (through accelerate) before each.

    Plain Python over the pool's generator and the rounds' Arrow tables: `datasets.interleave_datasets`
    spent ~15 ms per batch of 128 rows (a thread hand-off per row) of a ~190 ms CPU training step."""

    def __init__(self, pool: D0Pool, rounds: list[datasets.Dataset], probabilities: list[float], seed: int):
        super().__init__()
        self.pool, self.rounds, self.probabilities, self.seed = pool, rounds, probabilities, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, str]]:
        worker = torch.utils.data.get_worker_info()
        index, count = (worker.id, worker.num_workers) if worker else (0, 1)
        shards = list(range(index, self.pool.n_shards, count))
        if not shards:
            raise ValueError(
                f"dataloader_num_workers={count} is more than D_0's {self.pool.n_shards} shards: "
                "use fewer workers or a larger num_d0_examples"
            )
        rng = rng_for(self.seed, "mix", self.epoch, index)
        sources = [self._d0_passes(shards, index)] + [self._round_passes(r, rng) for r in self.rounds]
        bounds = list(itertools.accumulate(self.probabilities))
        exhausted = [False] * len(sources)
        while True:
            i = min(bisect.bisect_right(bounds, rng.random() * bounds[-1]), len(sources) - 1)
            row, last_of_pass = next(sources[i])
            yield row
            # An exhausted source restarts at once; the epoch ends when every one has run out once.
            exhausted[i] = exhausted[i] or last_of_pass
            if all(exhausted):
                return

    def _d0_passes(self, shards: list[int], worker: int):
        for repeat in itertools.count():
            order = self.pool.shard_order(shards, self.epoch, worker, repeat)
            for k, shard in enumerate(order):
                rows = list(_as_rows(self.pool.rows(shard)))
                for j, row in enumerate(rows):
                    yield row, k == len(order) - 1 and j == len(rows) - 1

    def _round_passes(self, dataset: datasets.Dataset, rng):
        # Every pass of every epoch is a fresh full shuffle; rows are read in chunks from Arrow.
        chunk = 512
        while True:
            order = list(range(len(dataset)))
            rng.shuffle(order)
            for start in range(0, len(order), chunk):
                part = list(_as_rows(dataset[order[start : start + chunk]]))
                for j, row in enumerate(part):
                    yield row, start + j == len(order) - 1


def mixture_probabilities(num_rounds: int, *, newest_probability: float, d0_weight: float) -> list[float]:
    """Source probabilities [D_0, round 1, ..., newest round] for `num_rounds` non-empty rounds."""
    if num_rounds == 0:
        return [1.0]
    weights = [d0_weight] + [1.0] * (num_rounds - 1)
    rest = 1.0 - newest_probability
    return [rest * w / sum(weights) for w in weights] + [newest_probability]


def mix_rounds(
    d0: D0Pool,
    rounds: list[datasets.Dataset],
    *,
    newest_probability: float = 0.5,
    d0_weight: float,
    seed: int,
) -> RoundMix:
    """D_0 mixed with the round datasets (oldest first), newest round at `newest_probability`.

    Empty rounds are skipped (the caller should warn): after skipping, the last non-empty round is
    the newest. Columns other than prompt/completion/difficulty are dropped. With no non-empty
    round the stream is D_0 alone.
    """
    if not isinstance(d0, D0Pool):
        raise ValueError(f"d0 must be a si_hf.data.D0Pool (see d0_stream), got {type(d0).__name__}")
    if not _is_number(newest_probability) or not 0.0 < newest_probability < 1.0:
        raise ValueError(f"newest_probability={newest_probability!r}: expected a float in (0, 1)")
    if not _is_number(d0_weight) or not d0_weight > 0:
        raise ValueError(
            f"d0_weight={d0_weight!r}: expected a number > 0 (D_0's number of difficulty levels)"
        )
    kept = []
    for i, dataset in enumerate(rounds):
        if not isinstance(dataset, datasets.Dataset):
            raise ValueError(f"rounds[{i}] must be a datasets.Dataset, got {type(dataset).__name__}")
        missing = [c for c in COLUMNS if c not in dataset.column_names]
        if missing:
            raise ValueError(f"rounds[{i}] lacks columns {missing}; it has {dataset.column_names}")
        if len(dataset):
            kept.append(_round_columns(dataset))
    probabilities = mixture_probabilities(
        len(kept), newest_probability=newest_probability, d0_weight=d0_weight
    )
    return RoundMix(d0, kept, probabilities, seed)
