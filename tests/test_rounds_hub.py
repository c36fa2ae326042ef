"""The round loop publishing to a Hub (the offline server of si_hf.testing) and resuming from it.

The clients read HF_ENDPOINT at import time, so runs and loads happen in subprocesses."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_figures import assert_real_png
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


def check_cards_and_index(env, tmp_path, server) -> None:
    """Round branches hold Hub-named cards with their metadata; `main` of each repo holds the index."""
    out = client(
        env,
        """
        import json
        from pathlib import Path
        from huggingface_hub import DatasetCard, HfApi, ModelCard, hf_hub_download

        def readme(repo, kind, rev):
            return hf_hub_download(repo, "README.md", repo_type=kind, revision=rev)

        api, repos = HfApi(), {"model": "user/copy-model", "dataset": "user/copy-data"}
        m1 = ModelCard.load(readme(repos["model"], "model", "round-1"))
        d1 = DatasetCard.load(readme(repos["dataset"], "dataset", "round-1"))
        print(json.dumps({
            "model": [m1.data.license, m1.data.base_model, m1.data.datasets, "copy" in m1.data.tags,
                      {e.dataset_config: e.metric_value for e in m1.data.eval_results}, m1.text],
            "base0": ModelCard.load(readme(repos["model"], "model", "round-0")).data.base_model,
            "dataset": [d1.data.license, d1.data.size_categories, "configs" in d1.data, d1.text],
            "files": {kind: {rev: api.list_repo_files(repo, repo_type=kind, revision=rev) for rev in ("main", "round-1")}
                      for kind, repo in repos.items()},
            "main": {kind: Path(readme(repo, kind, "main")).read_text() for kind, repo in repos.items()},
            "png": hf_hub_download(repos["model"], "heatmap.png", revision="main"),
        }))
        """,
        tmp_path,
    )
    metrics = json.loads((tmp_path / "a" / "rounds/round-001/member-0/metrics.json").read_text())
    license, base, datasets, tagged, evals, text = out["model"]
    assert [license, base, datasets, tagged] == [
        "apache-2.0",
        "user/copy-model@round-0",
        ["user/copy-data"],
        True,
    ]
    assert evals == metrics["accuracy"] and out["base0"] is None  # round 0 is trained from scratch
    assert "](heatmap.png)" in text and 'from_pretrained("user/copy-model", revision="round-1"' in text
    license, size, has_configs, text = out["dataset"]
    assert [license, size, has_configs] == ["apache-2.0", ["n<1K"], True]  # push_to_hub's configs kept
    assert "| generating model | user/copy-model@round-0 |" in text
    files = out["files"]
    assert (
        sorted(files["model"]["main"])
        == sorted(files["dataset"]["main"])
        == [".gitattributes", "README.md", "heatmap.png"]
    )
    assert {"heatmap.png", "README.md", "model.safetensors"} <= set(files["model"]["round-1"])
    assert "heatmap.png" not in files["dataset"]["round-1"]  # round branches do not inherit main's index
    for kind, repo in (("model", "user/copy-model"), ("dataset", "datasets/user/copy-data")):
        index = out["main"][kind]
        assert f"{server.url}/{repo}/tree/round-1" in index
        assert ("/tree/round-0" in index) == (kind == "model")  # round 0 has no dataset
        assert "](heatmap.png)" in index and "| round | 1* | 2* | 3* | 4* | 5 | 6 |" in index
    assert_real_png(out["png"])


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
        model = AutoModelForCausalLM.from_pretrained("user/copy-model", revision="round-1")
        print(json.dumps({"rows": ds.to_dict(), "type": type(model).__name__}))
        """,
        tmp_path,
    )
    assert out["rows"] == round_dataset(tmp_path / "a", 1).to_dict()
    assert out["type"] == "SmolLM3ForCausalLM"
    check_cards_and_index(env, tmp_path, server)

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
    base = client(
        env,
        """
        import json
        from huggingface_hub import ModelCard, hf_hub_download
        card = ModelCard.load(hf_hub_download("user/copy-model-2", "README.md", revision="round-2"))
        print(json.dumps(card.data.base_model))
        """,
        tmp_path,
    )
    assert base == "user/copy-model@round-1"  # round 1 is the resumed run's
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
