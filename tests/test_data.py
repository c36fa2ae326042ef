import math
import time
from collections import Counter
from itertools import islice

import datasets
import pytest
import torch
from torch.utils.data import DataLoader

from si_hf.data import COLUMNS, D0Pool, RoundMix, d0_dataset, mix_rounds, mixture_probabilities
from si_hf.tasks import get_task, split_of

Z = 4.5  # two-sided binomial bound: a correct sampler fails it with probability < 1e-5 per check


def within_binomial(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= Z * math.sqrt(n * p * (1 - p))


def take(ds, n):
    return list(islice(iter(ds), n))


def round_dataset(task, difficulty, n, seed=0, round_index=1):
    rows = task.generate(n, seed=seed, purpose="round", keys=(round_index,), difficulty=difficulty)
    # Extra columns as a store would keep them; mix_rounds must drop them.
    return datasets.Dataset.from_dict(
        {
            "prompt": rows["prompt"],
            "completion": rows["answer"],
            "difficulty": rows["difficulty"],
            "round": [round_index] * n,
            "votes": [5] * n,
        }
    )


def test_d0_is_lazy(copy_task):
    start = time.perf_counter()
    ds = d0_dataset(copy_task, 16, num_examples=5_000_000, seed=0)
    elapsed = time.perf_counter() - start
    assert isinstance(ds, datasets.IterableDataset)
    assert ds.n_shards == 500  # 10_000 examples per shard
    assert elapsed < 2.0, f"building a 5M-example D_0 took {elapsed:.2f}s: something was materialised"
    row = next(iter(ds))
    assert set(row) == set(COLUMNS)


def test_d0_epochs_repeat_the_pool_in_a_new_shard_order(copy_task):
    ds = d0_dataset(copy_task, 6, num_examples=230, seed=3, shard_size=25)
    first = [r["prompt"] for r in ds]
    assert len(first) == 230
    assert [r["prompt"] for r in ds] == first  # deterministic
    ds.set_epoch(1)  # what Trainer does (through accelerate) when it restarts the stream
    second = [r["prompt"] for r in ds]
    assert Counter(second) == Counter(first)
    assert second != first
    other_seed = [r["prompt"] for r in d0_dataset(copy_task, 6, num_examples=230, seed=4, shard_size=25)]
    other_member = [
        r["prompt"] for r in d0_dataset(copy_task, 6, num_examples=230, seed=3, member=1, shard_size=25)
    ]
    assert Counter(other_seed) != Counter(first)
    assert Counter(other_member) != Counter(first)


def test_d0_shards_do_not_depend_on_pool_size(copy_task):
    # Example i comes from shard i // shard_size, so a bigger pool extends a smaller one.
    small = list(d0_dataset(copy_task, 6, num_examples=50, seed=1, shard_size=25))
    big = list(d0_dataset(copy_task, 6, num_examples=100, seed=1, shard_size=25))
    assert Counter(r["prompt"] for r in small) <= Counter(r["prompt"] for r in big)


def test_d0_addition_lengths_uniform_and_independent():
    task = get_task("reverse_addition")
    d0, n = 4, 8000
    rows = list(d0_dataset(task, d0, num_examples=n, seed=0, shard_size=1000))
    pairs = []
    for r in rows:
        a, b = r["prompt"][:-1].split("+")
        pairs.append((len(a), len(b)))
        assert r["difficulty"] == str(max(len(a), len(b)))
        assert task.verify(r["prompt"], r["completion"])
    first, second, joint = Counter(a for a, _ in pairs), Counter(b for _, b in pairs), Counter(pairs)
    for length in range(1, d0 + 1):
        assert within_binomial(first[length], n, 1 / d0), (length, first)
        assert within_binomial(second[length], n, 1 / d0), (length, second)
        for other in range(1, d0 + 1):
            # Independence: every (la, lb) cell at 1/d0^2, not only the marginals.
            assert within_binomial(joint[(length, other)], n, 1 / d0**2), (length, other, joint)
    assert set(first) == set(second) == set(range(1, d0 + 1))


def test_d0_has_no_eval_split_prompt(copy_task):
    rows = list(d0_dataset(copy_task, 8, num_examples=3000, seed=0, shard_size=500))
    assert all(split_of(r["prompt"]) == "train" for r in rows)


def test_d0_shards_split_across_dataloader_workers(copy_task):
    ds = d0_dataset(copy_task, 6, num_examples=200, seed=2, shard_size=25)
    single = Counter(r["prompt"] for r in ds)
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    multi = Counter(r["prompt"] for r in loader)
    assert multi == single  # each shard read once, by exactly one worker


def test_mixture_probabilities_follow_the_paper_rule():
    assert mixture_probabilities(0, newest_probability=0.5, d0_weight=5) == [1.0]
    assert mixture_probabilities(1, newest_probability=0.5, d0_weight=5) == [0.5, 0.5]
    p = mixture_probabilities(3, newest_probability=0.5, d0_weight=6)
    assert p == pytest.approx([0.5 * 6 / 8, 0.5 / 8, 0.5 / 8, 0.5])


def test_mix_proportions(copy_task):
    d0 = D0Pool(copy_task, 5, num_examples=10_000, seed=0, shard_size=1000, order_seed=0)
    rounds = [
        round_dataset(copy_task, 6, 300, round_index=1),
        round_dataset(copy_task, 7, 300, round_index=2),
    ]
    mixed = mix_rounds(d0, rounds, d0_weight=5, seed=0)
    n = 20_000
    rows = take(mixed, n)
    assert all(set(r) == set(COLUMNS) for r in rows)
    source = Counter("d0" if int(r["difficulty"]) <= 5 else r["difficulty"] for r in rows)
    expected = {"d0": 0.5 * 5 / 6, "6": 0.5 * 1 / 6, "7": 0.5}
    for name, p in expected.items():
        assert within_binomial(source[name], n, p), (name, source[name], n * p)

    # A round is cycled whole (every pass is the full round), shuffled, and reshuffled each epoch.
    def passes(rows):
        newest = [r["prompt"] for r in rows if r["difficulty"] == "7"]
        return [newest[i : i + 300] for i in range(0, 3 * 300, 300)]

    epoch0 = passes(rows)
    assert all(sorted(p) == sorted(rounds[1]["prompt"]) for p in epoch0)
    assert epoch0[0] != rounds[1]["prompt"]
    mixed.set_epoch(1)
    assert passes(take(mixed, 2000))[0] != epoch0[0]


def test_mix_epoch_reads_d0_once_and_workers_split_its_shards(copy_task):
    pool = D0Pool(copy_task, 5, num_examples=1000, seed=0, shard_size=100, order_seed=3)
    small_round = round_dataset(copy_task, 6, 50)
    mixed = mix_rounds(pool, [small_round], d0_weight=5, seed=1)
    assert isinstance(mixed, RoundMix)
    epoch = list(mixed)  # D_0 runs out last: the epoch ends with its last row
    d0_rows = Counter(r["prompt"] for r in epoch if r["difficulty"] != "6")
    assert d0_rows == Counter(r["prompt"] for r in pool)
    assert within_binomial(len(epoch) - d0_rows.total(), len(epoch), 0.5)
    mixed.set_epoch(1)
    assert [r["prompt"] for r in mixed][:200] != [r["prompt"] for r in epoch][:200]

    alone = mix_rounds(pool, [], d0_weight=5, seed=1)
    single = Counter(r["prompt"] for r in alone)
    multi = Counter(r["prompt"] for r in DataLoader(alone, batch_size=None, num_workers=2))
    assert multi == single == Counter(r["prompt"] for r in pool)  # each shard read by one worker
    too_few = mix_rounds(D0Pool(copy_task, 5, num_examples=100, seed=0), [], d0_weight=5, seed=1)
    workers = iter(DataLoader(too_few, batch_size=None, num_workers=2))
    try:
        with pytest.raises(ValueError, match="dataloader_num_workers=2 is more than D_0's 1 shards"):
            list(workers)
    finally:  # now, not when the garbage collector meets the failed iterator (10 s of worker joins)
        workers._shutdown_workers()


def test_mix_is_deterministic(copy_task):
    d0 = D0Pool(copy_task, 5, num_examples=2000, seed=0, shard_size=500, order_seed=0)
    rounds = [round_dataset(copy_task, 6, 100)]
    a = take(mix_rounds(d0, rounds, d0_weight=5, seed=1), 1000)
    b = take(mix_rounds(d0, rounds, d0_weight=5, seed=1), 1000)
    c = take(mix_rounds(d0, rounds, d0_weight=5, seed=2), 1000)
    assert a == b
    assert a != c


def test_tiny_round_still_gets_half_and_empty_rounds_are_skipped(copy_task):
    d0 = D0Pool(copy_task, 5, num_examples=2000, seed=0, shard_size=500)
    tiny = round_dataset(copy_task, 6, 3)
    empty = round_dataset(copy_task, 7, 0)
    n = 4000
    rows = take(mix_rounds(d0, [tiny, empty], d0_weight=5, seed=0), n)
    assert within_binomial(sum(r["difficulty"] == "6" for r in rows), n, 0.5)
    assert not any(r["difficulty"] == "7" for r in rows)
    assert {r["prompt"] for r in rows if r["difficulty"] == "6"} == set(tiny["prompt"])
    # With no non-empty round the stream is D_0 alone: one epoch is the whole pool, once.
    for rounds in ([], [empty]):
        alone = list(mix_rounds(d0, rounds, d0_weight=5, seed=0))
        assert Counter(r["prompt"] for r in alone) == Counter(r["prompt"] for r in d0)


def test_mix_rejects_bad_input(copy_task):
    d0 = D0Pool(copy_task, 5, num_examples=100, seed=0)
    good = round_dataset(copy_task, 6, 10)
    with pytest.raises(ValueError, match="completion"):
        mix_rounds(d0, [good.remove_columns("completion")], d0_weight=5, seed=0)
    with pytest.raises(ValueError, match="newest_probability"):
        mix_rounds(d0, [good], newest_probability=1.5, d0_weight=5, seed=0)
    with pytest.raises(ValueError, match="d0_weight"):
        mix_rounds(d0, [good], d0_weight=0, seed=0)
    with pytest.raises(ValueError, match="D0Pool"):
        mix_rounds(good, [good], d0_weight=5, seed=0)
    with pytest.raises(ValueError, match="num_examples"):
        d0_dataset(copy_task, 5, num_examples=0, seed=0)
    with pytest.raises(ValueError, match="five"):
        d0_dataset(copy_task, "five", num_examples=10, seed=0)


def test_trainer_consumes_the_mix_with_max_steps(copy_task, tmp_path):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from si_hf.collator import PromptCompletionCollator
    from si_hf.modeling import SILlamaForCausalLM, tiny_config
    from si_hf.tokenization import get_tokenizer

    torch.manual_seed(0)
    tokenizer = get_tokenizer(copy_task.tokenizer_name)
    model = SILlamaForCausalLM(tiny_config(len(tokenizer)))
    d0 = D0Pool(copy_task, 5, num_examples=64, seed=0, shard_size=16, order_seed=0)  # many epochs
    mixed = mix_rounds(d0, [round_dataset(copy_task, 6, 8)], d0_weight=5, seed=0)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=12,
        per_device_train_batch_size=16,
        remove_unused_columns=False,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
    )
    epochs = []

    class RecordEpochs(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            epochs.append(state.epoch)

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=mixed,
        data_collator=PromptCompletionCollator(tokenizer),
        callbacks=[RecordEpochs()],
    )
    out = trainer.train()
    # One epoch of this mix is ~150 rows (< 12 batches of 16): the Trainer must have restarted it.
    assert len(epochs) >= 2
    assert trainer.state.global_step == 12
    assert math.isfinite(out.training_loss)
