"""build_model: an SI-Llama from a preset (from scratch) or a pretrained Llama with the char tokenizer."""

from typing import Protocol

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from .native import load_checkpoint
from .presets import get_config


class ModelArgumentsLike(Protocol):
    """The attributes build_model reads; `si_hf.configs.ModelArguments` provides them. Missing ones
    take that class's defaults (one source of truth: `model_defaults()`)."""

    model_name_or_path: str | None
    model_revision: str
    preset: str
    position_encoding: str | None
    attn_implementation: str | None
    dtype: str | None
    use_peft: bool
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: list[str] | str | None
    lora_modules_to_save: list[str] | None
    use_rslora: bool
    use_dora: bool
    model_overrides: dict | None


def model_defaults() -> dict:
    """The defaults of every model argument, read off `ModelArguments`."""
    import dataclasses

    from si_hf.configs import ModelArguments

    return {
        f.name: f.default for f in dataclasses.fields(ModelArguments) if f.default is not dataclasses.MISSING
    }


def _args(model_args) -> dict:
    a = model_defaults()
    a.update({k: v for k in a if (v := getattr(model_args, k, None)) is not None})
    a["seed"] = getattr(model_args, "seed", 42)
    a["model_overrides"] = a["model_overrides"] or {}
    # LoRA on every linear projection unless told otherwise (appendix C.3.2 names no modules)
    a["lora_target_modules"] = a["lora_target_modules"] or "all-linear"
    # The character embeddings are new, so they train in full alongside the adapters.
    a["lora_modules_to_save"] = a["lora_modules_to_save"] or ["embed_tokens", "lm_head"]
    return a


def _dtype(value) -> torch.dtype | str | None:
    if value is None or value == "auto" or isinstance(value, torch.dtype):
        return value
    dtype = getattr(torch, str(value), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(
            f"dtype={value!r} is invalid; expected None, 'auto' or a torch dtype name like 'bfloat16'"
        )
    return dtype


def _special_ids(tokenizer) -> dict:
    ids = {f"{n}_token_id": getattr(tokenizer, f"{n}_token_id", None) for n in ("pad", "bos", "eos")}
    return {k: v for k, v in ids.items() if v is not None}


def build_model(model_args: ModelArgumentsLike, tokenizer, *, seed: int | None = None) -> PreTrainedModel:
    """From scratch when `model_name_or_path` is None (weights seeded from `seed`), otherwise a pretrained
    causal LM with its embeddings resized to `tokenizer` and, with `use_peft`, LoRA adapters.
    `seed` overrides `model_args.seed` (the training seed usually lives in TrainingArguments)."""
    a = _args(model_args)
    if seed is not None:
        a["seed"] = seed
    vocab_size = len(tokenizer)
    dtype = _dtype(a["dtype"])
    load_kwargs = {"attn_implementation": a["attn_implementation"]} if a["attn_implementation"] else {}
    # fork_rng: seed the initialisation without disturbing the caller's global RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(a["seed"])
        if a["model_name_or_path"] is None:
            if a["use_peft"]:
                raise ValueError("use_peft=True needs model_name_or_path (LoRA adapts a pretrained model)")
            overrides = _special_ids(tokenizer) | {"position_encoding": a["position_encoding"] or "nope"}
            config = get_config(a["preset"], vocab_size, **(overrides | dict(a["model_overrides"])))
            model = AutoModelForCausalLM.from_config(
                config, dtype=None if dtype == "auto" else dtype, **load_kwargs
            )
        else:
            if a["model_overrides"]:
                raise ValueError(
                    f"model_overrides={a['model_overrides']!r} only applies to presets built from scratch, "
                    f"not to the pretrained {a['model_name_or_path']!r}"
                )
            model = _load_pretrained(a, tokenizer, dtype, load_kwargs)
            if a["use_peft"]:
                model = _wrap_lora(model, a)
    return model


def _load_pretrained(a: dict, tokenizer, dtype, load_kwargs: dict) -> PreTrainedModel:
    if dtype is not None:
        load_kwargs["dtype"] = dtype
    # a published NoPE round (SmolLM3 on disk) comes back as SI-Llama, so its position_encoding reads "nope"
    model = load_checkpoint(a["model_name_or_path"], revision=a["model_revision"], **load_kwargs)
    own = getattr(model.config, "position_encoding", "rope")
    if a["position_encoding"] not in (None, own):
        raise ValueError(
            f"position_encoding={a['position_encoding']!r} but {a['model_name_or_path']!r} was trained with "
            f"{own!r}; set position_encoding to {own!r} or null to keep the checkpoint's"
        )
    # The paper swaps Llama's tokenizer for the character one: the rows kept by the resize are
    # unrelated to the new symbols and are retrained (they are trainable under LoRA too).
    if model.get_input_embeddings().num_embeddings != len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    for name, value in _special_ids(tokenizer).items():
        setattr(model.config, name, value)
        if model.generation_config is not None:
            setattr(model.generation_config, name, value)
    return model


def _wrap_lora(model: PreTrainedModel, a: dict) -> PreTrainedModel:
    from peft import LoraConfig, get_peft_model

    targets = a["lora_target_modules"]
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=a["lora_r"],
        lora_alpha=a["lora_alpha"],
        lora_dropout=a["lora_dropout"],
        target_modules=targets if isinstance(targets, str) else list(targets),
        modules_to_save=list(a["lora_modules_to_save"]),
        use_rslora=bool(a["use_rslora"]),
        use_dora=bool(a["use_dora"]),
        ensure_weight_tying=bool(getattr(model.config, "tie_word_embeddings", False)),
    )
    return train_in_fp32(get_peft_model(model, lora))


def _frozen_dtype(model) -> torch.dtype | None:
    dtypes = {p.dtype for p in model.parameters() if not p.requires_grad and p.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 else None


def _cast_output(dtype):
    def hook(module, args, output):
        return output.to(dtype)

    return hook


def _cast_input(module, args):
    return (args[0].to(module.weight.dtype), *args[1:])


def train_in_fp32(model: PreTrainedModel) -> PreTrainedModel:
    """Trainable parameters in fp32 when the frozen base is bf16/fp16: fp32 master weights.

    A pretrained model loaded in bf16 trains its new character embeddings and lm_head in full
    (`modules_to_save`); stored in bf16, an AdamW update smaller than the spacing of bf16 values
    near the weight (2^-8 of it) rounds away. Forward hooks keep the mixed model working with and
    without autocast: a trainable embedding hands the base its own dtype, a trainable linear layer
    casts its input to fp32 (peft's adapter layers already do both)."""
    compute = _frozen_dtype(model)
    if compute is None or compute == torch.float32:
        return model
    for param in model.parameters():
        if param.requires_grad and param.is_floating_point():
            param.data = param.data.float()
    for module in model.modules():
        if not any(p.requires_grad for p in module.parameters(recurse=False)):
            continue
        if isinstance(module, torch.nn.Embedding):
            module.register_forward_hook(_cast_output(compute))
        elif isinstance(module, torch.nn.Linear):
            module.register_forward_pre_hook(_cast_input)
    return model


def merge_lora(model: PreTrainedModel) -> PreTrainedModel:
    """The plain model behind a peft model: adapters merged, every weight back in the frozen base's
    dtype (the fp32 master copies of `train_in_fp32` are rounded once, at the end of the round).
    Other models are returned as they are."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        return model
    dtype = _frozen_dtype(model)
    merged = model.merge_and_unload()
    return merged.to(dtype) if dtype is not None else merged


def add_lora(
    model: PreTrainedModel, model_args: ModelArgumentsLike, *, seed: int | None = None
) -> PreTrainedModel:
    """Fresh LoRA adapters on `model` (a peft model is merged first), seeded like `build_model`.

    Rounds >= 1 continue from the previous round's merged checkpoint; merging in memory too keeps a
    run that stays in one process identical to one resumed from the store."""
    model = merge_lora(model)
    a = _args(model_args)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(a["seed"] if seed is None else seed)
        return _wrap_lora(model, a)
