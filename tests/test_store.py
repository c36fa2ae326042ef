import json
import os
import subprocess
import sys
import textwrap

import datasets
import pytest
import torch
from huggingface_hub import DatasetCard
from transformers import AutoModelForCausalLM, AutoTokenizer

from si_hf.modeling import SILlamaForCausalLM, load_checkpoint
from si_hf.modeling.presets import tiny_config
from si_hf.publishing.pages import RunPages
from si_hf.store import COLUMNS, open_store, resolve_resume

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer(char):
    return char


def make_model(tokenizer, seed):
    torch.manual_seed(seed)
    return SILlamaForCausalLM(tiny_config(len(tokenizer)))


def make_rows(round, n=5):
    return datasets.Dataset.from_dict(
        {
            "prompt": [f"{i}{round}+{i}=" for i in range(n)],
            "completion": [str(2 * i) for i in range(n)],
            "difficulty": [str(round + 1)] * n,
            "round": [round] * n,
            "generated_by": [f"round-{round - 1}/member-0"] * n,
            "filter": ["length"] * n,
            "votes": [1] * n,
            "oracle_correct": [i % 2 == 0 for i in range(n)],
        }
    )


def publish(store, tokenizer, round, model=None, **kw):
    model = model if model is not None else make_model(tokenizer, round)
    metrics = {"accuracy": {"9": 0.5 + round / 10, "10": round / 10}, "n_eval": 100}
    info = {"task": "copy", "filter": "length", "n_generated": 7, "n_kept": 5, "data_accuracy": 0.8}
    dataset = make_rows(round) if round > 0 else None
    store.publish_round(
        round, 0, dataset=dataset, model=model, tokenizer=tokenizer, metrics=metrics, info=info, **kw
    )
    return model, dataset, metrics


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_publish_rounds_and_load_back_with_standard_libraries(tmp_path, tokenizer):
    store = open_store(tmp_path / "run", pages=RunPages())
    published = {r: publish(store, tokenizer, r) for r in range(3)}
    assert store.completed_rounds() == [0, 1, 2]
    assert store.completed_rounds(member=1) == []
    for r in (1, 2):
        model, dataset, metrics = published[r]
        path = os.path.dirname(store.model_path(r))
        loaded = datasets.load_dataset(
            os.path.join(path, "dataset"), split="train", cache_dir=str(tmp_path / "c")
        )
        assert loaded.to_list() == dataset.to_list()
        assert store.load_dataset(r).to_list() == dataset.to_list()
        assert_same_weights(model, AutoModelForCausalLM.from_pretrained(store.model_path(r)))
        assert store.metrics(r) == metrics
        assert json.load(open(os.path.join(store.model_path(r), "metrics.json"))) == metrics
        card = DatasetCard.load(os.path.join(path, "dataset", "README.md"))
        assert "copy" in card.data.tags and f"round {r}" in card.text
    model_dir = store.model_path(2)
    config = json.load(open(os.path.join(model_dir, "config.json")))
    # a native SmolLM3 checkpoint: every layer NoPE, no remote code
    assert config["model_type"] == "smollm3" and config["architectures"] == ["SmolLM3ForCausalLM"]
    assert config["no_rope_layers"] == [0, 0] and "auto_map" not in config
    assert not [f for f in os.listdir(model_dir) if f.endswith(".py")]
    assert type(AutoModelForCausalLM.from_pretrained(model_dir)).__name__ == "SmolLM3ForCausalLM"
    # si_hf itself reloads it as the class it trains
    assert type(load_checkpoint(store.model_path(2))) is SILlamaForCausalLM
    assert_same_weights(published[2][0], load_checkpoint(store.model_path(2), device="cpu"))
    assert os.path.exists(os.path.join(model_dir, "generation_config.json"))
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok("12+3=")["input_ids"] == tokenizer("12+3=")["input_ids"]
    card = open(os.path.join(model_dir, "README.md")).read()
    assert "| 9 | 0.7000 |" in card and "| 10 | 0.2000 |" in card
    with pytest.raises(FileNotFoundError, match="round 0 member 0 has no self-labelled dataset"):
        store.load_dataset(0)
    with pytest.raises(FileNotFoundError, match=r"have rounds \[0, 1, 2\]"):
        store.model_path(5)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["README.md", "heatmap.png", "rounds"]


def test_a_store_without_pages_writes_the_data_only(tmp_path, tokenizer):
    """Storing and publishing apart: the cards, the heatmap and the index come from the pages a store is
    given; without them a round holds its data, checkpoint, metrics and marker, and nothing else."""
    store = open_store(tmp_path / "run")
    publish(store, tokenizer, 0)
    publish(store, tokenizer, 1)
    round_1 = tmp_path / "run" / "rounds" / "round-001" / "member-0"
    files = sorted(p.relative_to(round_1).as_posix() for p in round_1.rglob("*") if p.is_file())
    assert "dataset/README.md" not in files and "model/README.md" not in files
    assert "model/heatmap.png" not in files and "si_hf_round.json" in files and "metrics.json" in files
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["rounds"]
    assert store.load_dataset(1).to_list() == make_rows(1).to_list()


def test_rounds_are_immutable_unless_overwrite(tmp_path, tokenizer):
    store = open_store(tmp_path)
    first, _, _ = publish(store, tokenizer, 1)
    with pytest.raises(FileExistsError, match="round 1 member 0 already exists"):
        publish(store, tokenizer, 1, model=make_model(tokenizer, 99))
    assert_same_weights(first, AutoModelForCausalLM.from_pretrained(store.model_path(1)))
    second, _, _ = publish(store, tokenizer, 1, model=make_model(tokenizer, 99), overwrite=True)
    assert_same_weights(second, AutoModelForCausalLM.from_pretrained(store.model_path(1)))
    assert not [p for p in os.listdir(tmp_path / "rounds" / "round-001") if p.startswith(".")]


def test_bad_input_raises_before_writing(tmp_path, tokenizer):
    store = open_store(tmp_path)
    model = make_model(tokenizer, 0)
    kw = dict(model=model, tokenizer=tokenizer, metrics={"accuracy": {}}, info={})
    with pytest.raises(ValueError, match=r"lacks columns \['votes'\]"):
        store.publish_round(1, 0, dataset=make_rows(1).remove_columns("votes"), **kw)
    with pytest.raises(ValueError, match="round 2 needs its self-labelled dataset"):
        store.publish_round(2, 0, dataset=None, **kw)
    with pytest.raises(ValueError, match="round must be a non-negative int, got -1"):
        store.publish_round(-1, 0, dataset=None, **kw)
    with pytest.raises(TypeError):
        store.publish_round(0, 0, dataset=None, **{**kw, "metrics": {"accuracy": {}, "bad": object()}})
    assert store.completed_rounds() == [] and not list((tmp_path / "rounds").glob("round-*/*"))


def exploding_tokenizer():
    """The char tokenizer, failing to save: the round's model files are already written by then."""
    from si_hf.tokenization import get_tokenizer

    tok = get_tokenizer("char")

    def save_pretrained(*args, **kwargs):
        raise OSError("disk full")

    tok.save_pretrained = save_pretrained
    return tok


def test_failed_write_leaves_previous_round_and_no_partial_round(tmp_path, tokenizer):
    store = open_store(tmp_path)
    model0, _, _ = publish(store, tokenizer, 0)
    with pytest.raises(OSError, match="disk full"):
        publish(store, exploding_tokenizer(), 1)
    assert store.completed_rounds() == [0]
    assert not list((tmp_path / "rounds").glob("round-*/.tmp-*"))
    assert_same_weights(model0, AutoModelForCausalLM.from_pretrained(store.model_path(0)))


def test_killed_process_mid_write_is_invisible_and_cleaned_on_reopen(tmp_path, tokenizer):
    store = open_store(tmp_path)
    model0, _, _ = publish(store, tokenizer, 0)
    # A real crash (no cleanup code runs): the process dies while the checkpoint is being written
    # (weights and config written, the tokenizer file half).
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_store import make_model, open_store, make_rows
        from si_hf.tokenization import get_tokenizer

        def dies(path, *a, **k):
            open(os.path.join(path, "tokenizer.json"), "w").write("{{")
            os._exit(9)

        tok = get_tokenizer("char")
        model = make_model(tok, 1)
        tok.save_pretrained = dies
        open_store({str(tmp_path)!r}).publish_round(1, 0, dataset=make_rows(1), model=model,
                                                     tokenizer=tok, metrics={{"accuracy": {{}}}}, info={{}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert len(list((tmp_path / "rounds").glob("round-001/.tmp-member-0-*"))) == 1  # the crash left debris
    assert store.completed_rounds() == [0]
    reopened = open_store(tmp_path)
    assert list((tmp_path / "rounds").glob("round-*/.tmp-*"))  # opening touches nothing ...
    with reopened.local.lock():  # ... the run that holds the directory cleans up
        reopened.local.recover()
    assert not list((tmp_path / "rounds").glob("round-*/.tmp-*"))
    assert reopened.completed_rounds() == [0]
    assert_same_weights(model0, AutoModelForCausalLM.from_pretrained(reopened.model_path(0)))
    publish(reopened, tokenizer, 1)  # the crashed round can be written again
    assert reopened.completed_rounds() == [0, 1]


def test_peft_model_is_saved_merged_and_left_untouched(tmp_path, tokenizer):
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        make_model(tokenizer, 0),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    ids = torch.tensor([tokenizer("12+34=")["input_ids"]])
    with torch.no_grad():
        expected = peft_model(ids).logits
    store = open_store(tmp_path)
    publish(store, tokenizer, 0, model=peft_model)
    assert not os.path.exists(os.path.join(store.model_path(0), "adapter_config.json"))
    with torch.no_grad():
        loaded = AutoModelForCausalLM.from_pretrained(store.model_path(0))(ids).logits
        again = peft_model(ids).logits
    torch.testing.assert_close(loaded, expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(again, expected)  # the live peft model still has its adapters


def test_resolve_resume_from_local_round(tmp_path, tokenizer):
    store = open_store(tmp_path)
    rows = {r: publish(store, tokenizer, r)[1] for r in range(3)}
    for spec in (os.path.dirname(store.model_path(2)), store.model_path(2)):
        src = resolve_resume(spec, cache_dir=tmp_path / "cache")
        assert (src.round, src.member, src.model_path) == (2, 0, store.model_path(2))
        assert sorted(src.datasets) == [1, 2]
        assert all(src.datasets[r].to_list() == rows[r].to_list() for r in (1, 2))
        assert set(src.datasets[1].column_names) == set(COLUMNS)
    with pytest.raises(ValueError, match="'user/name@round-3'"):
        resolve_resume("not a spec", cache_dir=tmp_path)


def test_overwrite_interrupted_between_renames_restores_the_old_round(tmp_path, tokenizer):
    """An overwrite moves the old round to .old-*, then the new one in; dying in between must not lose it."""
    store = open_store(tmp_path / "run")
    publish(store, tokenizer, 0)
    final = store.local.path(0)
    before = json.loads((final / "metrics.json").read_text())
    os.rename(final, final.parent / ".old-member-0-deadbeef")  # the state right after the first rename
    assert store.completed_rounds() == []
    reopened = open_store(tmp_path / "run")
    with reopened.local.lock():
        reopened.local.recover()
    assert reopened.completed_rounds() == [0]
    assert json.loads((final / "metrics.json").read_text()) == before
    assert not list(final.parent.glob(".old-*"))


def test_staged_labels_reload_even_when_a_round_kept_none(tmp_path):
    """A voting round whose member kept no label must reload after a crash, like any other."""
    from si_hf.schema import ROUND_COLUMNS, empty_round
    from si_hf.store import LocalStore

    local = LocalStore(tmp_path)
    assert local.staged_labels(1, 2) is None
    local.stage_labels(1, 2, empty_round(), {"n_kept": 0, "settings": {"a": 1}})
    ds, info = local.staged_labels(1, 2)
    assert len(ds) == 0 and tuple(ds.column_names) == ROUND_COLUMNS and info["n_kept"] == 0
    rows = make_rows(1)
    local.stage_labels(1, 2, rows, {"n_kept": len(rows)})  # restaging replaces what was there
    ds, info = local.staged_labels(1, 2)
    assert ds["prompt"] == rows["prompt"] and info == {"n_kept": len(rows)}
    local.clear_work(1, 2)
    assert local.staged_labels(1, 2) is None and not (tmp_path / "work").exists()


def test_a_round_loads_quietly_where_si_hf_is_not_installed(tmp_path, tokenizer):
    """A published round's model/ loads with plain transformers' Auto classes and says nothing: no
    trust_remote_code, no remote-code prompt (stdin is closed, so one would fail the load), no warning,
    and the same token ids, logits and greedy generation as the model saved."""
    from si_hf.store import save_checkpoint

    model, path = make_model(tokenizer, seed=5).eval(), tmp_path / "model"
    save_checkpoint(model, tokenizer, path)
    assert not list(path.glob("*.py")) and "auto_map" not in json.loads((path / "config.json").read_text())
    prompts = ["12+34=", "7+8="]
    script = textwrap.dedent(f"""
        import json, sys, warnings
        sys.modules["si_hf"] = None  # the package is installed editable: make any import of it fail
        warnings.simplefilter("always")  # every Python warning reaches stderr
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
        transformers.utils.logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained({str(path)!r})
        model = AutoModelForCausalLM.from_pretrained({str(path)!r}).eval()
        ids = tokenizer({prompts!r}, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**ids).logits
            greedy = model.generate(ids["input_ids"][:1], max_new_tokens=6, do_sample=False)
        print(json.dumps({{"ids": ids["input_ids"].tolist(), "logits": logits.tolist(), "greedy": greedy.tolist(),
                          "classes": [type(tokenizer).__name__, type(model).__name__]}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["classes"] == ["TokenizersBackend", "SmolLM3ForCausalLM"]
    ids = tokenizer(prompts, padding=True, return_tensors="pt")
    assert out["ids"] == ids["input_ids"].tolist()
    with torch.no_grad():
        assert torch.equal(torch.tensor(out["logits"]), model(**ids).logits)
        greedy = model.generate(ids["input_ids"][:1], max_new_tokens=6, do_sample=False)
    assert out["greedy"] == greedy.tolist()
