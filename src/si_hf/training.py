"""Training one member for one round: its arguments, its data mix and the Trainer run.

Round 0 uses the TrainingArguments as given; rounds >= 1 reuse them with the `round_*` overrides of
`SelfImproveArguments`. Every round's seed is derived from (seed, round, member), so a resumed
round trains exactly as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import torch
from transformers import Trainer, TrainerCallback

from si_hf.checkpoints import checkpoint_step, resume_checkpoint, training_settings
from si_hf.data import D0Pool, mix_rounds
from si_hf.distributed import trained_model, untrained_twin
from si_hf.layout import member_dirname

logger = logging.getLogger("si_hf")


ROUND_INITS = ("continue", "base")


def check_round_init(value) -> None:
    if value not in ROUND_INITS:
        raise ValueError(f"round_init: {value!r} is not one of {list(ROUND_INITS)}")


def round_seed(seed: int, r: int, member: int) -> int:
    return seed + 1000 * member + r


def round_training_args(args, si, r: int, member: int, output_dir: str, precision: dict):
    """The TrainingArguments of round r for `member`: its own seed and work directory, the round
    overrides for r >= 1, in-round checkpoints every `save_steps` (`si_hf.checkpoints`), no push (the
    store publishes rounds) and no tracker of its own (`si_hf.tracking` keeps one per member)."""
    name = args.run_name or str(args.output_dir)
    overrides = {
        "seed": round_seed(args.seed, r, member),
        "output_dir": output_dir,
        "push_to_hub": False,
        "save_strategy": "steps" if args.save_steps else "no",
        "save_total_limit": args.save_total_limit or 1,  # a rerun needs only the latest
        "report_to": [],
        "run_name": f"{name}/{member_dirname(member)}" if si.num_members > 1 else name,
        # Under several processes each one streams the (cheap, seeded) data itself and keeps its
        # slice of every global batch: dispatching from rank 0 would need equal padded lengths.
        "accelerator_config": {**dataclasses.asdict(args.accelerator_config), "dispatch_batches": False},
    }
    if r > 0:
        kwargs = dict(args.lr_scheduler_kwargs or {})
        kwargs["num_decay_steps"] = si.round_decay_steps
        overrides.update(
            max_steps=si.round_max_steps,
            warmup_steps=si.round_warmup_steps,
            learning_rate=si.round_learning_rate or args.learning_rate,
            lr_scheduler_kwargs=kwargs,
        )
    overrides.update(precision)
    return dataclasses.replace(args, **overrides)


def d0_stream(task, d0, task_args, r: int, member: int, seed: int) -> D0Pool:
    """Member m's D_0 as round r reads it. Every round's Trainer starts a fresh epoch, so the shard
    order is seeded per round: otherwise each round would reread the same first shards."""
    return D0Pool(
        task,
        d0,
        num_examples=task_args.num_d0_examples,
        seed=task_args.data_seed_base,
        member=member,
        order_seed=round_seed(seed, r, member),
    )


def training_mix(d0, rounds: dict, si, *, d0_weight: int, seed: int, member: int):
    """D_0 and the rounds {k: dataset} of one member, the newest at `newest_round_probability`.
    A round that kept fewer than `min_round_examples` labels stays out, so it never takes half the mix."""
    kept = []
    for k, ds in sorted(rounds.items()):
        if len(ds) < si.min_kept:
            logger.warning(
                "round %d of member %d kept %d labels (< min_round_examples=%d): left out of the mix",
                k,
                member,
                len(ds),
                si.min_kept,
            )
            continue
        kept.append(ds)
    return mix_rounds(
        d0, kept, newest_probability=si.newest_round_probability, d0_weight=d0_weight, seed=seed
    )


def round_mix(run, r: int, member: int, rounds: dict):
    """Member m's training stream of round r: its D_0 and its rounds {k: dataset} 1..r (`training_mix`)."""
    seed = run.train_args.seed
    d0 = d0_stream(run.task, run.d0, run.task_args, r, member, seed)
    weight = len(run.task.d0_difficulties(run.d0))
    return training_mix(d0, rounds, run.si, d0_weight=weight, seed=round_seed(seed, r, member), member=member)


def train_round(model, args, train_dataset, collator, tokenizer, callbacks=()) -> tuple[object, dict]:
    """`train` from the round's last in-round checkpoint, if a crash left one; returns the bare model and
    what the round records about its training."""
    resume = resume_checkpoint(
        args.output_dir, training_settings(args, getattr(collator, "pack_length", None))
    )
    model, out, seconds = train(
        model, args, train_dataset, collator, tokenizer, callbacks=callbacks, resume_from_checkpoint=resume
    )
    return model, {
        # Trainer's mean over the steps this call ran: those after the checkpoint when it resumed
        "train_loss": out.training_loss,
        "train_seconds": seconds,
        "train_steps": args.max_steps,
        "train_resumed_from_step": checkpoint_step(resume),
    }


class DivergedError(RuntimeError):
    """A round's training produced a non-finite loss or weights: nothing of the round is published."""


class DivergenceGuard(TrainerCallback):
    """Stops training at the first logged loss that is not finite, and remembers the step and loss."""

    def __init__(self):
        self.step, self.loss = None, None

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if self.step is None and isinstance(loss, int | float) and not math.isfinite(loss):
            self.step, self.loss = state.global_step, loss
            control.should_training_stop = True


def check_finite(model, out, guard: DivergenceGuard, args) -> None:
    """Raise DivergedError naming the step, the loss and the round's work folder when the loss or a
    weight is not finite: such a model must never be published nor label the next round."""
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if guard.step is None and not bad and math.isfinite(out.training_loss):
        return
    found = [f"loss {guard.loss} at step {guard.step}"] if guard.step is not None else []
    if not math.isfinite(out.training_loss) and guard.step is None:
        found.append(f"mean loss {out.training_loss}")
    if bad:
        found.append(f"{len(bad)} weight tensors not finite after training (first: {bad[0]})")
    raise DivergedError(
        f"training diverged ({'; '.join(found)}) in {args.output_dir}, learning_rate {args.learning_rate}: "
        "nothing of this round is published; lower the learning rate (or raise the warmup) and rerun"
    )


def train(model, args, train_dataset, collator, tokenizer, callbacks=(), resume_from_checkpoint=None):
    """Trainer.train on `train_dataset`; returns the bare trained model, whole in every process (no
    accelerate wrapper, and under DeepSpeed gathered back from its shards: `si_hf.distributed`), the
    TrainOutput and seconds. A non-finite loss stops training and raises DivergedError, as do
    non-finite weights at the end."""
    twin = untrained_twin(model, args)  # before anything below touches the model
    guard = DivergenceGuard()
    # Without a KV cache: transformers builds the block-diagonal mask of packed batches from their
    # position_ids only when no cache is passed (training has no use for one). Generation needs it
    # back afterwards (Trainer itself may switch it off, so it is read first).
    use_cache, model.config.use_cache = model.config.use_cache, False
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[*callbacks, guard],
    )
    try:
        t0 = time.perf_counter()
        out = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
        seconds = time.perf_counter() - t0
    finally:
        model.config.use_cache = use_cache
    trained = trained_model(trainer, twin)
    check_finite(trained, out, guard, args)
    return trained, out, seconds
