"""Training streams: D_0 generated on the fly, and the mix of D_0 with the self-improvement rounds.

Both are `datasets.IterableDataset`s of {prompt, completion, difficulty} (difficulty is the task's
difficulty key, a string such as "17" or "5x6"). Nothing is materialised: a 5M-example D_0 costs
nothing until it is iterated, one shard at a time.

D_0 is a finite, reproducible pool cut into shards of `shard_size` examples: example i comes from
shard j = i // shard_size, generated as `task.generate(..., seed=seed, purpose="d0", keys=(member, j))`
(its own stream), so pools of different sizes share their first shards. Iterating the dataset once
is one epoch of the pool.

Epochs: `Trainer` with `max_steps` restarts an exhausted iterable dataset and calls `set_epoch(e)`
on it (through accelerate's dataloader); `datasets` then visits the shards in a new order seeded by
e (and reshuffles the rounds, below). Examples are i.i.d. draws, so a shard-level shuffle is enough
for D_0. So "repeat the pool epoch after epoch" is the Trainer's loop, not ours.

Distribution: the shards are `datasets` shards (`n_shards`), so dataloader workers and
`split_dataset_by_node` split them natively (each worker reads whole shards; the order of the stream
depends on the number of workers, never the content of an epoch). The round loop runs accelerate
with `dispatch_batches=False`: accelerate then gives each process its own subset of the shards
(`IterableDataset.shard`), which also spares process 0 from padding every process's batch alike.

Mixing (paper section 3): the newest round is drawn with probability `newest_probability`
(0.5 in the paper), D_0 and the older rounds share the rest in proportion to their weights (D_0:
`d0_weight`, the number of D_0 difficulty levels in the authors' code; each older round: 1). We use
`datasets.interleave_datasets(probabilities=..., stopping_strategy="all_exhausted")`: every row is an
independent source draw (proportions exact in expectation), an exhausted source restarts at once,
and the mix's epoch ends only when every source has been used up at least once. Round datasets
become iterable sources with as many shards as D_0 and a shuffle buffer as large as the round, so
each epoch reshuffles them fully (a restart inside one epoch replays that epoch's order).
"""

from __future__ import annotations

import math

import datasets
from datasets import Features, IterableDataset, Value, interleave_datasets

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


def _d0_rows(shards, *, task, d0, seed, member, num_examples, shard_size):
    # datasets calls this once per shard (its gen_kwargs list is split one element per call).
    for shard in shards:
        size = min(shard_size, num_examples - shard * shard_size)
        rows = task.generate(size, seed=seed, purpose="d0", keys=(member, shard), d0=d0, split="train")
        for prompt, answer, difficulty in zip(rows["prompt"], rows["answer"], rows["difficulty"]):
            yield {"prompt": prompt, "completion": answer, "difficulty": difficulty}


def d0_dataset(
    task, d0, *, num_examples: int, seed: int, member: int = 0, shard_size: int = 10_000
) -> IterableDataset:
    """One epoch of D_0 of `task` up to difficulty `d0`: `num_examples` examples, train split only.

    Each majority-vote `member` has its own pool. See the module docstring for layout and epochs.
    """
    require_int(num_examples, "num_examples", 1)
    require_int(shard_size, "shard_size", 1)
    require_int(member, "member", 0)
    task.d0_difficulties(d0)  # fail now, not in a dataloader worker, on a bad d0
    gen_kwargs = {
        "shards": list(range(math.ceil(num_examples / shard_size))),
        "task": task,
        "d0": d0,
        "seed": seed,
        "member": member,
        "num_examples": num_examples,
        "shard_size": shard_size,
    }
    return IterableDataset.from_generator(_d0_rows, features=FEATURES, gen_kwargs=gen_kwargs)


def _as_source(dataset: datasets.Dataset, *, num_shards: int, seed: int) -> IterableDataset:
    dataset = dataset.select_columns(list(COLUMNS))
    if dataset.features == FEATURES:
        pass
    elif isinstance(dataset.features["difficulty"], Value):  # ints: "17"
        dataset = dataset.cast(FEATURES)
    else:  # (n, m) pairs: "5x6"
        dataset = dataset.map(
            lambda batch: {"difficulty": [difficulty_str(d) for d in batch["difficulty"]]},
            batched=True,
            features=FEATURES,
        )
    source = dataset.to_iterable_dataset(num_shards=min(num_shards, len(dataset)))
    # A buffer as large as the round: every pass of every epoch is a full reshuffle.
    return source.shuffle(seed=seed, buffer_size=len(dataset))


def mixture_probabilities(num_rounds: int, *, newest_probability: float, d0_weight: float) -> list[float]:
    """Source probabilities [D_0, round 1, ..., newest round] for `num_rounds` non-empty rounds."""
    if num_rounds == 0:
        return [1.0]
    weights = [d0_weight] + [1.0] * (num_rounds - 1)
    rest = 1.0 - newest_probability
    return [rest * w / sum(weights) for w in weights] + [newest_probability]


def mix_rounds(
    d0: IterableDataset,
    rounds: list[datasets.Dataset],
    *,
    newest_probability: float = 0.5,
    d0_weight: float,
    seed: int,
) -> IterableDataset:
    """D_0 mixed with the round datasets (oldest first), newest round at `newest_probability`.

    Empty rounds are skipped (the caller should warn): after skipping, the last non-empty round is
    the newest. Columns other than prompt/completion/difficulty are dropped. With no non-empty
    round the result is `d0` itself.
    """
    if not isinstance(d0, IterableDataset):
        raise ValueError(f"d0 must be a datasets.IterableDataset (see d0_dataset), got {type(d0).__name__}")
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
            kept.append(dataset)
    if not kept:
        return d0
    # As many shards as D_0 (when the round has that many rows), so workers split every source alike.
    sources = [d0] + [
        _as_source(r, num_shards=d0.n_shards, seed=rng_for(seed, "mix", i).getrandbits(32))
        for i, r in enumerate(kept)
    ]
    probabilities = mixture_probabilities(
        len(kept), newest_probability=newest_probability, d0_weight=d0_weight
    )
    return interleave_datasets(
        sources, probabilities=probabilities, seed=seed, stopping_strategy="all_exhausted"
    )
