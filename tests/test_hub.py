"""The Hub path against si_hf.testing.hub_server with the real clients.

huggingface_hub, datasets and transformers read HF_ENDPOINT / HF_HOME at import time, so every
client runs in a fresh subprocess with its environment set; the server runs in this process."""

import json
import os
import subprocess
import sys
import textwrap

TOKEN = "hf_testtoken_0123456789abcdef"
HELPERS = f"""
import json, os, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
"""


def run_client(hub, home, code, transcripts):
    # verbose on purpose: the token must not leak into logs either
    env = hub.env(home, TOKEN, TRANSFORMERS_VERBOSITY="info")
    proc = subprocess.run(
        [sys.executable, "-c", HELPERS + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    transcripts.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_token_never_written(tmp_path, transcripts, server):
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert leaks == []
    assert not any(TOKEN in t for t in transcripts)
    assert not any(TOKEN in line for line in server.log)


def test_publish_load_refuse_overwrite_and_resume(tmp_path, offline_hub):
    server = offline_hub.server
    transcripts = []
    publish = f"""
    from test_store import make_model, publish, make_rows
    from si_hf.tokenization import get_tokenizer
    from si_hf.publishing.pages import RunPages
    from si_hf.store import HubError, open_store as store_only

    def open_store(*args, **kwargs):  # with the cards and the index page, as the round loop opens it
        return store_only(*args, pages=RunPages(), **kwargs)

    tok = get_tokenizer("char")
    hub = dict(hub_dataset_id="user/copy-data", hub_model_id="user/copy-model", hub_private=True)
    store = open_store({str(tmp_path / "run")!r}, **hub)
    for r in range(3):
        publish(store, tok, r)
    try:  # a fresh output dir must not silently replace a complete Hub round
        publish(open_store({str(tmp_path / "other")!r}, **hub), tok, 1)
        refused = None
    except HubError as e:
        refused = str(e)
    other = open_store({str(tmp_path / "other")!r}, overwrite_hub_revision=True, **hub)
    publish(other, tok, 1, model=make_model(tok, 42))
    members = open_store({str(tmp_path / "vote")!r}, hub_dataset_id="user/vote-data",
                         hub_model_id="user/vote-model", num_members=2)
    for m in range(2):
        members.publish_round(1, m, dataset=make_rows(1, n=3 + m), model=make_model(tok, 10 + m), tokenizer=tok,
                              metrics={{"accuracy": {{"3": 0.5}}}}, info={{"task": "copy"}})
    print(json.dumps({{"refused": refused, "local_other": store.completed_rounds() and other.completed_rounds()}}))
    """
    out = run_client(offline_hub, tmp_path / "hf1", publish, transcripts)
    assert (
        out["refused"]
        and "user/copy-data@round-1" in out["refused"]
        and "overwrite_hub_revision" in out["refused"]
    )
    assert out["local_other"] == [1]
    assert server.repos[("model", "user/copy-model")].private
    assert set(server.repos[("model", "user/copy-model")].branches) == {
        "main",
        "round-0",
        "round-1",
        "round-2",
    }
    assert set(server.repos[("dataset", "user/copy-data")].branches) == {"main", "round-1", "round-2"}

    # A fresh process that imports si_hf only at the end: rounds are native transformers checkpoints
    # (SmolLM3 for NoPE), loaded by the Auto classes with no trust_remote_code.
    load = f"""
    import datasets, torch
    from pathlib import Path
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def same(a, b):
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    def local(run, r, m=0, part="model"):
        return str(Path({str(tmp_path)!r}, run, "rounds", f"round-{{r:03d}}", f"member-{{m}}", part))

    def local_rows(run, r, m=0):
        return datasets.Dataset.from_parquet(str(Path(local(run, r, m, "dataset"), "data", "train-00000-of-00001.parquet"))).to_list()

    out = {{}}
    for r, run in ((0, "run"), (1, "other"), (2, "run")):
        hub = AutoModelForCausalLM.from_pretrained("user/copy-model", revision=f"round-{{r}}")
        out[f"model-{{r}}"] = same(hub, AutoModelForCausalLM.from_pretrained(local(run, r)))
        out[f"arch-{{r}}"] = type(hub).__name__
        if r:
            rows = datasets.load_dataset("user/copy-data", revision=f"round-{{r}}", split="train").to_list()
            out[f"data-{{r}}"] = rows == local_rows(run, r)
    out["overwritten-differs"] = not same(
        AutoModelForCausalLM.from_pretrained(local("run", 1)),
        AutoModelForCausalLM.from_pretrained("user/copy-model", revision="round-1"))
    tok = AutoTokenizer.from_pretrained("user/copy-model", revision="round-2")
    local_tok = AutoTokenizer.from_pretrained(local("run", 2))
    out["tokenizer"] = tok("12+3=")["input_ids"] == local_tok("12+3=")["input_ids"]
    for m in range(2):
        rows = datasets.load_dataset("user/vote-data", f"member-{{m}}", revision="round-1", split="train").to_list()
        out[f"vote-data-{{m}}"] = rows == local_rows("vote", 1, m)
        hub = AutoModelForCausalLM.from_pretrained("user/vote-model", revision="round-1", subfolder=f"member-{{m}}")
        out[f"vote-model-{{m}}"] = same(hub, AutoModelForCausalLM.from_pretrained(local("vote", 1, m)))
    from huggingface_hub import hf_hub_download
    readme = Path(hf_hub_download("user/copy-data", "README.md", repo_type="dataset", revision="round-2")).read_text()
    out["card"] = "round 2" in readme and "dataset_info" in readme and "pretty_name" in readme

    from si_hf.store import resolve_resume  # registers SI-Llama only now, after the plain loads above
    src = resolve_resume("user/copy-model@round-2", cache_dir={str(tmp_path / "resume")!r})
    out["resume"] = [src.round, sorted(src.datasets), src.datasets[1].to_list() == local_rows("other", 1),
                     src.datasets[2].to_list() == local_rows("run", 2),
                     same(AutoModelForCausalLM.from_pretrained(src.model_path), AutoModelForCausalLM.from_pretrained(local("run", 2)))]
    print(json.dumps(out))
    """
    out = run_client(offline_hub, tmp_path / "hf2", load, transcripts)
    assert out.pop("resume") == [2, [1, 2], True, True, True]
    assert out.pop("arch-0") == out.pop("arch-1") == out.pop("arch-2") == "SmolLM3ForCausalLM"
    assert out == {k: True for k in out} and len(out) == 12, out
    assert_hub_rounds_load_quietly(tmp_path, offline_hub, transcripts)
    assert server.unknown_routes == []
    assert_token_never_written(tmp_path, transcripts, server)


def assert_hub_rounds_load_quietly(tmp_path, hub, transcripts):
    """Where si_hf is not even importable, AutoTokenizer and AutoModelForCausalLM load a round from the
    Hub (repo root and member subfolder) without trust_remote_code and print nothing: no remote-code
    prompt (stdin is closed, so one would fail), no warning; the model computes what si_hf's does."""
    import torch

    from si_hf.modeling import load_checkpoint

    prompts = ["12+34=", "7+8="]
    script = f"""
    import json, sys, warnings
    sys.modules["si_hf"] = None  # the package is installed editable: make any import of it fail
    warnings.simplefilter("always")  # every Python warning reaches stderr
    import torch, transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    transformers.utils.logging.disable_progress_bar()
    out = {{}}
    for name, where in (("root", {{}}), ("member", {{"subfolder": "member-1"}})):
        repo = "user/copy-model" if name == "root" else "user/vote-model"
        tokenizer = AutoTokenizer.from_pretrained(repo, revision="round-1", **where)
        model = AutoModelForCausalLM.from_pretrained(repo, revision="round-1", **where).eval()
        ids = tokenizer({prompts!r}, padding=True, return_tensors="pt")
        with torch.no_grad():
            out[name] = {{"ids": ids["input_ids"].tolist(), "mask": ids["attention_mask"].tolist(),
                          "logits": model(**ids).logits.tolist(), "class": type(model).__name__}}
    print(json.dumps(out))
    """
    proc = subprocess.run(
        [sys.executable, "-I", "-c", textwrap.dedent(script)],
        env=hub.env(tmp_path / "hf_quiet", TOKEN),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    transcripts.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr == ""
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # round-1 of user/copy-model is the one `other` overwrote
    for name, local in (
        ("root", "other/rounds/round-001/member-0"),
        ("member", "vote/rounds/round-001/member-1"),
    ):
        assert out[name]["class"] == "SmolLM3ForCausalLM"
        ids, mask = torch.tensor(out[name]["ids"]), torch.tensor(out[name]["mask"])
        ours = load_checkpoint(str(tmp_path / local / "model")).eval()
        with torch.no_grad():
            assert torch.equal(torch.tensor(out[name]["logits"]), ours(ids, attention_mask=mask).logits)


def test_push_failing_half_way_is_completed_by_sync(tmp_path, offline_hub):
    server = offline_hub.server
    transcripts = []
    # The dataset push of round 1 succeeds, then the checkpoint commit fails: round 1 is half on the Hub.
    server.fail_next(r"^POST /api/models/user/m/commit/round-1$", times=1, status=400)
    code = f"""
    import torch
    from test_store import publish
    from si_hf.tokenization import get_tokenizer
    from huggingface_hub import HfApi
    from transformers import AutoModelForCausalLM
    from si_hf.publishing.pages import RunPages
    from si_hf.store import HubError, open_store as store_only

    def open_store(*args, **kwargs):  # with the cards and the index page, as the round loop opens it
        return store_only(*args, pages=RunPages(), **kwargs)

    tok = get_tokenizer("char")
    hub = dict(hub_dataset_id="user/d", hub_model_id="user/m")
    store = open_store({str(tmp_path / "run")!r}, **hub)
    publish(store, tok, 0)
    try:
        publish(store, tok, 1)
        error = None
    except HubError as e:
        error = str(e)
    api = HfApi()
    before = [api.file_exists("user/d", "si_hf_round.json", repo_type="dataset", revision="round-1"),
              api.file_exists("user/m", "si_hf_round.json", revision="round-1")]
    rerun = open_store({str(tmp_path / "run")!r}, **hub)
    pushed = rerun.sync()
    again = rerun.sync()
    after = api.file_exists("user/m", "si_hf_round.json", revision="round-1")
    hub_model = AutoModelForCausalLM.from_pretrained("user/m", revision="round-1")
    pairs = zip(hub_model.state_dict().values(), AutoModelForCausalLM.from_pretrained(store.model_path(1)).state_dict().values())
    print(json.dumps({{"error": error, "local": store.completed_rounds(), "before": before, "pushed": pushed,
                      "again": again, "after": after, "same": all(torch.equal(x, y) for x, y in pairs)}}))
    """
    out = run_client(offline_hub, tmp_path / "hf", code, transcripts)
    assert "user/m@round-1" in out["error"] and "HTTP 400" in out["error"]
    assert out["local"] == [0, 1]  # the local copy survives the failed push
    assert out["before"] == [True, False]
    assert out["pushed"] == [[1, 0]] and out["again"] == [] and out["after"] is True and out["same"] is True
    assert_token_never_written(tmp_path, transcripts, server)
