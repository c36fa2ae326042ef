"""Time `si_hf.labeling.label` against plain `model.generate` and against the teacher-forced floor.

Both decoders run greedily with the same per-prompt bound (`task.max_answer_tokens` + 1 step for EOS)
on the same prompts and model; the baseline neither sorts by length nor stops rows at their own bound.
The floor is one forward pass (no cache, no decoding loop) over the prompts with their true answers,
in the same batches: what scoring the finished sequences costs, which no decoder can beat by
much. The static-cache path (`cache_implementation="static"`) is timed too.

    .venv/bin/python benchmarks/bench_labeling.py                 # 256 x 16-digit reverse addition, batch 64 and 256
    .venv/bin/python benchmarks/bench_labeling.py --mixed         # difficulties 1..16 mixed
"""

import argparse
import random
import time

import torch

from si_hf.labeling import label
from si_hf.modeling import SILlamaForCausalLM, get_config
from si_hf.tasks import get_task
from si_hf.tokenization import get_tokenizer


def baseline(model, tokenizer, task, prompts, batch_size):
    texts = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="left")
            out = model.generate(
                **enc,
                max_new_tokens=max(task.max_answer_tokens(p) for p in chunk) + 1,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
            new = out[:, enc["input_ids"].shape[1] :].tolist()
            for p, ids in zip(chunk, new):
                ids = ids[: task.max_answer_tokens(p) + 1]
                ids = ids[: ids.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in ids else ids[:-1]
                texts.append(tokenizer.decode(ids, skip_special_tokens=True))
    return texts


def teacher_forced(model, tokenizer, task, prompts, batch_size):
    """One forward over BOS + prompt + answer per batch: the floor of labelling (EOS, one token, left out)."""
    texts = [p + task.solve(p) for p in prompts]
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True)
            model(**enc, use_cache=False)


def best_times(fns, repeats):
    """Min time per function, runs interleaved so load from other processes hits both alike."""
    times, results = [[] for _ in fns], [None] * len(fns)
    for _ in range(repeats):
        for j, fn in enumerate(fns):
            start = time.perf_counter()
            results[j] = fn()
            times[j].append(time.perf_counter() - start)
    return [min(t) for t in times], results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="reverse_addition")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("-n", type=int, default=256)
    parser.add_argument("--digits", type=int, default=16)
    parser.add_argument("--mixed", action="store_true", help="difficulties uniform in 1..digits")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[64, 256], help="256 is label()'s default"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    task = get_task(args.task)
    tokenizer = get_tokenizer(task.tokenizer_name)
    model = SILlamaForCausalLM(get_config(args.preset, len(tokenizer))).eval()
    rng = random.Random(0)
    prompts = [
        task.sample(rng.randint(1, args.digits) if args.mixed else args.digits, rng)[0] for _ in range(args.n)
    ]

    print(
        f"{args.preset} preset ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params), {args.n} "
        f"{args.task} prompts ({'1..' if args.mixed else ''}{args.digits} digits), fp32, "
        f"{args.threads} threads, best of {args.repeats}"
    )
    for batch_size in args.batch_sizes:
        compare(model, tokenizer, task, prompts, batch_size, args.repeats)


def compare(model, tokenizer, task, prompts, batch_size, repeats):
    n = len(prompts)
    label(model, tokenizer, task, prompts[:batch_size], batch_size=batch_size, progress=False)
    (t_label, t_base, t_static, t_floor), (preds, texts, static, _) = best_times(
        [
            lambda: label(model, tokenizer, task, prompts, batch_size=batch_size, progress=False),
            lambda: baseline(model, tokenizer, task, prompts, batch_size),
            lambda: label(
                model,
                tokenizer,
                task,
                prompts,
                batch_size=batch_size,
                progress=False,
                cache_implementation="static",
            ),
            lambda: teacher_forced(model, tokenizer, task, prompts, batch_size),
        ],
        repeats,
    )
    same = sum(p.text == t for p, t in zip(preds, texts))
    same_static = sum(p == s for p, s in zip(preds, static))
    print(f"batch {batch_size}:")
    print(f"  label():               {n / t_label:8.1f} examples/s ({t_label:.2f} s)")
    print(f"  generate baseline:     {n / t_base:8.1f} examples/s ({t_base:.2f} s)")
    print(f"  label(), static cache: {n / t_static:8.1f} examples/s ({t_static:.2f} s)")
    print(f"  teacher-forced floor:  {n / t_floor:8.1f} examples/s ({t_floor:.2f} s)")
    print(f"  speedup label/baseline: {t_base / t_label:.2f}x; identical labels: {same}/{n}")
    print(f"  label time / floor: {t_label / t_floor:.2f}x; static cache identical labels: {same_static}/{n}")


if __name__ == "__main__":
    main()
