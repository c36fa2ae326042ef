"""DeepSpeed ZeRO-2 and ZeRO-3 round loops launched for real: `accelerate launch` with the repo's
accelerate configs, 2 CPU processes (gloo), tiny models, rounds 0 and 1, each compared with a DDP run
of the same recipe (`accelerate_configs/ddp.yaml`, 2 processes).

CI runs the ZeRO-2 from-scratch test; the others carry the `deepspeed` marker (skipped by default):

    .venv/bin/python -m pytest -m deepspeed tests/test_deepspeed.py

The first DeepSpeed run on a CPU compiles one small op (`deepspeed_shm_comm`, about 80 s), cached
under TORCH_EXTENSIONS_DIR (default ~/.cache/torch_extensions), so later runs start in seconds.

What may differ from DDP and why (README, "Multi-process runs"): ZeRO-2 computes the same gradients
and AdamW steps as DDP, but clips with a gradient norm summed in another order; ZeRO-3 also sums
some gradients in another order (its autograd functions around every submodule). Hence the
from-scratch runs switch clipping off (`max_grad_norm: 0`) so that ZeRO-2 must match DDP bit for bit;
ZeRO-3 and the LoRA runs (clipping on) compare weights with a tolerance, labels and evaluation exactly.
"""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_rounds import check_round, round_dataset, write_config

from si_hf.labeling import label
from si_hf.modeling import load_checkpoint
from si_hf.tasks import get_task
from si_hf.tokenization import get_tokenizer

REPO = Path(__file__).resolve().parents[1]
# 33 prompts: the 2 processes label 17 and 16 of them, 2 batches against 1 (label_batch_size 16), so a
# process that waited on the other's decoding steps (generate's synced_gpus under ZeRO-3) would hang.
# filters: none keeps every label, so all of them are compared.
COPY = {"task": "copy", "d0": "4", "filters": ["none"], "num_rounds": 1, "examples_per_round": 33}
# Clipping off: with it, DeepSpeed's gradient norm (summed shard by shard) and torch's differ in the
# last bit, and so does every clipped step (README, "Multi-process runs").
FROM_SCRATCH = {**COPY, "max_grad_norm": 0}
TIMINGS = {"train_seconds", "label_seconds", "eval_seconds", "label_examples_per_second"}
# Published weights of a ZeRO-3 run (and of any run with clipping on) against DDP's: they differ by
# float rounding only. Measured after the 26 optimizer steps of these runs: at most 1.6e-7 (ZeRO-3
# from scratch) and 2.2e-8 (LoRA); 4.3e-7 for ZeRO-2 from scratch with clipping on. A wrong gather (a
# shard, the weights before training, the bf16 copies) is off by 1e-4 or more.
WEIGHT_ATOL = 2e-6


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def launch_command(accelerate_config: str, cfg: Path) -> list[str]:
    """`accelerate launch --config_file accelerate_configs/<accelerate_config> --num_processes 2
    recipes/run_round.py --config <cfg>`, as the README runs it."""
    return [
        *(sys.executable, "-m", "accelerate.commands.launch"),
        *("--config_file", str(REPO / "accelerate_configs" / accelerate_config)),
        *("--num_processes", "2", "--main_process_port", free_port()),
        *(str(REPO / "recipes/run_round.py"), "--config", str(cfg)),
    ]


def launch(accelerate_config: str, cfg: Path, rounds=(0, 1)) -> str:
    """Runs `launch_command` to its end, which must publish `rounds`; returns its stdout."""
    cmd = launch_command(accelerate_config, cfg)
    # the first DeepSpeed run compiles its CPU op (~80 s); a run takes ~20 s after that
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr[-5000:]}"
    # only the main process publishes and reports, once per round
    for r in rounds:
        assert proc.stdout.count(f"round {r} member 0:") == 1, proc.stdout[-3000:]
    return proc.stdout


def run(tmp_path: Path, accelerate_config: str, **config) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = write_config(tmp_path, **config)
    launch(accelerate_config, cfg)
    return tmp_path / "run"


def weights(out: Path, r: int) -> dict[str, torch.Tensor]:
    return load_file(str(out / f"rounds/round-{r:03d}/member-0/model/model.safetensors"))


def metrics(out: Path, r: int) -> dict:
    path = out / f"rounds/round-{r:03d}/member-0/metrics.json"
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in TIMINGS}


def assert_same_labels_and_evaluation(out: Path, ref: Path, *, differ=()) -> None:
    """Round 1's labels (every prompt: filter none) and both rounds' metrics equal the reference's."""
    assert round_dataset(out, 1).to_dict() == round_dataset(ref, 1).to_dict()
    for r in (0, 1):
        mine, theirs = metrics(out, r), metrics(ref, r)
        assert {k: v for k, v in mine.items() if k not in differ} == {
            k: v for k, v in theirs.items() if k not in differ
        }


def assert_labels_of_one_process(out: Path) -> None:
    """Round 1's labels, made by 2 processes each labelling its shard, equal those the published
    round-0 model gives in this one process (the same batch size, so only the sharding differs)."""
    task, tokenizer = get_task("copy"), get_tokenizer("char")
    ds = round_dataset(out, 1)
    model = load_checkpoint(str(out / "rounds/round-000/member-0/model"))
    preds = label(model, tokenizer, task, ds["prompt"], batch_size=16, progress=False)
    assert len(preds) == COPY["examples_per_round"]
    assert [p.text for p in preds] == ds["completion"]
    assert [p.finished for p in preds] == ds["finished"]


@pytest.fixture(scope="module")
def ddp_from_scratch(tmp_path_factory) -> Path:
    """The DDP reference: rounds 0 and 1 from scratch, 2 processes, clipping off."""
    return run(tmp_path_factory.mktemp("ddp"), "ddp.yaml", **FROM_SCRATCH)


def test_zero2_from_scratch_equals_ddp_bit_for_bit(ddp_from_scratch, tmp_path):
    """ZeRO-2 (gradients and AdamW states sharded over 2 processes) publishes what DDP publishes: the
    same weights bit for bit, labels, kept counts and evaluation, once per round."""
    out = run(tmp_path, "zero2.yaml", **FROM_SCRATCH)
    for r in (0, 1):
        mine, ddp = weights(out, r), weights(ddp_from_scratch, r)
        assert mine.keys() == ddp.keys()
        assert all(torch.equal(mine[k], ddp[k]) for k in mine), r
    assert_same_labels_and_evaluation(out, ddp_from_scratch)
    assert_labels_of_one_process(out)
    check_round(out, get_task("copy"), 1, filters="none")
    # the training really moved the weights: the comparison above is not between two untrained models
    assert not torch.equal(weights(out, 0)["lm_head.weight"], weights(out, 1)["lm_head.weight"])


@pytest.mark.deepspeed
def test_zero3_from_scratch_publishes_whole_weights_and_labels_as_one_process(ddp_from_scratch, tmp_path):
    """ZeRO-3 shards the weights while a round trains; the published round holds them whole (it loads
    with from_pretrained like any other round), every process labels its shard with the whole model,
    and labels, kept counts and evaluation equal DDP's, weights to float rounding."""
    from transformers import AutoModelForCausalLM

    out = run(tmp_path, "zero3.yaml", **FROM_SCRATCH)
    for r in (0, 1):
        model = AutoModelForCausalLM.from_pretrained(out / f"rounds/round-{r:03d}/member-0/model")
        loaded, ddp = model.state_dict(), weights(ddp_from_scratch, r)
        assert loaded.keys() == ddp.keys()
        for k in ddp:
            assert loaded[k].shape == ddp[k].shape, k  # gathered, not a 1/2 shard
            torch.testing.assert_close(loaded[k], ddp[k], rtol=0, atol=WEIGHT_ATOL, msg=k)
    assert_labels_of_one_process(out)
    assert_same_labels_and_evaluation(out, ddp_from_scratch, differ={"train_loss"})
    assert metrics(out, 0)["train_loss"] == pytest.approx(
        metrics(ddp_from_scratch, 0)["train_loss"], rel=1e-6
    )


@pytest.mark.deepspeed
@pytest.mark.parametrize("accelerate_config", ["zero2.yaml", "zero3.yaml"])
def test_bf16_publishes_the_fp32_master_weights(tmp_path, accelerate_config):
    """precision: bf16 (what a GPU runs). DeepSpeed trains bf16 copies of the weights and keeps fp32
    masters in the optimizer; the round publishes, labels and evaluates with the fp32 masters, as DDP
    (fp32 weights, bf16 autocast) does, not with the bf16 copies."""
    out = run(tmp_path, accelerate_config, **COPY, precision="bf16")
    for r in (0, 1):
        w = weights(out, r)
        assert {t.dtype for t in w.values()} == {torch.float32}
        # a weight rounded to bf16 comes back unchanged from a bf16 round trip; the masters do not
        inexact = sum(int((t != t.bfloat16().float()).sum()) for t in w.values())
        assert inexact > 0.9 * sum(t.numel() for t in w.values())
    assert_labels_of_one_process(out)


def build_pretrained_llama(path: Path) -> Path:
    """A (locally built) pretrained Llama, as in test_rounds.py's LoRA test."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def lora_config(base: Path) -> dict:
    # clipping on (max_grad_norm 1.0, the recipes' value): weights are compared to a tolerance
    return {
        **COPY,
        "model_name_or_path": str(base),
        "use_peft": True,
        "lora_r": 2,
        "lora_alpha": 4,
        "tokenizer_name": "char",
    }


@pytest.fixture(scope="module")
def ddp_lora(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp_lora")
    base = build_pretrained_llama(root / "pretrained")
    return base, run(root / "ddp", "ddp.yaml", **lora_config(base))


@pytest.mark.deepspeed
@pytest.mark.parametrize("accelerate_config", ["zero2.yaml", "zero3.yaml"])
def test_lora_rounds_equal_ddp(ddp_lora, tmp_path, accelerate_config):
    """LoRA on a pretrained Llama under ZeRO-2 / ZeRO-3: each round publishes the merged model (plain
    Llama weights, the change low-rank), its labels and evaluation equal DDP's, weights to float
    rounding (clipping is on), and labels equal a one-process labelling of the published round 0."""
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    base, ddp = ddp_lora
    out = run(tmp_path, accelerate_config, **lora_config(base))
    for r in (0, 1):
        mine, theirs = weights(out, r), weights(ddp, r)
        assert mine.keys() == theirs.keys() and not any("lora" in k for k in mine)
        for k in mine:
            torch.testing.assert_close(mine[k], theirs[k], rtol=0, atol=WEIGHT_ATOL, msg=k)
    key = "model.layers.0.self_attn.q_proj.weight"
    delta = weights(out, 1)[key] - weights(out, 0)[key]
    assert 0 < torch.linalg.matrix_rank(delta, atol=1e-6).item() <= 2  # LoRA rank 2, merged
    model = AutoModelForCausalLM.from_pretrained(out / "rounds/round-001/member-0/model")
    assert type(model) is LlamaForCausalLM
    assert_labels_of_one_process(out)
    assert_same_labels_and_evaluation(out, ddp, differ={"train_loss"})


def launch_and_kill_when(accelerate_config: str, cfg: Path, marker_glob: str, timeout: float = 600) -> None:
    """Start `launch`'s command and SIGKILL the launcher and both workers (a crash: nothing runs on, no
    cleanup) as soon as `marker_glob` exists in the run's output directory. torch's launcher starts the
    workers in sessions of their own, so they are killed one by one."""
    import psutil

    cmd = launch_command(accelerate_config, cfg)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    out, deadline = cfg.parent / "run", time.time() + timeout
    try:
        while not list(out.glob(marker_glob)):
            assert proc.poll() is None, "the run ended before the crash point"
            assert time.time() < deadline, "crash point never reached"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            workers = psutil.Process(proc.pid).children(recursive=True)
            for p in (psutil.Process(proc.pid), *workers):
                p.kill()
            psutil.wait_procs(workers, timeout=60)
        proc.wait()


@pytest.mark.deepspeed
def test_zero3_resumes_mid_round_from_its_deepspeed_checkpoint(tmp_path):
    """save_steps under ZeRO-3: the in-round checkpoints are DeepSpeed's (each process's shards of the
    weights and AdamW states) plus the gathered weights (zero3_save_16bit_model). A run killed in the
    middle of round 1 once one exists resumes from it and publishes what an uninterrupted ZeRO-3 run
    publishes: the same weights bit for bit, labels and metrics but for train_loss (the mean over the
    steps run after the resume) and the timings."""
    resume = {**FROM_SCRATCH, "round_max_steps": 40, "round_decay_steps": 10, "save_steps": 10}
    ref = run(tmp_path / "a", "zero3.yaml", **resume)
    (tmp_path / "b").mkdir()
    cfg = write_config(tmp_path / "b", **resume)
    ckpt = "work/round-001/member-0/trainer/checkpoint-*/trainer_state.json"
    launch_and_kill_when("zero3.yaml", cfg, ckpt)
    out = tmp_path / "b" / "run"
    [state] = list(out.glob(ckpt))
    saved = load_file(str(state.parent / "model.safetensors"))
    assert {k: t.shape for k, t in saved.items()} == {k: t.shape for k, t in weights(ref, 0).items()}
    assert not (out / "rounds" / "round-001").exists()
    launch("zero3.yaml", cfg, rounds=(1,))
    for r in (0, 1):
        assert all(torch.equal(a, weights(out, r)[k]) for k, a in weights(ref, r).items()), r
    assert metrics(ref, 1)["train_resumed_from_step"] == 0
    assert metrics(out, 1)["train_resumed_from_step"] in (10, 20, 30)
    assert_same_labels_and_evaluation(out, ref, differ={"train_loss", "train_resumed_from_step"})
