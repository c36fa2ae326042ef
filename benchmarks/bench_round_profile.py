"""Where the time of one training step of a demo round goes, each part timed on its own.

The demo's self-improvement round 2 stream (D_0 copy 1-10 mixed with rounds of lengths 11 and 12,
newest at 50%), the `cpu` preset, batch 128, fp32: iterating the mix, collating (padded and packed),
forward, backward, gradient clipping and the AdamW step (for-loop and fused), per step, in ms.

    .venv/bin/python benchmarks/bench_round_profile.py [--steps 60]
"""

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import BATCH, cpu_model_name, stream  # noqa: E402

from si_hf.collator import PromptCompletionCollator  # noqa: E402
from si_hf.modeling import build_model  # noqa: E402
from si_hf.tasks import get_task  # noqa: E402
from si_hf.tokenization import get_tokenizer  # noqa: E402


def per_step(fn, steps):
    t0 = time.perf_counter()
    out = fn()
    return out, 1000 * (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    steps, tokenizer, task = args.steps, get_tokenizer("char"), get_task("copy")
    print(f"CPU: {cpu_model_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads, fp32")
    data = stream(task, mixed=True)
    rows, t_data = per_step(lambda: [r for _, r in zip(range(steps * BATCH), data)], steps)
    print(f"iterate the round mix        {t_data:7.1f} ms/step")
    for name, pack in (("padded", None), ("packed 64", 64)):
        collate = PromptCompletionCollator(tokenizer, pack_length=pack)
        batches, t_col = per_step(
            lambda c=collate: [c(rows[i * BATCH : (i + 1) * BATCH]) for i in range(steps)], steps
        )
        tokens = sum(b["input_ids"].numel() for b in batches) / steps
        print(f"collate, {name:10s}          {t_col:7.1f} ms/step ({tokens:.0f} tokens per batch)")
        for fused in (False, True):
            model = build_model(SimpleNamespace(preset="cpu"), tokenizer, seed=0).train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused)
            parts = dict.fromkeys(("forward", "backward", "clip", "optimizer"), 0.0)
            for batch in batches:
                t0 = time.perf_counter()
                loss = model(**batch, use_cache=False).loss
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
            print(f"  {name:10s} AdamW {'fused' if fused else 'loop '}: {cells}  (ms/step)")


if __name__ == "__main__":
    main()
