"""Synthetic label noise (appendix B.6.2, figure 25): wrong labels injected into a round on purpose.

In a round listed in `noise_rounds`, after the filters and before training, `noise_fraction` of the kept
labels (rounded to the nearest row) is replaced. The rows are drawn by a generator seeded from (the run's
data seed, round, member), so the same rows change on every machine. The paper's four kinds
("Injecting Synthetic Errors", B.6.2):

- `uniform`: "Replaces the label with a random number of the same length": every digit redrawn uniformly
  (any other character, such as the `+` and `=` of a multiplication's chain of thought, stays), drawn
  again until it differs from the label;
- `perturb`: "Randomly modifies the last three digits by ±1": one, two or three of the label's last three
  digits as written (its last three characters that are digits) each moved by one, up or down at random,
  staying in 0-9 (a 0 goes to 1, a 9 to 8);
- `drop_digits`: "Randomly removes 1, 2, or 3 digits from the last three positions";
- `drop_perturb`: "first modifying digits and then randomly deleting some": perturb, then drop.

Every injected label differs from the label the filters kept. The authors' code (`add_noise` in
`lib/data_utils.py` of JackCai1206/arithmetic-self-improve) draws each change from {-1, 0, +1} and clips
at 0 and 9, so some of its "perturbed" labels are left right; here the fraction injected is the fraction
made wrong. (When the kept label was itself wrong, its injected version is wrong too, though not
necessarily in the way the kind describes.) Arithmetic tasks only: the kinds speak of digits of a number.
"""

from __future__ import annotations

import random

from si_hf.tasks.seeding import rng_for

NOISE_KINDS = ("uniform", "perturb", "drop_digits", "drop_perturb")


def _digit_positions(label: str) -> list[int]:
    return [i for i, c in enumerate(label) if c.isdigit()]


def uniform(label: str, rng: random.Random) -> str:
    positions = set(_digit_positions(label))
    if not positions:
        raise ValueError(f"label {label!r} has no digit to redraw")
    while True:
        out = "".join(str(rng.randrange(10)) if i in positions else c for i, c in enumerate(label))
        if out != label:
            return out


def perturb(label: str, rng: random.Random) -> str:
    tail = _digit_positions(label)[-3:]
    if not tail:
        raise ValueError(f"label {label!r} has no digit to perturb")
    chars = list(label)
    for i in rng.sample(tail, rng.randint(1, len(tail))):
        d = int(chars[i])
        step = 1 if d == 0 else -1 if d == 9 else rng.choice((-1, 1))
        chars[i] = str(d + step)
    return "".join(chars)


def drop_digits(label: str, rng: random.Random) -> str:
    tail = _digit_positions(label)[-3:]
    if not tail:
        raise ValueError(f"label {label!r} has no digit to drop")
    dropped = set(rng.sample(tail, rng.randint(1, len(tail))))
    return "".join(c for i, c in enumerate(label) if i not in dropped)


def drop_perturb(label: str, rng: random.Random) -> str:
    return drop_digits(perturb(label, rng), rng)


KINDS = {"uniform": uniform, "perturb": perturb, "drop_digits": drop_digits, "drop_perturb": drop_perturb}


def check_noise(kind: str, fraction, rounds, *, num_rounds: int, task) -> None:
    """The noise options, checked before any work: a known kind, a fraction in [0, 1], rounds that the
    run has (1..num_rounds: round 0 trains on D_0, which has no labels to replace), an arithmetic task."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise_kind: {kind!r} is not one of {list(NOISE_KINDS)}")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
        raise ValueError(f"noise_fraction: {fraction!r}; expected a number in [0, 1]")
    if isinstance(rounds, str | int) or rounds is None:
        raise ValueError(f"noise_rounds: {rounds!r}; expected a list of rounds, e.g. [2]")
    if not rounds and (kind != "uniform" or fraction != 0):
        key, value = ("noise_kind", kind) if kind != "uniform" else ("noise_fraction", fraction)
        raise ValueError(
            f"{key}: {value!r} applies to the rounds in noise_rounds, and noise_rounds is empty; "
            "list the rounds to inject noise into, e.g. noise_rounds: [2]"
        )
    bad = [r for r in rounds if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= num_rounds]
    if bad:
        raise ValueError(
            f"noise_rounds: {list(rounds)}: {bad} not rounds of this run; expected rounds in 1..{num_rounds} "
            "(num_rounds; round 0 trains on D_0 and has no labels to replace)"
        )
    if rounds and not getattr(task, "arithmetic", False):
        raise ValueError(
            f"noise_rounds: {list(rounds)}: label noise is defined on the digits of arithmetic answers "
            f"(reverse_addition, forward_addition, multiplication); task {task.name!r} is not one"
        )


def inject(
    completions: list[str], kind: str, fraction: float, *, seed: int, round: int, member: int
) -> tuple[list[str], list[bool]]:
    """`completions` with round(fraction * len) of them replaced by `kind`, and which were replaced.

    Only labels with at least one digit can be replaced; when fewer than the target have one, all of those
    are. The rows and the changes come from `rng_for(seed, "noise", round, member)`."""
    if kind not in KINDS:
        raise ValueError(f"noise_kind: {kind!r} is not one of {list(NOISE_KINDS)}")
    rng = rng_for(seed, "noise", round, member)
    eligible = [i for i, c in enumerate(completions) if _digit_positions(c)]
    target = min(int(fraction * len(completions) + 0.5), len(eligible))
    chosen = sorted(rng.sample(eligible, target))
    out, injected = list(completions), [False] * len(completions)
    for i in chosen:
        out[i] = KINDS[kind](completions[i], rng)
        injected[i] = True
    return out, injected
