"""DeepSpeed ZeRO in the round loop: what changes about a round, one call away from `si_hf.rounds`.

Outside `Trainer.train` every process holds the whole model, under DDP and DeepSpeed alike, so
labelling, evaluation and publishing run exactly as in a one-process run: each process labels its
shard of the prompts with the whole model (`si_hf.labeling.label_across_processes`), evaluates it and
the main process publishes it. ZeRO shards the training state only:

- ZeRO-2 shards the gradients and the AdamW states; every process keeps all the weights.
- ZeRO-3 also shards the weights, in place, when the Trainer hands the model to DeepSpeed. The model
  must still fit whole in one process's device for labelling (2 bytes a parameter in bf16); what
  ZeRO-3 spreads over the processes is the training state (weights, gradients and fp32 AdamW states,
  about 16 bytes a trainable parameter). So models are built and loaded whole (`whole_models`), not
  partitioned at construction as transformers does by default under ZeRO-3.

After a round's training `trained_model` puts the trained weights back into a whole model on every
process: DeepSpeed's fp32 master weights (gathered with collectives, so every process gets the same
values), the frozen weights and buffers as they were before training. That model is what labelling,
evaluation, publishing and the next round's training use, and what `from_pretrained` loads back.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch

# DeepSpeed 0.19.8 calls torch's deprecated `all_gather_into_tensor` and `reduce_scatter_tensor` at
# every ZeRO-3 step, and torch 2.13 warns at every call (the step resets the registry that would show
# it once): about one warning a step per process, which the user can do nothing about.
_DEPRECATED_COLLECTIVES = (
    r"`torch\.distributed\.(all_gather_into_tensor|reduce_scatter_tensor)` is deprecated"
)


def zero_stage(args) -> int | None:
    """The ZeRO stage these TrainingArguments train with (`accelerate launch` with a DeepSpeed config,
    or `deepspeed` in the arguments); None without DeepSpeed."""
    plugin = getattr(args, "deepspeed_plugin", None)
    return None if plugin is None else int(plugin.zero_stage)


@contextlib.contextmanager
def whole_models():
    """Build and load models whole in this process, under ZeRO-3 too.

    While a ZeRO-3 config is registered with transformers (accelerate registers it whenever
    TrainingArguments are created under `accelerate launch` with ZeRO-3, whatever `zero3_init_flag`
    says), every model transformers constructs is partitioned at once (`deepspeed.zero.Init`), and
    peft and `resize_token_embeddings` take their ZeRO-3 paths. The round loop labels with the whole
    model, and DeepSpeed partitions it itself when training starts, so the registration is lifted
    for the construction and put back afterwards. Without DeepSpeed nothing is registered: no-op."""
    from transformers.integrations import deepspeed as hf_deepspeed

    # transformers keeps the registration in a module global behind a weak reference and has no
    # getter for it; it is restored as it was, so the Trainer finds what accelerate registered.
    registered = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = registered


def untrained_twin(model, args):
    """Under DeepSpeed, a copy of `model` made before training that training leaves alone, for
    `trained_model` to fill; None without DeepSpeed (the Trainer gives the model back whole).

    DeepSpeed changes the model it trains in place: ZeRO-3 frees every weight to a shard, and with
    bf16 every weight is recast to bf16 (the fp32 masters live in the optimizer). The twin costs no
    memory for the trainable weights (on the meta device until filled); its frozen weights (a LoRA
    base) share the tensors `model` has now, which no optimizer step touches and which DeepSpeed
    replaces rather than overwrites, and its buffers are copies (small). DeepSpeed's per-step
    deprecation warnings (`_DEPRECATED_COLLECTIVES`) are silenced from here on."""
    if zero_stage(args) is None:
        return None
    warnings.filterwarnings("ignore", message=_DEPRECATED_COLLECTIVES, category=FutureWarning)
    memo = {}
    for p in model.parameters():
        if hasattr(p, "ds_id"):
            raise RuntimeError(
                "the model was partitioned by deepspeed.zero.Init when it was built; build and load it "
                "inside si_hf.distributed.whole_models()"
            )
        # `requires_grad` is passed on: the twin is trained again next round (LoRA: merged first)
        data = torch.empty_like(p, device="meta") if p.requires_grad else p.detach()
        memo[id(p)] = torch.nn.Parameter(data, requires_grad=p.requires_grad)
    return copy.deepcopy(model, memo)


def as_loaded(model):
    """`model` as `from_pretrained` would give it back: without what accelerate attached to it.

    In a one-process run accelerate marks the model it prepares (`_is_accelerate_prepared`; under DDP
    the mark is on the wrapper) and skips preparing a marked model again, so a model carried into the
    next round's Trainer trained without that round's bf16 autocast: in fp32, unlike the same round
    after any resume, which reloads the model from the store. The mixed-precision forward wrapper goes
    too, so labelling runs in the weights' own dtype, as for a reloaded model."""
    original = model.__dict__.pop("_original_forward", None)
    if original is not None:
        # the class's forward with its decorators (`unwrap_model(keep_fp32_wrapper=False)` strips those)
        if getattr(original, "__func__", None) is type(model).forward:
            model.__dict__.pop("forward", None)
        else:
            model.forward = original
    model.__dict__.pop("_is_accelerate_prepared", None)
    return model


def trained_model(trainer, twin):
    """The trained model, whole, on every process: the Trainer's own without DeepSpeed (`twin` is
    None), else `twin` filled with DeepSpeed's fp32 master weights. Every process must call it:
    each weight is gathered with a collective, in the same order everywhere."""
    if twin is None:
        return as_loaded(trainer.accelerator.unwrap_model(trainer.model))
    from deepspeed.utils import safe_get_full_fp32_param

    trained = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    slots = dict(twin.named_parameters())
    filled = {}
    for name, param in trained.named_parameters():
        if not param.requires_grad:
            continue  # frozen: the twin already holds it as it was, and it never changed
        if name not in slots:
            raise RuntimeError(f"trained parameter {name!r} has no counterpart in the model before training")
        slot = slots[name]
        # ZeRO 1-3 (and DeepSpeed's bf16 optimizer) keep fp32 masters; this all-gathers them (ZeRO-3)
        # or all-reduces each process's fragment with zeros elsewhere (ZeRO-1/2), exact either way.
        full = safe_get_full_fp32_param(param)
        if full is None:
            if hasattr(param, "ds_id"):
                raise RuntimeError(f"DeepSpeed holds no master copy of the ZeRO-3 parameter {name!r}")
            full = param.detach()  # no ZeRO optimizer: the module's own weight is the weight
        if full.numel() != slot.numel():
            raise RuntimeError(
                f"gathered {name!r} has {full.numel()} elements; expected {slot.numel()} {tuple(slot.shape)}"
            )
        value = full.detach().reshape(slot.shape).to(slot.dtype).clone()
        filled[id(slot)] = torch.nn.Parameter(value, requires_grad=True)
    # Swapped in module by module, so a weight shared by two modules (tied) stays one parameter.
    for module in twin.modules():
        for key, p in module._parameters.items():
            if p is not None and id(p) in filled:
                module._parameters[key] = filled[id(p)]
    left = [name for name, p in twin.named_parameters() if p.is_meta]
    if left:
        raise RuntimeError(f"DeepSpeed returned no trained value for {left}")
    # Drops the engine, its optimizer states and ZeRO-3's hooks before labelling needs the memory.
    trainer.accelerator.free_memory()
    return twin.to(trainer.args.device)
