"""Where the time of one training step of a recipe's rounds goes, each part timed on its own.

The recipe's (default: the demo's) round 0 stream and its round 2 stream (D_0 mixed with two rounds of
labels, `bench_training.stream`), its model and batch size, fp32: iterating the mix, collating (padded
and packed at the recipe's `pack_length`, with the tokens per batch), forward, backward, gradient
clipping and the AdamW step (for-loop and fused), per step, in ms. Packing pays in proportion to the
padding it removes: the tokens per batch show how much of it a round's data leaves.

    .venv/bin/python benchmarks/bench_round_profile.py [--steps 60] [--config recipes/copy/config_cpu.yaml]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import REPO, cpu_model_name, recipe, stream  # noqa: E402

from si_hf.collator import PromptCompletionCollator  # noqa: E402
from si_hf.modeling import build_model  # noqa: E402


def per_step(fn, steps):
    t0 = time.perf_counter()
    out = fn()
    return out, 1000 * (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--config", default=str(REPO / "recipes/copy/config_cpu.yaml"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        run = recipe(args.config, out)
    steps, batch, pack = args.steps, run.train_args.per_device_train_batch_size, run.si.pack_length or 64
    print(f"CPU: {cpu_model_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads, fp32")
    print(f"recipe {Path(args.config).name}: {run.model_args.preset} preset, batch {batch}")
    for r in (0, 2):
        print(f"round {r}" + (": D_0" if r == 0 else ": D_0 + two rounds of labels"))
        data = stream(run, r)
        rows, t_data = per_step(lambda d=data: [x for _, x in zip(range(steps * batch), d)], steps)
        print(f"  iterate the round's stream    {t_data:7.1f} ms/step")
        for name, pack_length in (("padded", None), (f"packed {pack}", pack)):
            collate = PromptCompletionCollator(run.tokenizer, pack_length=pack_length)
            batches, t_col = per_step(
                lambda c=collate, x=rows: [c(x[i * batch : (i + 1) * batch]) for i in range(steps)], steps
            )
            tokens = sum(b["input_ids"].numel() for b in batches) / steps
            print(f"  collate, {name:10s}          {t_col:7.1f} ms/step ({tokens:.0f} tokens per batch)")
            for fused in (False, True):
                model = build_model(run.model_args, run.tokenizer, seed=0).train()
                optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused)
                parts = dict.fromkeys(("forward", "backward", "clip", "optimizer"), 0.0)
                for batch_ in batches:
                    t0 = time.perf_counter()
                    loss = model(**batch_, use_cache=False).loss
                    t1 = time.perf_counter()
                    loss.backward()
                    t2 = time.perf_counter()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    t3 = time.perf_counter()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    t4 = time.perf_counter()
                    for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                        parts[key] += 1000 * dt / steps
                cells = "  ".join(f"{k} {v:6.1f}" for k, v in parts.items())
                print(f"    {name:10s} AdamW {'fused' if fused else 'loop '}: {cells}  (ms/step)")


if __name__ == "__main__":
    main()
