"""Tiny runs of every task family, to check that a refactoring changes no artifact (minutes on 2 cores).

    python scripts/golden_runs.py OUTPUT_DIR            # with the code to check
    si-hf compare OUTPUT_DIR/<name> OTHER_DIR/<name>    # against the same runs of the code before

One run per family, each a path the round loop takes differently: copy with the length filter,
reverse addition with a 2-member majority vote, maze hops with the verifier, multiplication without a
filter. Each runs round 0 and two self-improvement rounds of a tiny model in its own process, so the
runs of two versions of si-hf on one machine must publish identical labels, weights and metrics
(`si-hf compare`, timings aside). Float results differ between CPUs: compare on one machine.
Run it from an old checkout with `PYTHONPATH=<old checkout>/src python scripts/golden_runs.py DIR`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

TINY = {
    "preset": "tiny",
    "num_d0_examples": 4000,
    "per_device_train_batch_size": 16,
    "max_steps": 60,
    "learning_rate": 3.0e-3,
    "warmup_steps": 5,
    "lr_scheduler_kwargs": {"num_decay_steps": 10},
    "logging_steps": 20,
    "disable_tqdm": True,
    "num_rounds": 2,
    "examples_per_round": 64,
    "label_batch_size": 32,
    "round_max_steps": 10,
    "round_decay_steps": 5,
    "eval_examples_per_difficulty": 16,
    "eval_beyond": 1,
    "eval_batch_size": 64,
    "seed": 11,
}
RUNS = {
    "copy_length": {"task": "copy", "d0": "4", "filters": ["length"]},
    "reverse_addition_vote": {
        "task": "reverse_addition",
        "d0": "3",
        "filters": ["majority_vote"],
        "num_members": 2,
        "vote_threshold": 0.5,
    },
    # the tiny model learns no maze path; it ends some at the target, which the end check keeps
    "maze_verifier": {
        "task": "maze_hops",
        "maze_num_nodes": 8,
        "d0": "1",
        "filters": ["verifier"],
        "verifier_checks": ["end"],
        "max_steps": 200,
    },
    "multiplication_none": {
        "task": "multiplication",
        "d0": "2x2",
        "schedule": "multiplication",
        "filters": ["none"],
    },
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output_dir", type=Path, help="one folder per run is made under it")
    parser.add_argument("--only", nargs="*", choices=list(RUNS), help="run these only (default: all)")
    args = parser.parse_args(argv)
    for name in args.only or RUNS:
        out = args.output_dir / name
        out.mkdir(parents=True, exist_ok=True)
        config = out.parent / f"{name}.yaml"
        config.write_text(json.dumps({**TINY, **RUNS[name], "output_dir": str(out)}))  # JSON is YAML
        print(f"{name}: {out}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "si_hf.cli", "run", "--config", str(config)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
