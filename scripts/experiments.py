"""The avalanche laboratory's CPU experiments (docs/experiments.md): runs, then a table and a figure.

`verifier_floor` (how good must the check be?): reverse addition at CPU scale
(`recipes/reverse_addition/config_cpu_oracle.yaml`), one round 0 on 1-8 digits, then rounds 1-4 under the
`oracle` filter with false-accept rate q for each q given: the same round-0 model, the same prompts, only
the check differs. Every run is the round loop as a user runs it:

    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/run_round.py \\
        --config recipes/reverse_addition/config_cpu_oracle.yaml --seed S --round 0 --output_dir OUT/round0
    accelerate launch ... --oracle_false_accept Q --resume_from OUT/round0/rounds/round-000/member-0 \\
        --seed S --output_dir OUT/q-Q

then `OUT/summary.md` holds, per q and round, the share of kept labels that are right, how many were
kept, and the frontier (the longest length n such that every length 1..n is at >= 95%), and
`OUT/verifier_floor.png` plots both. Every round also scores its model on the wrong labels it trained on
(figure 26, `memorised` in the metrics; `si-hf report OUT/q-1` draws it).

`random_labels` (appendix B.7: are self-made errors worse than random ones?): from the same round 0, the
same rounds with `label_source: truth` and, in each round, `noise_kind: uniform` at that round's error
rate of the q = 1 arm (the self-labels no check filtered), against that arm: labels of the same accuracy
round by round, whose errors are the model's own in one arm and random numbers in the other. Each round
is its own invocation (`--round r`, the noise fraction changing with `--allow_config_change`). Runs after
`verifier_floor`.

`noise_threshold` (figure 25: how much noise does the loop survive, and which kind hurts most?): from
the same round 0, rounds 1-3 with a perfect check (the `oracle` filter at q = 0, standing in for the
near-perfect labels of the unanimous vote) and, in round 1, each noise kind injected into a share of the
kept labels; the share 0 is the q = 0 arm of `verifier_floor`. Runs after it.

`round_init` (beyond the paper: restart or continue?): from the same round 0, rounds 1-4 with the perfect
check (`oracle` at q = 0) under `--round_init base` (every round retrains the round-0 model on D_0 and all
kept rounds), against the q = 0 arm of `verifier_floor` (`continue`). Runs after it.

The experiments below start from k = 3 round-0 models: the three members of
`recipes/reverse_addition/config_cpu_accelerated.yaml` (seeds S, S + 1000, S + 2000, D_0 = 1-8 digits), trained
by `--round 0` of that recipe into OUT/round0-k3-seed-S, or taken from `--round0 DIR` (a run of that recipe)
or from the `acceleration` experiment's run under the same seed.

`data_size` (appendix B.6.3, figure 27: how many self-labels a round needs): from each round-0 member, one
round on 9 digits with the perfect check and N_1 prompts labelled, for each N_1 in `--sizes`. The
round trains `round_max_steps` steps with the newest round at half of the mix, so the 9-digit examples
seen are the same for every N_1 (a small set is repeated more). Per N_1 and member: exact match in
distribution (1-9 digits, mean) and out of it (10 and 11).

`vote_variants` (appendix B.2.4, table 2, figure 17): from the same k = 3 round-0 members, rounds 1-3 of
the unanimous vote under each `vote_variant` (independent, shared_data, shared_seed, more_data), the
standard schedule: per variant and round, the frontier of each member and the kept labels' accuracy.

`acceleration` (section 7, figures 9 and 10: does the gain compound at CPU scale?): copy
(`recipes/copy/config_cpu.yaml`) from one round 0, 8 rounds under the standard and the accelerated
schedule, and the standard schedule with rounds of 1000 steps instead of 300 (a lever that could grow
the margin); then `recipes/reverse_addition/config_cpu_accelerated.yaml` from scratch under each
`--seeds`. Every run evaluates until a length falls below 5%; `si-hf summary --figures` writes each
task's figures 9 and 10 with the runs side by side (`make reproduce-accelerated`).

A finished run is not run again: rerunning resumes.

    python scripts/experiments.py noise_threshold [--fractions 0.1 0.3 0.6] [--kinds uniform perturb ...] [--seed 42]
    python scripts/experiments.py verifier_floor [--qs 0 0.05 0.2 0.5 1] [--seed 42] [--output_dir outputs/experiments]
    python scripts/experiments.py random_labels [--seed 42] [--output_dir outputs/experiments]
    python scripts/experiments.py round_init [--seed 42]
    python scripts/experiments.py acceleration [--seeds 42 43 44]
    python scripts/experiments.py data_size [--sizes 250 1000 4000] [--round0 DIR] [--seed 42]
    python scripts/experiments.py vote_variants [--round0 DIR] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from si_hf.publishing.figures import lines as plot_lines

ROOT = Path(__file__).resolve().parent.parent
ORACLE_RECIPE = "recipes/reverse_addition/config_cpu_oracle.yaml"
VOTE_RECIPE = "recipes/reverse_addition/config_cpu_accelerated.yaml"
VOTE_VARIANTS = ("independent", "shared_data", "shared_seed", "more_data")
COPY_RECIPE = "recipes/copy/config_cpu.yaml"
COPY_ARMS = {  # name: the settings that differ from the recipe, 8 rounds each
    "standard": (),
    "accelerated": ("--schedule", "accelerated"),
    "standard-1000-steps": ("--round_max_steps", "1000", "--round_decay_steps", "500"),
}
THRESHOLD = 0.95


def launch(*args: str) -> None:
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "accelerate"), "launch", "--config_file", "accelerate_configs/cpu.yaml",
               "recipes/run_round.py", *args]  # fmt: skip
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def frontier(accuracy: dict[str, float], threshold: float = THRESHOLD) -> int:
    """The longest n such that every length 1..n is at >= threshold (0 when length 1 is not)."""
    n = 0
    while accuracy.get(str(n + 1), 0.0) >= threshold:
        n += 1
    return n


def arm_rows(run: Path) -> list[dict]:
    """Per round of a run: kept labels, their accuracy, the frontier."""
    rows = []
    for m in json.loads((run / "metrics.json").read_text()):
        rows.append(
            {
                "round": m["round"],
                "n_kept": m.get("n_kept"),
                "data_accuracy": m.get("data_accuracy"),
                "frontier": frontier(m["accuracy"]),
                "accuracy": m["accuracy"],
            }
        )
    return rows


def verifier_floor(output_dir: Path, qs: list[float], seed: int) -> None:
    out = output_dir / "verifier_floor" / f"seed-{seed}"
    base = out / "round0"
    launch("--config", ORACLE_RECIPE, "--seed", str(seed), "--round", "0", "--output_dir", str(base))
    source = base / "rounds" / "round-000" / "member-0"
    arms = {}
    for q in qs:
        run = out / f"q-{q:g}"
        t0 = time.perf_counter()
        launch("--config", ORACLE_RECIPE, "--seed", str(seed), "--oracle_false_accept", f"{q:g}",
               "--resume_from", str(source), "--output_dir", str(run))  # fmt: skip
        print(f"q={q:g}: {time.perf_counter() - t0:.0f} s", flush=True)
        arms[q] = arm_rows(run)
    round0 = frontier(json.loads((base / "metrics.json").read_text())[0]["accuracy"])
    lines = [
        f"# Verifier-quality floor: reverse addition, seed {seed}, round 0 frontier {round0}",
        "",
        "Per round: kept labels right (%), labels kept of 2000, frontier (longest n with 1..n at >= 95%).",
        "",
        "| q | " + " | ".join(f"round {r['round']}" for r in arms[qs[0]] if r["round"] > 0) + " |",
        "|---|" + "---|" * sum(r["round"] > 0 for r in arms[qs[0]]),
    ]
    for q, rows in arms.items():
        cells = [
            f"{100 * r['data_accuracy']:.1f}% of {r['n_kept']}, frontier {r['frontier']}"
            for r in rows
            if r["round"] > 0 and r["data_accuracy"] is not None
        ]
        lines.append(f"| {q:g} | " + " | ".join(cells) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(arms, round0, out / "verifier_floor.png", seed)


def plot(arms: dict[float, list[dict]], round0: int, path: Path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for q, rows in arms.items():
        later = [r for r in rows if r["round"] > 0]
        left.plot(
            [r["round"] for r in later],
            [100 * (r["data_accuracy"] or 0) for r in later],
            "o-",
            label=f"q={q:g}",
        )
        right.plot(
            [0] + [r["round"] for r in later],
            [round0] + [r["frontier"] for r in later],
            "o-",
            label=f"q={q:g}",
        )
    left.set(xlabel="round", ylabel="kept labels right (%)", title="label quality")
    right.set(xlabel="round", ylabel="frontier (digits, all lengths up to it >= 95%)", title="reach")
    from matplotlib.ticker import MaxNLocator

    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    right.legend(title="false-accept rate", fontsize=8)
    fig.suptitle(f"reverse addition, oracle filter with false-accept rate q (seed {seed})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def random_labels(output_dir: Path, qs: list[float], seed: int) -> None:
    out = output_dir / "verifier_floor" / f"seed-{seed}"
    self_labels = out / "q-1"
    if not (self_labels / "metrics.json").is_file():
        raise SystemExit(
            f"{self_labels} has no run: run `scripts/experiments.py verifier_floor` (with q = 1) first"
        )
    arm = [r for r in arm_rows(self_labels) if r["round"] > 0]
    run = out / "truth-uniform"
    source = out / "round0" / "rounds" / "round-000" / "member-0"
    for r in arm:  # one round at a time: its noise matches that round's self-label error rate
        error = 1 - (r["data_accuracy"] or 0.0)  # None: the round kept no label
        start = ("--resume_from", str(source)) if r["round"] == 1 else ("--allow_config_change", "true")
        launch("--config", ORACLE_RECIPE, "--seed", str(seed), "--filters", "none", "--label_source", "truth",
               "--noise_kind", "uniform", "--noise_fraction", f"{error:.4f}", "--noise_rounds", str(r["round"]),
               "--round", str(r["round"]), *start, "--output_dir", str(run))  # fmt: skip
    lines = [
        f"# Random labels against self-labels of the same accuracy: reverse addition, seed {seed}",
        "",
        "Self-labels: the q = 1 arm of verifier_floor (every finished label kept). Random: each round's true "
        "answers with the self-labels' share of wrong ones that round replaced by uniform noise.",
        "",
        "| arm | " + " | ".join(f"round {r['round']}" for r in arm) + " |",
        "|---|" + "---|" * len(arm),
    ]
    for name, rows in (("self-labels", arm), ("random labels", arm_rows(run))):
        cells = [
            f"{100 * r['data_accuracy']:.1f}% right, frontier {r['frontier']}" for r in rows if r["round"] > 0
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (out / "random_labels.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


NOISE_KINDS = ("uniform", "perturb", "drop_digits", "drop_perturb")


def noise_threshold(
    output_dir: Path, fractions: list[float], seed: int, kinds=NOISE_KINDS, rounds: int = 3
) -> None:
    out = output_dir / "verifier_floor" / f"seed-{seed}"
    clean = out / "q-0"
    if not (clean / "metrics.json").is_file():
        raise SystemExit(
            f"{clean} has no run: run `scripts/experiments.py verifier_floor` (with q = 0) first"
        )
    source = out / "round0" / "rounds" / "round-000" / "member-0"
    arms = {}
    for kind in kinds:
        for f in fractions:
            run = output_dir / "noise_threshold" / f"seed-{seed}" / f"{kind}-{f:g}"
            launch("--config", ORACLE_RECIPE, "--seed", str(seed), "--num_rounds", str(rounds),
                   "--noise_kind", kind, "--noise_fraction", f"{f:g}", "--noise_rounds", "1",
                   "--resume_from", str(source), "--output_dir", str(run))  # fmt: skip
            arms[(kind, f)] = arm_rows(run)
    base = [r for r in arm_rows(clean) if r["round"] <= rounds]
    last = base[-1]["round"]
    d0 = int(yaml.safe_load((ROOT / ORACLE_RECIPE).read_text())["d0"])
    after1, after_last = str(d0 + 2), str(d0 + last + 1)  # one length past round 1's labels, and round last's
    lines = [
        f"# Noise threshold: reverse addition, seed {seed}, noise in round 1, a perfect check after it",
        "",
        f"Exact match at {after1} digits after round 1 (one past the noisy labels) / at {after_last} digits after "
        f"round {last}; in brackets the frontier after round {last} (longest n with 1..n at >= 95%).",
        "",
        "| kind | " + " | ".join(f"share {f:g}" for f in [0.0, *fractions]) + " |",
        "|---|" + "---|" * (len(fractions) + 1),
    ]

    def cell(rows):
        by = {r["round"]: r for r in rows}
        if 1 not in by or last not in by:
            return "not run"
        a, b = by[1]["accuracy"].get(after1, 0.0), by[last]["accuracy"].get(after_last, 0.0)
        return f"{100 * a:.1f} / {100 * b:.1f} ({by[last]['frontier']})"

    for kind in kinds:
        lines.append(
            f"| {kind} | {cell(base)} | " + " | ".join(cell(arms[(kind, f)]) for f in fractions) + " |"
        )
    path = output_dir / "noise_threshold" / f"seed-{seed}" / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def round_init(output_dir: Path, seed: int) -> None:
    out = output_dir / "verifier_floor" / f"seed-{seed}"
    continued = out / "q-0"
    if not (continued / "metrics.json").is_file():
        raise SystemExit(
            f"{continued} has no run: run `scripts/experiments.py verifier_floor` (with q = 0) first"
        )
    run = output_dir / "round_init" / f"seed-{seed}" / "base"
    source = out / "round0" / "rounds" / "round-000" / "member-0"
    launch("--config", ORACLE_RECIPE, "--seed", str(seed), "--oracle_false_accept", "0", "--round_init", "base",
           "--resume_from", str(source), "--output_dir", str(run))  # fmt: skip
    arms = {"continue": arm_rows(continued), "base": arm_rows(run)}
    rounds = [r["round"] for r in arms["base"]]
    lines = [
        f"# Restart or continue: reverse addition, seed {seed}, a perfect check (oracle q = 0)",
        "",
        "Per round: the frontier (longest n with 1..n at >= 95%) and the exact match one length past the "
        "round's labels.",
        "",
        "| round_init | " + " | ".join(f"round {r}" for r in rounds) + " |",
        "|---|" + "---|" * len(rounds),
    ]
    d0 = int(yaml.safe_load((ROOT / ORACLE_RECIPE).read_text())["d0"])
    for name, rows in arms.items():
        by = {r["round"]: r for r in rows}
        cells = [
            f"{by[r]['frontier']} ({100 * by[r]['accuracy'].get(str(d0 + r + 1), 0.0):.1f}% at {d0 + r + 1})"
            if r in by else "-"
            for r in rounds
        ]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    path = output_dir / "round_init" / f"seed-{seed}" / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def members_round0(output_dir: Path, seed: int, given: Path | None) -> list[Path]:
    """The round-0 model folders of the k members of VOTE_RECIPE: `given`'s, the `acceleration`
    experiment's run under this seed when it has one, or trained here."""
    accelerated = output_dir / "acceleration" / "reverse_addition" / f"seed-{seed}"
    if given is None and (accelerated / "rounds" / "round-000").is_dir():
        given = accelerated
    base = given or output_dir / f"round0-k3-seed-{seed}"
    if given is None:
        launch("--config", VOTE_RECIPE, "--seed", str(seed), "--round", "0", "--output_dir", str(base))
    members = sorted(
        (base / "rounds" / "round-000").glob("member-*"), key=lambda p: int(p.name.split("-")[1])
    )
    if len(members) < 2:
        raise SystemExit(
            f"{base}: expected a round 0 of k >= 2 members under rounds/round-000/, found {len(members)}"
        )
    return members


def data_size(output_dir: Path, sizes: list[int], seed: int, round0: Path | None) -> None:
    members = members_round0(output_dir, seed, round0)
    out = output_dir / "data_size" / f"seed-{seed}"
    d0 = int(yaml.safe_load((ROOT / ORACLE_RECIPE).read_text())["d0"])
    ind, ood = [str(n) for n in range(1, d0 + 2)], [str(d0 + 2), str(d0 + 3)]
    table = {}
    for m, source in enumerate(members):
        for n in sizes:
            run = out / f"member-{m}" / f"n-{n}"
            launch("--config", ORACLE_RECIPE, "--seed", str(seed), "--oracle_false_accept", "0", "--num_rounds", "1",
                   "--examples_per_round", str(n), "--min_round_examples", "1", "--resume_from", str(source),
                   "--output_dir", str(run))  # fmt: skip
            acc = arm_rows(run)[-1]["accuracy"]
            table[(m, n)] = (
                sum(acc.get(k, 0.0) for k in ind) / len(ind),
                sum(acc.get(k, 0.0) for k in ood) / len(ood),
            )
    lines = [
        f"# Self-labelled data size: reverse addition, one round on {d0 + 1} digits, seeds of round 0: members "
        f"of {VOTE_RECIPE} under --seed {seed}",
        "",
        f"Exact match (%) in distribution (1-{d0 + 1} digits, mean) / out of it ({', '.join(ood)} digits, mean).",
        "",
        "| N_1 | " + " | ".join(f"member {m}" for m in range(len(members))) + " | mean |",
        "|---|" + "---|" * (len(members) + 1),
    ]
    for n in sizes:
        cells = [table[(m, n)] for m in range(len(members))]
        mean = (sum(c[0] for c in cells) / len(cells), sum(c[1] for c in cells) / len(cells))
        lines.append(
            f"| {n} | " + " | ".join(f"{100 * a:.1f} / {100 * b:.1f}" for a, b in [*cells, mean]) + " |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot_sizes(table, sizes, len(members), out / "data_size.png")


def plot_sizes(table: dict, sizes: list[int], k: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for m in range(k):
        ax.plot(
            sizes, [table[(m, n)][1] for n in sizes], marker="o", label=f"member {m} (out of distribution)"
        )
    ax.plot(
        sizes,
        [sum(table[(m, n)][0] for m in range(k)) / k for n in sizes],
        "k--",
        label="in distribution, mean",
    )
    ax.set_xscale("log")
    ax.set_xlabel("N_1: self-labelled examples of the next length")
    ax.set_ylabel("exact match")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Self-labelled data size (appendix B.6.3, figure 27)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def vote_variants(output_dir: Path, seed: int, round0: Path | None, rounds: int = 3) -> None:
    members = members_round0(output_dir, seed, round0)
    out = output_dir / "vote_variants" / f"seed-{seed}"
    lines = [
        f"# Majority-vote variants: reverse addition, k = {len(members)}, unanimous vote, rounds 1-{rounds}",
        "",
        "Per variant and round: each member's frontier (longest n with 1..n at >= 95%) and, in brackets, the kept "
        "labels' accuracy (%) averaged over the members.",
        "",
        "| variant | " + " | ".join(f"round {r}" for r in range(1, rounds + 1)) + " |",
        "|---|" + "---|" * rounds,
    ]
    shared = out / "shared-seed-source"  # shared_seed: every member starts from member 0's round 0
    for m in range(len(members)):
        link = shared / f"member-{m}"
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(members[0].resolve(), target_is_directory=True)
    starts = {"shared_seed": shared, "more_data": members[0]}  # more_data: one model
    curves: dict[str, dict[int, float]] = {}  # variant: exact match by length after the last round
    for variant in VOTE_VARIANTS:
        run, source = out / variant, starts.get(variant, members[0].parent)
        launch("--config", VOTE_RECIPE, "--seed", str(seed), "--schedule", "standard", "--num_rounds", str(rounds),
               "--vote_variant", variant, "--resume_from", str(source), "--output_dir", str(run))  # fmt: skip
        by: dict[int, list[dict]] = {}
        for m in json.loads((run / "metrics.json").read_text()):
            by.setdefault(m["round"], []).append(m)
        cells = []
        for r in range(1, rounds + 1):
            ms = by.get(r, [])
            accs = [m["data_accuracy"] for m in ms if m.get("data_accuracy") is not None]
            front = "/".join(str(frontier(m["accuracy"])) for m in ms)
            cells.append(f"{front} ({100 * sum(accs) / len(accs):.1f})" if accs else front or "-")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        last = by.get(rounds, [])
        curves[variant] = (
            {int(n): sum(m["accuracy"][n] for m in last) / len(last) for n in last[0]["accuracy"]}
            if last
            else {}
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    title = f"Majority-vote variants after round {rounds} (appendix B.2.4, figure 17)"
    plot_lines(curves, out / "vote_variants.png", title=title, ylabel="exact match, mean over members",
               xlabel="operand length (digits)")  # fmt: skip


def summarise(runs: list[Path], out: Path) -> None:
    """`si-hf summary` of runs side by side, with figures 9 and 10 (margin.png, reach.png) in `out`."""
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "si-hf"), "summary", *map(str, runs), "--output", str(out / "summary.md"),
               "--figures", str(out)]  # fmt: skip
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def acceleration(output_dir: Path, seeds: list[int], rounds: int = 8) -> None:
    out = output_dir / "acceleration"
    base = out / "copy" / "round0"
    launch("--config", COPY_RECIPE, "--round", "0", "--output_dir", str(base))
    source = base / "rounds" / "round-000" / "member-0"
    for name, extra in COPY_ARMS.items():
        launch("--config", COPY_RECIPE, "--num_rounds", str(rounds), "--eval_until_below", "0.05", *extra,
               "--resume_from", str(source), "--output_dir", str(out / "copy" / name))  # fmt: skip
    summarise([out / "copy" / name for name in COPY_ARMS], out / "copy")
    runs = []
    for seed in seeds:
        runs.append(out / "reverse_addition" / f"seed-{seed}")
        launch("--config", VOTE_RECIPE, "--seed", str(seed), "--output_dir", str(runs[-1]))
    summarise(runs, out / "reverse_addition")


EXPERIMENTS = {
    "verifier_floor": verifier_floor,
    "random_labels": random_labels,
    "noise_threshold": noise_threshold,
    "round_init": round_init,
    "data_size": data_size,
    "vote_variants": vote_variants,
    "acceleration": acceleration,
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("experiment", choices=list(EXPERIMENTS))
    parser.add_argument("--qs", type=float, nargs="+", default=[0.0, 0.05, 0.2, 0.5, 1.0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 0.6])
    parser.add_argument("--kinds", nargs="+", choices=NOISE_KINDS, default=list(NOISE_KINDS))
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 4000])
    parser.add_argument(
        "--round0", type=Path, default=None, help="a run of the k-member recipe whose round 0 to use"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[42, 43, 44], help="acceleration: reverse addition"
    )
    parser.add_argument("--output_dir", type=Path, default=ROOT / "outputs" / "experiments")
    args = parser.parse_args(argv)
    bad = [q for q in args.qs if not 0 <= q <= 1]
    if bad:
        parser.error(f"--qs: {bad} are not probabilities in [0, 1]")
    if args.experiment == "noise_threshold":
        bad = [f for f in args.fractions if not 0 < f <= 1]
        if bad:
            parser.error(f"--fractions: {bad} are not shares in (0, 1]")
        noise_threshold(args.output_dir, args.fractions, args.seed, args.kinds)
        return
    if args.round0 is not None and not (args.round0 / "rounds" / "round-000").is_dir():
        parser.error(f"--round0: {args.round0} holds no rounds/round-000; expected a run of {VOTE_RECIPE}")
    if args.experiment == "round_init":
        round_init(args.output_dir, args.seed)
    elif args.experiment == "data_size":
        if any(n < 1 for n in args.sizes):
            parser.error(f"--sizes: {args.sizes}; expected prompt counts >= 1")
        data_size(args.output_dir, args.sizes, args.seed, args.round0)
    elif args.experiment == "acceleration":
        acceleration(args.output_dir, args.seeds)
    elif args.experiment == "vote_variants":
        vote_variants(args.output_dir, args.seed, args.round0)
    else:
        EXPERIMENTS[args.experiment](args.output_dir, args.qs, args.seed)


if __name__ == "__main__":
    main()
