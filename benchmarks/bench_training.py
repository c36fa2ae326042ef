"""Training examples/s of the round loop against a bare padded PyTorch loop, measured in one run.

Same model (the `cpu` preset, 4 x 128 NoPE Llama, fp32), batch size (128), data (copy, lengths
1-10) and optimizer settings. The baseline is the stricter one: batches collated and padded before
the clock starts, then forward, backward, gradient clipping and AdamW only. The round loop is
`si_hf.training.train` (Trainer) on the streams the round loop builds: D_0 alone (round 0) and D_0
mixed with two self-labelled rounds (a self-improvement round): packed (`pack_length: 64`) and
padded (the default) in fp32, packed in fp32 under `torch_compile: true`, and with the demo recipe's
settings (`precision: native`, i.e. bf16 autocast where the CPU computes bf16 natively, and packed
batches). The compiled column is steady state: a first, unmeasured run of the same stream fills
torch.compile's caches (as the first round of a run does), and the seconds that first run took
beyond the eager one are printed beside it.
Each comparison uses the same stream: the baseline trains on its first steps x 128 rows.

    .venv/bin/python benchmarks/bench_training.py [--steps 150]
"""

import argparse
import platform
import subprocess
import tempfile
import time
from types import SimpleNamespace

import torch
from datasets import Dataset

from si_hf.collator import PromptCompletionCollator
from si_hf.configs import SelfImproveArguments, SITrainingArguments, TaskArguments
from si_hf.modeling import build_model
from si_hf.precision import cpu_has_native_bf16, precision_overrides
from si_hf.tasks import get_task
from si_hf.tokenization import get_tokenizer
from si_hf.training import d0_stream, train, training_mix

BATCH = 128


def cpu_model_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")
        )
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def bare_loop(tokenizer, data, steps: int) -> float:
    examples = [row for _, row in zip(range(steps * BATCH), data)]
    collate = PromptCompletionCollator(tokenizer)
    batches = [collate(examples[i * BATCH : (i + 1) * BATCH]) for i in range(steps)]
    model = build_model(SimpleNamespace(preset="cpu"), tokenizer, seed=0).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-12, weight_decay=0.1)
    t0 = time.perf_counter()
    for batch in batches:
        model(**batch, use_cache=False).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * BATCH / (time.perf_counter() - t0)


def stream(task, *, mixed: bool):
    """The round loop's training stream: D_0 (round 0) or D_0 mixed with two rounds (round 2)."""
    task_args = TaskArguments(task="copy", d0="10", num_d0_examples=200_000)
    si = SelfImproveArguments(examples_per_round=2000)
    d0 = d0_stream(task, 10, task_args, 1 if mixed else 0, 0, seed=0)
    rounds = {}
    if mixed:  # two self-labelled rounds (oracle labels stand in for the model's; only speed counts)
        for r, n in ((1, 11), (2, 12)):
            g = task.generate(2000, seed=0, purpose="round", keys=(r, 0), difficulty=n)
            rounds[r] = Dataset.from_dict(
                {"prompt": g["prompt"], "completion": g["answer"], "difficulty": g["difficulty"]}
            )
    return training_mix(d0, rounds, si, d0_weight=10, seed=0, member=0)


def round_loop(
    tokenizer, data, steps: int, *, pack_length, precision: str = "fp32", torch_compile: bool = False
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        args = SITrainingArguments(
            output_dir=tmp,
            max_steps=steps,
            per_device_train_batch_size=BATCH,
            learning_rate=1e-3,
            warmup_steps=10,
            lr_scheduler_kwargs={"num_decay_steps": 20},
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            logging_steps=1000,
            seed=0,
            torch_compile=torch_compile,
            **precision_overrides(precision),
        )
        model = build_model(SimpleNamespace(preset="cpu"), tokenizer, seed=0)
        _, _, seconds = train(
            model, args, data, PromptCompletionCollator(tokenizer, pack_length=pack_length), tokenizer
        )
    return steps * BATCH / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    tokenizer, task = get_tokenizer("char"), get_task("copy")
    native = "bf16" if cpu_has_native_bf16() else "fp32 (no native bf16 on this CPU)"
    print(f"CPU: {cpu_model_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"baseline fp32; precision native = {native}")
    for title, mixed in (
        ("round 0: D_0 (copy 1-10)", False),
        ("round 2: D_0 + rounds 1, 2 (lengths 11, 12)", True),
    ):
        print(title)
        base = bare_loop(tokenizer, stream(task, mixed=mixed), args.steps)
        print(f"  {'bare padded loop (pre-collated batches)':44s} {base:8.0f} ex/s  1.00x")
        eager = {}
        for name, pack, precision, compiled in (
            ("round loop, fp32, packed (pack_length 64)", 64, "fp32", False),
            ("round loop, fp32, padded (default)", None, "fp32", False),
            ("round loop, fp32, packed, torch_compile", 64, "fp32", True),
            ("round loop, native precision, packed (demo)", 64, "native", False),
        ):
            kwargs = {"pack_length": pack, "precision": precision, "torch_compile": compiled}
            note = ""
            if compiled:  # the first run compiles; the second is what every later step costs
                first = round_loop(tokenizer, stream(task, mixed=mixed), args.steps, **kwargs)
                cost = args.steps * BATCH * (1 / first - 1 / eager[pack])
                note = f"  (compiling cost {cost:.0f} s once)"
            speed = round_loop(tokenizer, stream(task, mixed=mixed), args.steps, **kwargs)
            eager.setdefault(pack, speed)
            print(f"  {name:44s} {speed:8.0f} ex/s  {speed / base:.2f}x{note}")


if __name__ == "__main__":
    main()
