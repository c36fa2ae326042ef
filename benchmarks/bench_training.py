"""Training examples/s of the round loop against a bare padded PyTorch loop, with a recipe's own settings.

The recipe (default: the demo's, `recipes/copy/config_cpu.yaml`) is parsed as `run_round.py` parses
it, so the model, batch size, optimizer, precision and `pack_length` are the recipe's. Two streams,
each built by the round loop's own code (`si_hf.training.round_mix`): round 0 (D_0 alone) and round 2
(D_0 mixed with two rounds of self-labels one and two levels past D_0, the newest at the recipe's
`newest_round_probability`; the task's answers stand in for the model's, only speed counts here).

The baseline is the stricter one: the same rows of the same stream collated into padded batches
before the clock starts, then forward, backward, gradient clipping and the optimizer step only, in
fp32. The round loop is `si_hf.training.train` (Trainer) streaming, collating and training as a round
does, timed the same way a round's `train_seconds` is. Columns: the recipe as written, the recipe
padded (`pack_length` unset), the recipe at each `--pack_lengths` value, and with `--compile` the recipe
under `torch_compile: true`, also with every packed row exactly `pack_length` wide (static shapes), steady
state: a first, unmeasured run fills torch.compile's caches (as a run's first round does) and the seconds
that first run took beyond the eager one are printed beside it (about 0 once inductor's on-disk cache holds
the graphs from an earlier run on the machine).

    .venv/bin/python benchmarks/bench_training.py [--steps 300] [--config recipes/copy/config_cpu.yaml] [--compile] [--pack_lengths 1 32]
"""

import argparse
import dataclasses
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from datasets import Dataset

from si_hf.collator import PromptCompletionCollator
from si_hf.modeling import build_model
from si_hf.precision import precision_overrides
from si_hf.rounds import parse_args
from si_hf.schedules import round_difficulties
from si_hf.tasks import task_from_args
from si_hf.tokenization import get_tokenizer
from si_hf.training import round_mix, round_training_args, train

REPO = Path(__file__).resolve().parents[1]


def cpu_model_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")
        )
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def recipe(config: str, out: str):
    """The recipe's four argument classes, parsed and validated as `run_round.py` does."""
    task_args, si, model_args, train_args = parse_args(["--config", config, "--output_dir", out])
    task = task_from_args(task_args)
    return SimpleNamespace(
        task=task,
        d0=task.parse_difficulty(task_args.d0),
        task_args=task_args,
        si=si,
        model_args=model_args,
        train_args=train_args,
        tokenizer=get_tokenizer(task.tokenizer_name),
    )


def stream(run, r: int):
    """The round loop's training stream of round r for member 0: D_0 and rounds 1..r at the levels the
    recipe's schedule picks, `examples_per_round` rows each."""
    key = run.task.difficulty_key
    trained, rounds = [key(d) for d in run.task.d0_difficulties(run.d0)], {}
    for k in range(1, r + 1):
        levels = round_difficulties(run.task, run.si, run.d0, k, trained, {})
        n = run.si.examples_per_round
        parts = [
            run.task.generate(n // len(levels), seed=0, purpose="round", keys=(k, i), difficulty=level)
            for i, level in enumerate(levels)
        ]
        rounds[k] = Dataset.from_dict(
            {
                c: [x for g in parts for x in g[src]]
                for c, src in (("prompt", "prompt"), ("completion", "answer"), ("difficulty", "difficulty"))
            }
        )
        trained += [key(level) for level in levels]
    return round_mix(run, r, 0, rounds)


def bare_loop(run, r: int, steps: int) -> float:
    """Examples/s of forward, backward, clipping and AdamW on pre-collated padded fp32 batches."""
    batch = run.train_args.per_device_train_batch_size
    examples = [row for _, row in zip(range(steps * batch), stream(run, r))]
    collate = PromptCompletionCollator(run.tokenizer)
    batches = [collate(examples[i * batch : (i + 1) * batch]) for i in range(steps)]
    t = run.train_args
    model = build_model(run.model_args, run.tokenizer, seed=0).train()
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=t.learning_rate,
        betas=(t.adam_beta1, t.adam_beta2),
        eps=t.adam_epsilon,
        weight_decay=t.weight_decay,
    )
    t0 = time.perf_counter()
    for b in batches:
        model(**b, use_cache=False).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * batch / (time.perf_counter() - t0)


def token_counts(run, r: int, steps: int) -> tuple[int, int, int]:
    """Tokens the model runs over in `steps` batches of round r's stream: padded, packed at the recipe's
    `pack_length`, and the examples' own (the least any padding-free batch can hold)."""
    batch = run.train_args.per_device_train_batch_size
    rows = [row for _, row in zip(range(steps * batch), stream(run, r))]
    padded = PromptCompletionCollator(run.tokenizer)
    packed = PromptCompletionCollator(run.tokenizer, pack_length=run.si.pack_length or 64)
    counts = [0, 0, 0]
    for i in range(steps):
        chunk = rows[i * batch : (i + 1) * batch]
        a, b = padded(chunk), packed(chunk)
        counts[0] += a["input_ids"].numel()
        counts[1] += b["input_ids"].numel()
        counts[2] += int(a["attention_mask"].sum())
    return tuple(counts)


def round_loop(
    run, r: int, steps: int, *, pack_length, torch_compile: bool = False, fixed_width: bool = False
) -> float:
    """Examples/s of round r's Trainer run, `steps` steps, with the recipe's arguments."""
    with tempfile.TemporaryDirectory() as tmp:
        args = round_training_args(run.train_args, run.si, r, 0, tmp, precision_overrides(run.si.precision))
        kwargs = dict(args.lr_scheduler_kwargs or {})
        if "num_decay_steps" in kwargs:
            kwargs["num_decay_steps"] = min(kwargs["num_decay_steps"], steps // 4)
        args = dataclasses.replace(
            args,
            max_steps=steps,
            warmup_steps=min(args.warmup_steps, steps // 4),
            lr_scheduler_kwargs=kwargs,
            disable_tqdm=True,
            logging_steps=steps,
            torch_compile=torch_compile,
        )
        collator = PromptCompletionCollator(
            run.tokenizer,
            pack_length=pack_length,
            completion_only_loss=run.si.completion_only_loss,
            pad_to_multiple_of=pack_length if fixed_width else None,  # every packed row exactly pack_length
        )
        model = build_model(run.model_args, run.tokenizer, seed=0)
        _, _, seconds = train(model, args, stream(run, r), collator, run.tokenizer)
    return steps * args.per_device_train_batch_size / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300, help="a demo round's length")
    parser.add_argument("--config", default=str(REPO / "recipes/copy/config_cpu.yaml"))
    parser.add_argument("--compile", action="store_true", help="also time torch_compile: true")
    parser.add_argument(
        "--pack_lengths",
        type=int,
        nargs="*",
        default=[],
        help="also time the recipe at these pack_length values",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        run = recipe(args.config, out)
    t, si = run.train_args, run.si
    print(f"CPU: {cpu_model_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"recipe {Path(args.config).name}: {run.model_args.preset} preset, batch {t.per_device_train_batch_size}, "
        f"precision {si.precision}, pack_length {si.pack_length}; {args.steps} steps a column"
    )
    for r, title in ((0, "round 0: D_0"), (2, "round 2: D_0 + two rounds of self-labels")):
        padded, packed, own = token_counts(run, r, args.steps)
        print(
            f"{title}: {padded / args.steps:.0f} tokens a padded batch, {packed / args.steps:.0f} packed, "
            f"{own / args.steps:.0f} of examples: padding-free batches hold at best {padded / own:.2f}x fewer tokens"
        )
        base = bare_loop(run, r, args.steps)
        print(f"  {'bare padded loop, fp32 (pre-collated batches)':48s} {base:8.0f} ex/s  1.00x")
        columns = [(f"round loop, the recipe (pack_length {si.pack_length})", si.pack_length, False)]
        if si.pack_length is not None:
            columns.append(("round loop, padded (pack_length unset)", None, False))
        columns += [(f"round loop, pack_length {p}", p, False) for p in args.pack_lengths]
        columns = [(*c, False) for c in columns]
        if args.compile:
            columns.append(("round loop, the recipe + torch_compile", si.pack_length, True, False))
            if si.pack_length is not None:
                columns.append(("  ... rows of exactly pack_length", si.pack_length, True, True))
        eager = None
        for name, pack, compiled, fixed in columns:
            note = ""
            if compiled:  # the first run compiles; the second is what every later step costs
                first = round_loop(
                    run, r, args.steps, pack_length=pack, torch_compile=True, fixed_width=fixed
                )
                cost = args.steps * t.per_device_train_batch_size * (1 / first - 1 / eager)
                note = f"  (compiling cost {cost:.0f} s once)"
            speed = round_loop(
                run, r, args.steps, pack_length=pack, torch_compile=compiled, fixed_width=fixed
            )
            eager = eager or speed
            print(f"  {name:48s} {speed:8.0f} ex/s  {speed / base:.2f}x{note}")


if __name__ == "__main__":
    main()
