"""Run the CPU reproduction recipes under several seeds and summarise them (`make reproduce`; hours).

For each task (all by default) and each of its recipes, every seed runs the recipe exactly as the
README gives it, with `--seed S --output_dir OUTPUT/<task>/<variant>/seed-S`:

    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/run_round.py \\
        --config recipes/<task>/<recipe>.yaml --seed S --output_dir OUTPUT/<task>/<variant>/seed-S

then `si-hf report` writes its heatmap and report beside it, the wall time and the CPU model go to
`seed-S/wall.json`, and `si-hf summary` puts the seeds side by side in `<variant>/summary.md`; for a
task with a contrast (a filter and its no-filter run) `<task>/contrast.md` holds every run of both.
A task with a vote recipe (`VOTES`) then runs it once, its k members being the round-0 models the
task's first recipe trained under the first k seeds (`--resume_from OUTPUT/<task>/<variant>/members-S1-..`,
a folder of links to `seed-S/rounds/round-000/member-0`): the k independently trained models of the
paper's majority vote (section 5) at no extra round-0 cost, into `OUTPUT/<task>/<variant>/seeds-S1-..`.
A finished run is not run again (the round loop finds every round in its store): rerunning the
command after a crash resumes where it stopped, and only runs that trained anything record a time.

    python scripts/reproduce.py [TASK ...] [--seeds 42 43 44] [--output_dir outputs/reproduce] [--dry_run]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from si_hf import atomic
from si_hf.layout import MARKER, RunPaths, member_dirname

ROOT = Path(__file__).resolve().parent.parent
# task -> its CPU recipes; two recipes are a contrast that differs in the filter only
RECIPES = {
    "copy": ["recipes/copy/config_cpu.yaml"],
    "reverse_addition": ["recipes/reverse_addition/config_cpu.yaml"],
    "forward_addition": [
        "recipes/forward_addition/config_cpu_no_filter.yaml",
        "recipes/forward_addition/config_cpu_length_filter.yaml",
    ],
    "multiplication": ["recipes/multiplication/config_cpu_no_filter.yaml"],
    "maze_hops": [
        "recipes/maze_hops/config_cpu_no_filter.yaml",
        "recipes/maze_hops/config_cpu_verifier.yaml",
    ],
}
# task -> a majority-vote recipe whose members start from round 0 of the task's first recipe, one per seed
VOTES = {
    "reverse_addition": "recipes/reverse_addition/config_cpu_majority_vote.yaml",
    "forward_addition": "recipes/forward_addition/config_cpu_majority_vote.yaml",
    "multiplication": "recipes/multiplication/config_cpu_majority_vote_length.yaml",
}
SEEDS = (42, 43, 44)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor() or "unknown"
    return next(
        (line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
        "unknown",
    )


def variant(recipe: str) -> str:
    """recipes/forward_addition/config_cpu_length_filter.yaml -> cpu_length_filter"""
    return Path(recipe).stem.removeprefix("config_")


def plan(tasks: list[str], seeds: list[int], output_dir: Path) -> list[dict]:
    """Every (recipe, seed) run: its command and output directory, in the order they run."""
    unknown = [t for t in tasks if t not in RECIPES]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; expected some of {list(RECIPES)}")
    bin_dir = Path(sys.executable).parent
    runs = []
    for task in tasks:
        for recipe in RECIPES[task]:
            for seed in seeds:
                out = output_dir / task / variant(recipe) / f"seed-{seed}"
                command = launch(bin_dir, recipe, "--seed", str(seed), "--output_dir", str(out))
                runs.append(
                    {"task": task, "recipe": recipe, "seed": seed, "output_dir": out, "command": command}
                )
        if task in VOTES:
            k = num_members(VOTES[task])
            if len(seeds) >= k:
                runs.append(vote_run(task, RECIPES[task][0], seeds[:k], output_dir, bin_dir))
            else:
                print(f"{VOTES[task]}: not run, it votes over {k} models and {len(seeds)} seed(s) train only "
                      f"{len(seeds)}: give at least {k} seeds", file=sys.stderr)  # fmt: skip
    return runs


def launch(bin_dir: Path, recipe: str, *args: str) -> list[str]:
    return [str(bin_dir / "accelerate"), "launch", "--config_file", "accelerate_configs/cpu.yaml",
            "recipes/run_round.py", "--config", recipe, *args]  # fmt: skip


def num_members(recipe: str) -> int:
    k = yaml.safe_load((ROOT / recipe).read_text()).get("num_members", 1)
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"{recipe}: a vote recipe needs num_members >= 2, got {k!r}")
    return k


def vote_run(task: str, first_recipe: str, seeds: list[int], output_dir: Path, bin_dir: Path) -> dict:
    """The vote recipe of `task`, member m resumed from round 0 of `first_recipe` under `seeds[m]`."""
    recipe, tag = VOTES[task], "-".join(map(str, seeds))
    base = output_dir / task / variant(recipe)
    members = base / f"members-{tag}"
    out = base / f"seeds-{tag}"
    command = launch(
        bin_dir, recipe, "--seed", str(seeds[0]), "--resume_from", str(members), "--output_dir", str(out)
    )
    sources = [
        RunPaths(output_dir / task / variant(first_recipe) / f"seed-{s}").round(0, 0).root for s in seeds
    ]
    links = [members / member_dirname(m) for m in range(len(seeds))]
    return {"task": task, "recipe": recipe, "seed": seeds[0], "output_dir": out, "command": command,
            "members": dict(zip(links, sources, strict=True))}  # fmt: skip


def link_members(members: dict[Path, Path]) -> None:
    """member-m -> the round-0 model it starts from; refuses a link that points elsewhere."""
    for link, source in members.items():
        if not (source / MARKER).is_file():
            raise FileNotFoundError(
                f"{source}: no finished round 0 to vote with (its seed's run comes first)"
            )
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            if link.resolve() != source.resolve():
                raise FileExistsError(f"{link} points to {link.resolve()}, expected {source}")
            continue
        link.symlink_to(source.resolve(), target_is_directory=True)


def completed_rounds(out: Path) -> int:
    """Rounds (of member 0) the store at `out` holds: a rerun that finds them all trains nothing."""
    paths = RunPaths(out)
    return sum(1 for r, m in paths.published() if m == 0 and paths.round(r, m).marker.is_file())


def execute(command: list[str]) -> None:
    """One recipe run, as the README gives it (`accelerate launch ...`), from the repository root."""
    subprocess.run(command, cwd=ROOT, check=True)


def si_hf(*args: str) -> None:
    """An `si-hf` command (report, summary) in this process: they only read runs and write markdown."""
    from si_hf.cli import main as cli

    try:
        status = cli(list(args))
    except SystemExit as e:  # argparse's errors
        status = e.code
    if status != 0:
        raise RuntimeError(f"si-hf {' '.join(args)} failed with exit status {status}")


def run_one(run: dict) -> None:
    out: Path = run["output_dir"]
    link_members(run.get("members", {}))
    before = completed_rounds(out)
    t0 = time.perf_counter()
    execute(run["command"])
    seconds = time.perf_counter() - t0
    if completed_rounds(out) > before:  # it trained something: its time means what it says
        record = {
            "seconds": round(seconds, 1),
            "rounds_run": completed_rounds(out) - before,
            "resumed": before > 0,
            "cpu": cpu_model(),
            "command": shlex.join(["accelerate", *run["command"][1:]]),
        }
        atomic.write_text(out / "wall.json", json.dumps(record, indent=2) + "\n")
    si_hf("report", str(out))


def summarise(runs: list[dict], output_dir: Path) -> list[Path]:
    written = []
    by_recipe: dict[tuple[str, str], list[Path]] = {}
    for run in runs:
        by_recipe.setdefault((run["task"], run["recipe"]), []).append(run["output_dir"])
    for (task, recipe), dirs in by_recipe.items():
        path = output_dir / task / variant(recipe) / "summary.md"
        si_hf("summary", *map(str, dirs), "--output", str(path))
        written.append(path)
    for task in dict.fromkeys(run["task"] for run in runs):
        dirs = [d for (t, _), ds in by_recipe.items() if t == task for d in ds]
        if len({r for (t, r) in by_recipe if t == task}) > 1:
            path = output_dir / task / "contrast.md"
            si_hf("summary", *map(str, dirs), "--output", str(path))
            written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tasks", nargs="*", metavar="TASK", help=f"some of {list(RECIPES)} (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="seeds of every recipe")
    parser.add_argument("--output_dir", type=Path, default=ROOT / "outputs" / "reproduce")
    parser.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    try:
        runs = plan(args.tasks or list(RECIPES), args.seeds, args.output_dir)
    except ValueError as e:
        parser.error(str(e))
    for run in runs:
        print(shlex.join(["accelerate", *run["command"][1:]]), flush=True)
        if not args.dry_run:
            run_one(run)
    if not args.dry_run:
        for path in summarise(runs, args.output_dir):
            print(f"summary: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
