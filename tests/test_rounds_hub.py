"""The round loop publishing to a Hub (the offline server of si_hf.testing) and resuming from it.

The clients read HF_ENDPOINT at import time, so runs and loads happen in subprocesses."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_rounds import TINY, check_round, round_dataset

from si_hf.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_rounds_token_5f3a9c"


@pytest.fixture
def hub_env(tmp_path, offline_hub):
    return offline_hub.env(tmp_path / "hf_home", TOKEN), offline_hub.server


def run(env, args, cwd=REPO) -> str:
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert TOKEN not in proc.stdout + proc.stderr
    return proc.stdout


def run_rounds(env, config: Path, **flags) -> None:
    args = [f"--{k}={v}" for k, v in flags.items()]
    run(env, [sys.executable, "recipes/run_round.py", "--config", str(config), *args])


def client(env, code: str, cwd: Path):
    """Run `code` in a fresh interpreter; it prints one JSON line last."""
    return json.loads(
        run(env, [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd).strip().splitlines()[-1]
    )


def test_rounds_publish_to_hub_and_resume_elsewhere(tmp_path, hub_env):
    env, server = hub_env
    task = get_task("copy")
    cfg = {
        **TINY,
        "task": "copy",
        "d0": "4",
        "filters": ["length"],
        "output_dir": str(tmp_path / "a"),
        "hub_dataset_id": "user/copy-data",
        "hub_model_id": "user/copy-model",
    }
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(cfg))
    run_rounds(env, path, rounds="0:1")

    # a fresh process loads round 1 from the Hub with the standard libraries
    out = client(
        env,
        """
        import json
        from datasets import load_dataset
        from transformers import AutoModelForCausalLM
        ds = load_dataset("user/copy-data", revision="round-1", split="train")
        model = AutoModelForCausalLM.from_pretrained("user/copy-model", revision="round-1", trust_remote_code=True)
        print(json.dumps({"rows": ds.to_dict(), "type": type(model).__name__}))
        """,
        tmp_path,
    )
    assert out["rows"] == round_dataset(tmp_path / "a", 1).to_dict()
    assert out["type"] == "SILlamaForCausalLM"

    # someone else continues the run from the published round 1 into a new output dir and new repos
    run_rounds(
        env,
        path,
        output_dir=tmp_path / "b",
        resume_from="user/copy-model@round-1",
        num_rounds=2,
        hub_dataset_id="user/copy-data-2",
        hub_model_id="user/copy-model-2",
    )
    check_round(tmp_path / "b", task, 2, filters="length")
    assert not (tmp_path / "b" / "rounds" / "round-001").exists()  # only the new round is written
    ds2 = round_dataset(tmp_path / "b", 2)
    assert {task.difficulty_of(p) for p in ds2["prompt"]} <= {6}  # the schedule continued from round 1
    branches = client(
        env,
        """
        import json
        from huggingface_hub import list_repo_refs
        print(json.dumps(sorted(b.name for b in list_repo_refs("user/copy-model-2").branches)))
        """,
        tmp_path,
    )
    assert "round-2" in branches

    # and a third person continues the continuation: round 1's labels are found through the chain
    run_rounds(
        env,
        path,
        output_dir=tmp_path / "c",
        resume_from="user/copy-model-2@round-2",
        num_rounds=3,
        hub_dataset_id="",
        hub_model_id="",
    )
    check_round(tmp_path / "c", task, 3, filters="length")
    # a fresh output dir aimed at repos that already hold complete rounds is refused before any training
    proc = subprocess.run(
        [sys.executable, "recipes/run_round.py", "--config", str(path), f"--output_dir={tmp_path / 'd'}"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (
        proc.returncode != 0 and "user/copy-model@round-0" in proc.stderr and "already holds" in proc.stderr
    )
    assert not (tmp_path / "d" / "rounds").exists() or not any((tmp_path / "d" / "rounds").iterdir())
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert leaks == []
