import copy
import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    SmolLM3Config,
    SmolLM3ForCausalLM,
)

import si_hf  # noqa: F401  (registers si_llama with the Auto classes)
from si_hf.modeling import (
    PRESETS,
    NoPositionEmbedding,
    SILlamaConfig,
    SILlamaForCausalLM,
    build_model,
    cpu_config,
    get_config,
    load_checkpoint,
    native_config,
    paper_config,
    si_llama_config,
    tiny_config,
    to_native,
)

torch.set_num_threads(1)

try:
    from si_hf.tokenization import get_tokenizer

    TOKENIZER = get_tokenizer("char")
except ImportError:  # tokenization is written concurrently; only its size and special ids matter here
    TOKENIZER = type(
        "Tok", (), {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "__len__": lambda s: 40}
    )()
VOCAB = len(TOKENIZER)


def tiny_model(position_encoding="nope", seed=0, **overrides):
    torch.manual_seed(seed)
    return SILlamaForCausalLM(tiny_config(VOCAB, position_encoding=position_encoding, **overrides)).eval()


def random_ids(batch, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, length), generator=g)


def expected_param_count(c) -> int:
    q, kv = c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim
    attention = c.hidden_size * q * 2 + c.hidden_size * kv * 2
    mlp = 3 * c.hidden_size * c.intermediate_size
    layer = attention + mlp + 2 * c.hidden_size  # two RMSNorm weights
    embeddings = c.vocab_size * c.hidden_size * (1 if c.tie_word_embeddings else 2)
    return embeddings + c.num_hidden_layers * layer + c.hidden_size  # final norm


# --- config and presets ---


def test_config_defaults():
    c = SILlamaConfig()
    assert c.model_type == "si_llama" and c.position_encoding == "nope"
    assert (c.pad_token_id, c.bos_token_id, c.eos_token_id) == (0, 1, 2)
    assert c.attention_dropout == 0.0 and c.tie_word_embeddings is False
    assert c.max_position_embeddings >= 4096
    assert isinstance(AutoConfig.for_model("si_llama"), SILlamaConfig)


def test_invalid_position_encoding_names_value():
    with pytest.raises(ValueError, match="alibi"):
        SILlamaConfig(position_encoding="alibi")
    with pytest.raises(ValueError, match="alibi"):
        tiny_config(VOCAB, position_encoding="alibi")


def test_config_accepts_flash_attention_2():
    c = tiny_config(VOCAB, attn_implementation="flash_attention_2")
    assert c._attn_implementation == "flash_attention_2"


def test_paper_preset_parameter_count():
    config = paper_config(VOCAB)
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (6, 384, 1536)
    assert config.num_attention_heads == config.num_key_value_heads == 6
    n = sum(p.numel() for p in SILlamaForCausalLM(config).parameters())
    assert n == expected_param_count(config)
    assert 13.5e6 < n < 14.5e6


def test_cpu_and_tiny_presets():
    cpu = cpu_config(VOCAB)
    assert (cpu.num_hidden_layers, cpu.hidden_size, cpu.num_attention_heads, cpu.intermediate_size) == (
        4,
        128,
        4,
        512,
    )
    n = sum(p.numel() for p in SILlamaForCausalLM(cpu).parameters())
    assert n == expected_param_count(cpu) and 0.95e6 < n < 1.15e6
    assert tiny_config(VOCAB, num_hidden_layers=3).num_hidden_layers == 3
    assert set(PRESETS) == {"paper", "cpu", "tiny"}


def test_unknown_preset_lists_names():
    with pytest.raises(ValueError, match="huge.*cpu.*paper.*tiny"):
        get_config("huge", VOCAB)


def test_bad_vocab_size():
    with pytest.raises(ValueError, match="vocab_size='40'"):
        tiny_config("40")


# --- NoPE ---


def test_nope_replaces_rotary_module_and_rope_keeps_it():
    assert isinstance(tiny_model("nope").model.rotary_emb, NoPositionEmbedding)
    assert not isinstance(tiny_model("rope").model.rotary_emb, NoPositionEmbedding)
    x = torch.zeros(2, 5, 8, dtype=torch.bfloat16)
    cos, sin = NoPositionEmbedding(16)(x, torch.arange(5)[None])
    assert cos.shape == sin.shape == (1, 5, 16) and cos.dtype == torch.bfloat16
    assert bool((cos == 1).all()) and bool((sin == 0).all())


@pytest.mark.parametrize("position_encoding", ["nope", "rope"])
def test_position_ids_matter_only_for_rope(position_encoding):
    model, ids = tiny_model(position_encoding), random_ids(2, 12)
    positions = torch.arange(12)[None].expand(2, -1)
    with torch.no_grad():
        base = model(ids, position_ids=positions).logits
        scaled = model(ids, position_ids=positions * 3 + 5).logits
    # A uniform shift would not distinguish them (RoPE is relative); scaling does.
    assert torch.allclose(base, scaled, atol=1e-6) == (position_encoding == "nope")


def test_sdpa_and_eager_agree():
    ids = random_ids(3, 10)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding in one row
    logits = {}
    for impl in ("sdpa", "eager"):
        model = tiny_model(attn_implementation=impl)
        assert model.config._attn_implementation == impl
        with torch.no_grad():
            logits[impl] = model(ids, attention_mask=mask).logits
    assert torch.allclose(logits["sdpa"][:, 4:], logits["eager"][:, 4:], atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="flash_attention_2 needs a CUDA GPU")
def test_flash_attention_2_on_gpu():
    pytest.importorskip("flash_attn")
    ids = random_ids(2, 16).cuda()
    logits = {}
    for impl in ("flash_attention_2", "sdpa"):
        torch.manual_seed(0)
        config = tiny_config(VOCAB, attn_implementation=impl)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).cuda().eval()
        assert model.config._attn_implementation == impl
        with torch.no_grad():
            logits[impl] = model(ids).logits.float()
    assert torch.allclose(logits["flash_attention_2"], logits["sdpa"], atol=2e-2)


# --- generation ---


def greedy_without_cache(model, ids, steps):
    for _ in range(steps):
        with torch.no_grad():
            nxt = model(ids, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
    return ids


def test_generate_with_kv_cache_matches_full_recompute():
    model, ids = tiny_model(), random_ids(1, 7)
    out = model.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=None, use_cache=True)
    assert out.shape == (1, 15)
    assert torch.equal(out, greedy_without_cache(model, ids, 8))


def test_left_padded_generation_matches_unpadded():
    model = tiny_model()
    short, long = random_ids(1, 4, seed=1), random_ids(1, 9, seed=2)
    pad = TOKENIZER.pad_token_id
    batch = torch.cat([torch.cat([torch.full((1, 5), pad), short], dim=1), long])
    mask = (torch.arange(9) >= torch.tensor([[5], [0]])).long()
    kwargs = dict(max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=pad)
    batched = model.generate(batch, attention_mask=mask, **kwargs)[:, 9:]
    assert torch.equal(batched[0], model.generate(short, **kwargs)[0, 4:])
    assert torch.equal(batched[1], model.generate(long, **kwargs)[0, 9:])


# --- save / load ---


def test_save_load_round_trip_is_bit_exact(tmp_path):
    model, ids = tiny_model(seed=3), random_ids(2, 6)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is SILlamaForCausalLM and loaded.config.position_encoding == "nope"
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)


def test_checkpoint_loads_without_si_hf(tmp_path):
    model, ids = tiny_model("nope", seed=4), random_ids(2, 6)
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt)
    auto_map = json.loads((ckpt / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_si_llama.SILlamaConfig",
        "AutoModelForCausalLM": "modeling_si_llama.SILlamaForCausalLM",
    }
    assert {"configuration_si_llama.py", "modeling_si_llama.py"} <= set(os.listdir(ckpt))
    torch.save(ids, tmp_path / "ids.pt")
    script = textwrap.dedent(f"""
        import sys
        sys.modules["si_hf"] = None  # the package is installed editable: make any import of it fail
        import torch
        from transformers import AutoModelForCausalLM
        torch.set_num_threads(1)
        model = AutoModelForCausalLM.from_pretrained({str(ckpt)!r}, trust_remote_code=True).eval()
        assert sys.modules["si_hf"] is None, "si_hf was imported"
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert type(model.model.rotary_emb).__name__ == "NoPositionEmbedding"
        with torch.no_grad():
            torch.save(model(torch.load({str(tmp_path / "ids.pt")!r})).logits, {str(tmp_path / "out.pt")!r})
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with torch.no_grad():
        assert torch.equal(torch.load(tmp_path / "out.pt"), model(ids).logits)


# --- published rounds: native SmolLM3 (NoPE) / Llama (RoPE) checkpoints ---

# Every field SmolLM3Config shares with LlamaConfig: all must be carried over, since SmolLM3's own
# defaults differ (tied embeddings, rope theta 2e6, 32768 positions, 4 kv heads, pad 128004, ...).
SHARED_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "initializer_range",
    "rms_norm_eps",
    "use_cache",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "tie_word_embeddings",
    "rope_parameters",
    "attention_bias",
    "attention_dropout",
    "mlp_bias",
)


def published(model, path, **load):
    """`model` saved as a round is saved, loaded back by plain transformers (what a user gets)."""
    from si_hf.store import save_checkpoint

    save_checkpoint(model, TOKENIZER, path)
    return AutoModelForCausalLM.from_pretrained(path, **load)


def packed_batch():
    """A padding-free training batch of the project's collator: examples packed into rows, their
    position_ids restarting at 0, no attention mask."""
    from si_hf.collator import PromptCompletionCollator

    examples = [{"prompt": f"{n}=", "completion": f"{n}"} for n in ("12", "3456", "7", "89012", "345", "6")]
    batch = PromptCompletionCollator(TOKENIZER, pack_length=24)(examples)
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] < len(examples)
    return batch


def test_nope_config_maps_onto_smollm3_with_nothing_else_changed():
    config = tiny_config(VOCAB, rms_norm_eps=1e-5, attention_dropout=0.1, max_position_embeddings=1234)
    native = native_config(config)
    assert type(native) is SmolLM3Config
    # SmolLM3's only departures from Llama, switched off: every layer NoPE, no sliding window
    assert native.no_rope_layers == [0, 0] and native.layer_types == ["full_attention"] * 2
    assert native.use_sliding_window is False and native.sliding_window is None
    assert {k: getattr(native, k) for k in SHARED_FIELDS} == {k: getattr(config, k) for k in SHARED_FIELDS}
    assert not hasattr(native, "head_dim")  # SmolLM3 derives hidden_size // num_attention_heads
    assert native_config(tiny_config(VOCAB, head_dim=16)).head_dim == 16  # kept when it differs
    back = si_llama_config(native)
    assert type(back) is SILlamaConfig and back.to_dict() == config.to_dict()
    assert si_llama_config(config) is config
    # RoPE is plain Llama
    rope = tiny_config(VOCAB, position_encoding="rope")
    assert type(native_config(rope)) is LlamaConfig
    assert {k: v for k, v in native_config(rope).to_dict().items() if k != "model_type"} == {
        k: v for k, v in rope.to_dict().items() if k not in ("model_type", "position_encoding")
    }
    # only an all-NoPE SmolLM3 without sliding window is an SI-Llama
    small = dict(vocab_size=VOCAB, num_hidden_layers=2, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    assert si_llama_config(SmolLM3Config(**small, no_rope_layers=[0, 1])) is None
    sliding = SmolLM3Config(**small, no_rope_layers=[0, 0], use_sliding_window=True, sliding_window=4)
    assert si_llama_config(sliding) is None
    assert si_llama_config(LlamaConfig()) is None
    with pytest.raises(ValueError, match="pretraining_tp=2"):
        native_config(tiny_config(VOCAB, pretraining_tp=2))
    with pytest.raises(TypeError, match="LlamaConfig"):
        native_config(LlamaConfig())


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_published_nope_round_is_the_same_model(tmp_path, attn):
    """Plain transformers loads a NoPE round as SmolLM3ForCausalLM, and it computes exactly what the
    SI-Llama it was saved from computes: padded and packed batches, KV-cache greedy decoding, the
    labels of `si_hf.labeling.label`, and training steps (gradients, AdamW updates)."""
    from si_hf.labeling import label
    from si_hf.tasks import get_task

    ours = tiny_model(seed=11, initializer_range=0.3, attn_implementation=attn)
    theirs = published(ours, tmp_path, attn_implementation=attn).eval()
    assert type(theirs) is SmolLM3ForCausalLM and theirs.config._attn_implementation == attn
    layers = theirs.model.layers
    assert all(not layer.self_attn.use_rope and layer.self_attn.sliding_window is None for layer in layers)

    ids, mask, packed = random_ids(3, 10), torch.ones(3, 10, dtype=torch.long), packed_batch()
    mask[0, :4] = 0  # left padding
    with torch.no_grad():
        assert torch.equal(ours(ids, attention_mask=mask).logits, theirs(ids, attention_mask=mask).logits)
        # without a cache transformers builds the block-diagonal mask of the packed rows
        a, b = ours(**packed, use_cache=False), theirs(**packed, use_cache=False)
        assert torch.equal(a.logits, b.logits) and torch.equal(a.loss, b.loss)
    kwargs = dict(max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=TOKENIZER.pad_token_id)
    kwargs |= dict(use_cache=True, output_scores=True, return_dict_in_generate=True)
    a, b = (
        ours.generate(ids, attention_mask=mask, **kwargs),
        theirs.generate(ids, attention_mask=mask, **kwargs),
    )
    assert torch.equal(a.sequences, b.sequences)
    assert all(torch.equal(x, y) for x, y in zip(a.scores, b.scores, strict=True))
    task, prompts = get_task("copy"), ["12=", "345678=", "9=", "1029384756="]
    labels = label(ours, TOKENIZER, task, prompts, batch_size=3, progress=False)
    assert label(theirs, TOKENIZER, task, prompts, batch_size=3, progress=False) == labels
    assert len({p.text for p in labels}) > 1, "a model that answers everything alike proves little"

    losses = {}
    for name, model in (("ours", ours), ("theirs", theirs)):
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        losses[name] = []
        for _ in range(2):
            loss = model(**packed, use_cache=False).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses[name].append(loss.item())
    assert losses["ours"] == losses["theirs"] and losses["ours"][0] != losses["ours"][1]
    sa, sb = ours.state_dict(), theirs.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_lora_finds_the_same_modules_in_a_published_nope_round(tmp_path):
    """peft targets modules by name: SmolLM3 and SI-Llama get the same adapters, which train and
    merge to the same weights."""
    from si_hf.modeling import add_lora, merge_lora

    ours = tiny_model(seed=12, initializer_range=0.3)
    theirs = published(ours, tmp_path)
    lora_args = args(use_peft=True, lora_r=2, lora_alpha=4, lora_dropout=0.0)
    a, b = add_lora(copy.deepcopy(ours), lora_args, seed=3), add_lora(theirs, lora_args, seed=3)
    trainable = [{n for n, p in m.named_parameters() if p.requires_grad} for m in (a, b)]
    assert trainable[0] == trainable[1] and any("q_proj.lora_A" in n for n in trainable[0])
    batch = packed_batch()
    for model in (a, b):
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        for _ in range(2):
            model(**batch, use_cache=False).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    sa, sb = merge_lora(a).state_dict(), merge_lora(b).state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(
        sa["model.layers.0.self_attn.q_proj.weight"],
        ours.state_dict()["model.layers.0.self_attn.q_proj.weight"],
    )


@pytest.mark.parametrize("position_encoding", ["nope", "rope"])
def test_published_round_reloads_into_si_hf_and_saves_identically(tmp_path, position_encoding):
    """si_hf reloads a round as the class it trains (NoPE: SILlamaForCausalLM, RoPE: Llama, which
    SI-Llama with RoPE is), and publishing the reloaded model writes the same bytes: a resumed run's
    rounds equal an uninterrupted run's."""
    from si_hf.store import save_checkpoint

    model, ids = tiny_model(position_encoding, seed=13, attn_implementation="eager"), random_ids(2, 6)
    first, second = tmp_path / "first", tmp_path / "second"
    save_checkpoint(model, TOKENIZER, first)
    config = json.loads((first / "config.json").read_text())
    native = {"nope": "SmolLM3ForCausalLM", "rope": "LlamaForCausalLM"}[position_encoding]
    assert config["architectures"] == [native] and "auto_map" not in config
    assert type(AutoModelForCausalLM.from_pretrained(first)).__name__ == native
    assert not list(first.glob("*.py"))
    loaded = load_checkpoint(str(first), attn_implementation="eager")
    expected = SILlamaForCausalLM if position_encoding == "nope" else LlamaForCausalLM
    assert type(loaded) is expected and loaded.config._attn_implementation == "eager"
    assert getattr(loaded.config, "position_encoding", "rope") == position_encoding
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded.eval()(ids).logits)
        # the in-memory conversion runs too (its rotary tables, not in the state dict, are rebuilt)
        assert torch.equal(model(ids).logits, to_native(model)(ids).logits)
    save_checkpoint(loaded, TOKENIZER, second)
    assert sorted(os.listdir(first)) == sorted(os.listdir(second))
    for name in os.listdir(first):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    # a round as a pretrained model keeps its position encoding
    pretrained = build_model(args(model_name_or_path=str(first)), TOKENIZER)
    assert getattr(pretrained.config, "position_encoding", "rope") == position_encoding
    other = {"nope": "rope", "rope": "nope"}[position_encoding]
    with pytest.raises(ValueError, match=f"position_encoding='{other}' but"):
        build_model(args(model_name_or_path=str(first), position_encoding=other), TOKENIZER)


def test_rounds_saved_as_si_llama_still_load_into_si_hf(tmp_path):
    """Output directories written before rounds were native hold si_llama checkpoints with auto_map:
    si_hf loads them with its own class, no remote code."""
    model, ids = tiny_model(seed=14), random_ids(2, 6)
    model.save_pretrained(tmp_path)
    assert "auto_map" in json.loads((tmp_path / "config.json").read_text())
    loaded = load_checkpoint(str(tmp_path))
    assert type(loaded) is SILlamaForCausalLM
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded.eval()(ids).logits)


# --- build_model ---


def args(**kw):
    return SimpleNamespace(**({"preset": "tiny"} | kw))


def test_build_from_scratch_is_seeded_and_uses_tokenizer():
    state = torch.random.get_rng_state()
    a, b = build_model(args(seed=7), TOKENIZER), build_model(args(seed=7), TOKENIZER)
    c = build_model(args(seed=8), TOKENIZER)
    assert torch.equal(state, torch.random.get_rng_state()), "build_model must not consume the global RNG"
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)
    assert isinstance(a, SILlamaForCausalLM) and a.config.vocab_size == VOCAB
    assert a.config.position_encoding == "nope" and a.config.num_hidden_layers == 2
    ids = {k: getattr(a.config, k) for k in ("pad_token_id", "bos_token_id", "eos_token_id")}
    assert ids == {k: getattr(TOKENIZER, k) for k in ids}
    assert build_model(args(seed=7), TOKENIZER, seed=8).lm_head.weight.equal(c.lm_head.weight)


def test_build_from_scratch_options():
    model = build_model(
        args(
            preset="cpu",
            position_encoding="rope",
            attn_implementation="eager",
            dtype="bfloat16",
            model_overrides={"num_hidden_layers": 1},
        ),
        TOKENIZER,
    )
    assert model.config.position_encoding == "rope" and model.config.num_hidden_layers == 1
    assert model.config._attn_implementation == "eager" and model.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="float33"):
        build_model(args(dtype="float33"), TOKENIZER)
    with pytest.raises(ValueError, match="'huge'"):
        build_model(args(preset="huge"), TOKENIZER)
    with pytest.raises(ValueError, match="use_peft"):
        build_model(args(use_peft=True), TOKENIZER)


@pytest.fixture(scope="module", params=[True, False], ids=["tied", "untied"])
def pretrained_llama(request, tmp_path_factory):
    """A tiny stand-in for Llama-3.2 (RoPE, its own larger vocabulary; Llama-3.2-1B ties its embeddings)."""
    path = tmp_path_factory.mktemp("llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=request.param,
        bos_token_id=128,
        eos_token_id=129,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return str(path)


def test_build_pretrained_resizes_and_sets_ids(pretrained_llama):
    model = build_model(args(model_name_or_path=pretrained_llama), TOKENIZER)
    assert type(model) is LlamaForCausalLM
    assert model.get_input_embeddings().num_embeddings == model.lm_head.out_features == VOCAB
    assert model.config.vocab_size == VOCAB
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == (1, 2, 0)
    assert model.generation_config.eos_token_id == 2
    with pytest.raises(ValueError, match="'nope'.*'rope'"):
        build_model(args(model_name_or_path=pretrained_llama, position_encoding="nope"), TOKENIZER)
    with pytest.raises(ValueError, match="model_overrides"):
        build_model(args(model_name_or_path=pretrained_llama, model_overrides={"hidden_size": 8}), TOKENIZER)


def test_build_pretrained_with_lora(pretrained_llama):
    model = build_model(
        args(model_name_or_path=pretrained_llama, use_peft=True, lora_r=4, lora_alpha=8, seed=1), TOKENIZER
    )
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert trainable and all("lora_" in n or "modules_to_save" in n for n in trainable)
    inner = model.base_model.model
    embed, head = (m.modules_to_save["default"].weight for m in (inner.model.embed_tokens, inner.lm_head))
    assert embed.requires_grad and head.requires_grad and embed.shape == head.shape == (VOCAB, 32)
    assert (embed is head) == inner.config.tie_word_embeddings, "a tied checkpoint must stay tied"
    assert any(n.endswith("q_proj.base_layer.weight") for n in frozen)
    linear = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert all(any(f"{m}.lora_A" in n for n in trainable) for m in linear), "all-linear by default"

    ids = random_ids(2, 8)
    model.train()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None for g in grads.values())
    # lora_B starts at zero, so only it (not lora_A) gets a gradient on the first step.
    assert any("lora_B" in n and g.abs().sum() > 0 for n, g in grads.items())
    assert any("embed_tokens" in n and g.abs().sum() > 0 for n, g in grads.items())

    # Perturb the adapters so merging is a real test (lora_B starts at zero).
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.1)
    model.eval()
    with torch.no_grad():
        before = model(input_ids=ids).logits
        merged = model.merge_and_unload()
        after = merged(input_ids=ids).logits
    assert type(merged) is LlamaForCausalLM
    assert (merged.lm_head.weight is merged.model.embed_tokens.weight) == merged.config.tie_word_embeddings
    assert not any("lora_" in n or "modules_to_save" in n for n, _ in merged.named_parameters())
    assert torch.allclose(before, after, atol=1e-5)


def test_lora_on_a_bf16_base_trains_the_character_rows_in_fp32(pretrained_llama):
    """A small AdamW step must move the new character embeddings of a bf16 model: stored in bf16,
    an update of 1e-5 on weights of ~0.02 (bf16 spacing ~1e-4 there) would round away."""
    from si_hf.labeling import label
    from si_hf.modeling import merge_lora
    from si_hf.tasks import get_task

    model = build_model(
        args(model_name_or_path=pretrained_llama, use_peft=True, lora_r=4, lora_alpha=8, dtype="bfloat16"),
        TOKENIZER,
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {p.dtype for p in trainable} == {torch.float32}
    assert {p.dtype for p in model.parameters() if not p.requires_grad} == {torch.bfloat16}
    inner = model.base_model.model
    embed = inner.model.embed_tokens.modules_to_save["default"].weight
    before = embed.detach().clone()
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.0)
    ids = random_ids(4, 8)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()  # no autocast: the hooks make the dtypes meet
    optimizer.step()
    used = sorted(set(ids.flatten().tolist()))
    moved = (embed.detach()[used] != before[used]).float().mean().item()
    assert moved > 0.9, f"only {moved:.0%} of the used embedding entries changed"
    # the mixed model decodes without autocast, and merging rounds it back to one dtype
    model.eval()
    preds = label(model, TOKENIZER, get_task("copy"), ["12="], progress=False)
    merged = merge_lora(model)
    assert {p.dtype for p in merged.parameters()} == {torch.bfloat16}
    assert label(merged, TOKENIZER, get_task("copy"), ["12="], progress=False)[0].num_tokens >= 0
    assert len(preds) == 1
