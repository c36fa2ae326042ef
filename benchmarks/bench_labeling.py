"""Time `si_hf.labeling.label` against plain `model.generate` and against the teacher-forced floor.

Both decoders run greedily with the same per-prompt bound (`task.max_answer_tokens` + 1 step for EOS)
on the same prompts and model; the baseline neither sorts by length nor stops rows at their own bound.
The floor is one forward pass (no cache, no decoding loop) over the prompts with their true answers,
in the same batches: what scoring the finished sequences costs, which no decoder can beat by
much. The static-cache path (`cache_implementation="static"`) and transformers' own DynamicCache
(`"concat"`, which concatenates the cache every step) are timed too, and `label()` under bf16
autocast (`decode_precision: bf16`), with how many of its labels equal fp32's and how many of each
are right. An untrained model's labels say little about the last two: `--model` times a trained one
(a round's `model` folder) on prompts of the levels it labels.

    .venv/bin/python benchmarks/bench_labeling.py                 # 256 x 16-digit reverse addition, batch 64 and 256
    .venv/bin/python benchmarks/bench_labeling.py --mixed         # difficulties 1..16 mixed
    .venv/bin/python benchmarks/bench_labeling.py --model <out>/rounds/round-000/member-0/model \
        --task multiplication --difficulties 6x1 1x6 -n 1000 --batch-sizes 500
"""

import argparse
import random
import time
from functools import partial

import torch
from bench_training import cpu_model_name  # this folder, as `python benchmarks/...` runs it

from si_hf.labeling import label
from si_hf.modeling import SILlamaForCausalLM, get_config, load_checkpoint
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
    parser.add_argument(
        "--difficulties", nargs="+", help="levels to sample from, in turn (overrides --digits)"
    )
    parser.add_argument("--model", help="a saved model (from_pretrained) instead of an untrained one")
    parser.add_argument(
        "--maze_num_nodes", type=int, help="maze_hops: nodes per maze (the task's default if not given)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    task = (
        get_task(args.task, num_nodes=args.maze_num_nodes)
        if args.task == "maze_hops" and args.maze_num_nodes
        else get_task(args.task)
    )
    tokenizer = get_tokenizer(task.tokenizer_name)
    if args.model:
        model = load_checkpoint(args.model).eval()
        what = args.model
    else:
        model = SILlamaForCausalLM(get_config(args.preset, len(tokenizer))).eval()
        what = f"{args.preset} preset, untrained"
    rng = random.Random(0)
    if args.difficulties:
        levels = [task.parse_difficulty(d) for d in args.difficulties]
        prompts = [task.sample(levels[i % len(levels)], rng)[0] for i in range(args.n)]
        shown = " ".join(args.difficulties)
    else:
        prompts = [
            task.sample(rng.randint(1, args.digits) if args.mixed else args.digits, rng)[0]
            for _ in range(args.n)
        ]
        shown = f"{'1..' if args.mixed else ''}{args.digits} digits"

    print(
        f"{what} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params), {args.n} {args.task} "
        f"prompts ({shown}), fp32 weights, {args.threads} threads, best of {args.repeats}, CPU: {cpu_model_name()}"
    )
    for batch_size in args.batch_sizes:
        compare(model, tokenizer, task, prompts, batch_size, args.repeats)


def compare(model, tokenizer, task, prompts, batch_size, repeats):
    n = len(prompts)
    label(model, tokenizer, task, prompts[:batch_size], batch_size=batch_size, progress=False)
    run = partial(label, model, tokenizer, task, prompts, batch_size=batch_size, progress=False)
    times, results = best_times(
        [
            run,
            lambda: baseline(model, tokenizer, task, prompts, batch_size),
            lambda: run(cache_implementation="static"),
            lambda: teacher_forced(model, tokenizer, task, prompts, batch_size),
            lambda: run(decode_dtype="bf16"),
            lambda: run(cache_implementation="concat"),
        ],
        repeats,
    )
    (t_label, t_base, t_static, t_floor, t_bf16, t_concat), (preds, texts, static, _, bf16, concat) = (
        times,
        results,
    )
    same = sum(p.text == t for p, t in zip(preds, texts))
    same_static = sum(p == s for p, s in zip(preds, static))
    print(f"batch {batch_size}:")
    print(f"  label():               {n / t_label:8.1f} examples/s ({t_label:.2f} s)")
    print(f"  generate baseline:     {n / t_base:8.1f} examples/s ({t_base:.2f} s)")
    print(f"  label(), static cache: {n / t_static:8.1f} examples/s ({t_static:.2f} s)")
    print(
        f"  label(), transformers' DynamicCache (concat): {n / t_concat:8.1f} examples/s ({t_concat:.2f} s); "
        f"label() is {t_concat / t_label:.2f}x as fast; identical labels: "
        f"{sum(p == c for p, c in zip(preds, concat))}/{n}"
    )
    print(f"  teacher-forced floor:  {n / t_floor:8.1f} examples/s ({t_floor:.2f} s)")
    print(f"  speedup label/baseline: {t_base / t_label:.2f}x; identical labels: {same}/{n}")
    print(f"  label time / floor: {t_label / t_floor:.2f}x; static cache identical labels: {same_static}/{n}")
    truth = [task.solve(p) for p in prompts]
    right = sum(p.complete and p.text == t for p, t in zip(preds, truth))
    right_bf16 = sum(p.complete and p.text == t for p, t in zip(bf16, truth))
    print(
        f"  label(), bf16 autocast: {n / t_bf16:8.1f} examples/s ({t_bf16:.2f} s), {t_label / t_bf16:.2f}x fp32's"
    )
    print(
        f"  bf16 identical labels: {sum(a == b for a, b in zip(preds, bf16))}/{n}; "
        f"right: fp32 {right}/{n}, bf16 {right_bf16}/{n}"
    )


if __name__ == "__main__":
    main()
