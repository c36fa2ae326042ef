import zlib

import pytest

from si_hf.tasks import EmptySplitError, get_task
from si_hf.tasks.seeding import rng_for, split_of


def draws(rng, k=8):
    return [rng.getrandbits(64) for _ in range(k)]


def test_rng_for_is_reproducible_and_streams_differ():
    assert draws(rng_for(0, "d0")) == draws(rng_for(0, "d0"))
    assert draws(rng_for(3, "round", 2, 1)) == draws(rng_for(3, "round", 2, 1))
    streams = [
        draws(rng_for(0, "d0")),
        draws(rng_for(1, "d0")),
        draws(rng_for(0, "eval")),
        draws(rng_for(0, "round", 1)),
        draws(rng_for(0, "round", 2)),
        draws(rng_for(0, "round", 1, 0)),
        draws(rng_for(0, "round", "1")),  # str and int keys are different streams
    ]
    assert len({tuple(s) for s in streams}) == len(streams)


@pytest.mark.parametrize(
    "args, bad",
    [
        ((0, ""), "''"),
        ((0, None), "None"),
        ((1.5, "d0"), "1.5"),
        ((0, "d0", 2.0), "2.0"),
        ((0, "d0", True), "True"),
    ],
)
def test_rng_for_rejects_bad_input(args, bad):
    with pytest.raises(ValueError, match=bad):
        rng_for(*args)


def test_split_of_is_the_crc32_bucket_partition():
    prompts = [f"{i}+{i * 7}=" for i in range(4000)]
    evals = [p for p in prompts if split_of(p) == "eval"]
    assert all(zlib.crc32(p.encode()) % 8 == 0 for p in evals)
    assert 0.10 < len(evals) / len(prompts) < 0.15
    assert {split_of(p) for p in prompts} == {"train", "eval"}
    with pytest.raises(ValueError, match="bytes"):
        split_of(b"12=")


def test_eval_prompts_never_appear_in_training_data():
    """Copy at short lengths: D_0 covers nearly every 2-digit prompt, so a shared stream would leak."""
    task = get_task("copy")
    train = set(task.generate(3000, seed=0, purpose="d0", d0=4)["prompt"])
    for r, d in enumerate((5, 6), start=1):
        train |= set(task.generate(500, seed=0, purpose="round", keys=(r,), difficulty=d)["prompt"])
    evals = set()
    for d in range(1, 7):
        try:
            evals |= set(task.generate(200, seed=0, purpose="eval", difficulty=d, split="eval")["prompt"])
        except EmptySplitError:
            assert d == 1, "only the 10-prompt level may lack eval prompts"
    two_digit = {p for p in train if len(p) == 3}
    assert len(two_digit) > 80  # D_0 saw nearly the whole 2-digit space ...
    assert any(len(p) == 3 for p in evals)  # ... and 2-digit eval prompts still exist
    assert not train & evals
    assert all(split_of(p) == "eval" for p in evals) and all(split_of(p) == "train" for p in train)


def test_generate_is_reproducible_per_stream():
    task = get_task("reverse_addition")
    base = task.generate(50, seed=1, purpose="round", keys=(2,), difficulty=7)
    assert base == task.generate(50, seed=1, purpose="round", keys=(2,), difficulty=7)
    for other in (
        task.generate(50, seed=2, purpose="round", keys=(2,), difficulty=7),
        task.generate(50, seed=1, purpose="eval", keys=(2,), difficulty=7),
        task.generate(50, seed=1, purpose="round", keys=(3,), difficulty=7),
        task.generate(50, seed=1, purpose="round", keys=(2, 1), difficulty=7),
    ):
        assert not set(other["prompt"]) & set(base["prompt"])


def test_empty_split_names_the_difficulty():
    task = get_task("copy")
    one_digit_eval = [f"{i}=" for i in range(10) if split_of(f"{i}=") == "eval"]
    rng = rng_for(0, "eval")
    if one_digit_eval:
        assert task.sample(1, rng, split="eval")[0] in one_digit_eval
    else:
        with pytest.raises(EmptySplitError, match="difficulty 1 .*'eval'"):
            task.sample(1, rng, split="eval")
