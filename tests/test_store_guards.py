"""A store that defends itself (README, "What the store guarantees"): each probe below once damaged a
run or was silently accepted. Every refusal happens before any training and names what is wrong."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_rounds import REPO, _run_killed_when, round_dataset, run_dir, write_config

from si_hf.rounds import main
from si_hf.store import DamagedRoundError, HubError, StoreLockedError
from si_hf.store.lock import HOLDER, RunLock

COPY = {"task": "copy", "d0": "4", "filters": ["length"], "num_rounds": 1}


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory):
    """A copy run with rounds 0 and 1, made once; tests get their own copy of it."""
    root = tmp_path_factory.mktemp("store")
    cfg = write_config(root, **COPY)
    main(["--config", str(cfg)])
    return root


@pytest.fixture
def store(finished_store, tmp_path):
    shutil.copytree(finished_store, tmp_path, dirs_exist_ok=True)
    cfg = write_config(tmp_path, **COPY)  # same settings, paths inside this test's copy
    return cfg, run_dir(cfg)


def _continue(cfg, *flags):
    main(["--config", str(cfg), "--num_rounds", "2", *flags])


def _rounds(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "rounds").iterdir() if not p.name.startswith("."))


# ---- one run per output directory -----------------------------------------------------------------
HOLD = """
import sys, time
from si_hf.store.lock import RunLock
lock = RunLock(sys.argv[1]); lock.acquire(); print("held", flush=True); time.sleep(600)
"""


def _holder_process(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_at_once_and_a_killed_holder_frees_the_directory(tmp_path):
    holder = _holder_process(tmp_path / "run")
    try:
        with pytest.raises(StoreLockedError, match=rf"{tmp_path / 'run'} is in use.*pid {holder.pid} on"):
            RunLock(tmp_path / "run").acquire()
        # a real second launch of the recipe fails fast, before writing anything
        cfg = write_config(tmp_path, **COPY)
        t0 = time.time()
        proc = subprocess.run(
            [sys.executable, str(REPO / "recipes/run_round.py"), "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode != 0 and f"pid {holder.pid}" in proc.stderr
        assert time.time() - t0 < 120 and not (tmp_path / "run" / "rounds").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # SIGKILL leaves the holder file behind but not the lock: the next run takes over
    assert (tmp_path / "run" / HOLDER).exists()
    with RunLock(tmp_path / "run"):
        assert json.loads((tmp_path / "run" / HOLDER).read_text())["pid"] == os.getpid()
    assert not (tmp_path / "run" / HOLDER).exists()


def test_output_dir_that_cannot_be_written_fails_before_training(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    cfg = write_config(tmp_path, **COPY, output_dir=str(tmp_path / "file" / "run"))
    with pytest.raises(PermissionError, match="not writable"):
        main(["--config", str(cfg)])


# ---- damage found and named before any work ---------------------------------------------------------
def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[:50])


@pytest.mark.parametrize(
    "damage, culprit, problem",
    [
        (
            lambda r: (r / "round-000/member-0/metrics.json").write_text("{garbage"),
            "round-000/member-0/metrics.json",
            "not valid JSON",
        ),
        (
            lambda r: (r / "round-001/member-0/si_hf_round.json").write_text("[]"),
            "round-001/member-0/si_hf_round.json",
            "expected a JSON object",
        ),
        (
            lambda r: [p.unlink() for p in (r / "round-001/member-0/dataset/data").glob("*.parquet")],
            "round-001/member-0/dataset/data",
            "no parquet file",
        ),
        (
            lambda r: [_truncate(p) for p in (r / "round-001/member-0/dataset/data").glob("*.parquet")],
            "train-00000-of-00001.parquet",
            "unreadable parquet",
        ),
        (
            lambda r: (r / "round-000/member-0/model/model.safetensors").unlink(),
            "round-000/member-0/model",
            "no weights file",
        ),
    ],
)
def test_a_damaged_round_is_named_before_any_work(store, damage, culprit, problem):
    cfg, out = store
    damage(out / "rounds")
    with pytest.raises(
        DamagedRoundError, match=rf"{culprit}.*{problem}.*delete .*round-00\d and every later round"
    ):
        _continue(cfg)
    assert _rounds(out) == ["round-000", "round-001"]  # nothing trained, nothing written


def test_weights_changed_after_publishing_fail_their_checksum_on_load(store):
    cfg, out = store
    weights = out / "rounds/round-001/member-0/model/model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # the header still parses: only the checksum can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(DamagedRoundError, match="model.safetensors: changed since it was published"):
        _continue(cfg)
    assert _rounds(out) == ["round-000", "round-001"]


def test_a_gap_is_an_error_not_a_retrain(store):
    cfg, out = store
    shutil.rmtree(out / "rounds/round-000")
    with pytest.raises(ValueError, match=r"rounds \[0\] are missing.*later rounds \[1\] exist"):
        _continue(cfg)
    assert _rounds(out) == ["round-001"]


def test_stale_top_level_metrics_are_rebuilt_at_start(store):
    cfg, out = store
    (out / "metrics.json").write_text("[]")
    main(["--config", str(cfg)])  # nothing left to do, but the summary is rebuilt
    assert [m["round"] for m in json.loads((out / "metrics.json").read_text())] == [0, 1]


# ---- a continued run with another experiment is refused ---------------------------------------------
def test_continuing_with_another_task_is_refused_listing_the_changes(store):
    cfg, out = store
    with pytest.raises(ValueError, match=r"task.task: 'copy' -> 'reverse_string'.*--allow_config_change"):
        _continue(cfg, "--task", "reverse_string")
    with pytest.raises(
        ValueError, match=r"self_improve.filters: \['length'\] -> \['none'\]; training.seed: 7 -> 8"
    ):
        _continue(cfg, "--seed", "8", "--filters", "none")
    # bf16 decoding gives other labels and scores than the fp32 the rounds so far were made with
    with pytest.raises(ValueError, match=r"self_improve.decode_precision: 'fp32' -> 'bf16'"):
        _continue(cfg, "--decode_precision", "bf16")
    assert _rounds(out) == ["round-000", "round-001"]
    # what may change between invocations is accepted: later rounds' steps, evaluation size
    _continue(
        cfg, "--round_max_steps", "2", "--round_decay_steps", "1", "--eval_examples_per_difficulty", "4"
    )
    assert _rounds(out) == ["round-000", "round-001", "round-002"]


# ---- staged rounds that kept nothing reload ---------------------------------------------------------
def test_voting_run_killed_after_staging_an_empty_round_finishes(tmp_path):
    cfg = write_config(
        tmp_path,
        task="copy",
        d0="4",
        filters=["majority_vote"],
        num_members=3,
        vote_threshold=1.0,
        max_steps=2,
        lr_scheduler_kwargs={"num_decay_steps": 0},  # 2 warmup steps: a near-random model
        num_rounds=1,
    )
    _run_killed_when(cfg, "work/round-001/member-2/labels")
    main(["--config", str(cfg)])
    out = run_dir(cfg)
    assert _rounds(out) == ["round-000", "round-001"]
    kept = [len(round_dataset(out, 1, m)) for m in range(3)]
    # near-random members rarely all agree: a member whose round kept nothing was reloaded from staging
    assert 0 in kept
    assert not (out / "work").exists()


# ---- the Hub: network failures said as such, fast ---------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("flag", ["--resume_from=user/copy-model@round-1", "--hub_model_id=user/copy-model"])
def test_no_network_is_reported_as_no_network(tmp_path, flag):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    cfg = write_config(tmp_path, **COPY)
    env = dict(os.environ, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_XET="1")
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, str(REPO / "recipes/run_round.py"), "--config", str(cfg), flag],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode != 0
    assert f"HubError: cannot reach the Hub at {endpoint}" in proc.stderr, proc.stderr[-2000:]
    assert time.time() - t0 < 120 and not (tmp_path / "run" / "rounds").exists()


def test_hub_errors_translate_connection_failures():
    import httpx2

    from si_hf.store import hub_errors

    with pytest.raises(
        HubError, match=r"pushing failed for user/x@round-2: cannot reach the Hub at .*ConnectError"
    ):
        with hub_errors("pushing", "user/x", "round-2"):
            raise httpx2.ConnectError("connection refused")


# ---- everything the config can tell is checked before round 0 ---------------------------------------
@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"resume_from": ""}, "resume_from: '' names no round"),
        ({"num_rounds": -1}, "num_rounds: -1 must be an int >= 0"),
        (
            {"task": "maze_hops", "maze_num_nodes": 8, "d0": "3", "num_rounds": 5},
            "round 5 would label difficulty 8.*at most 4 rounds",
        ),
    ],
)
def test_config_errors_before_round_0(tmp_path, overrides, match):
    cfg = write_config(tmp_path, **{**COPY, **overrides})
    with pytest.raises(ValueError, match=match):
        main(["--config", str(cfg)])
    assert not (tmp_path / "run" / "rounds").exists()
