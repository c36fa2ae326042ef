"""Run arguments: three dataclasses parsed together by `trl.TrlParser` (YAML + CLI overrides).

`TaskArguments` says what is learned, `SelfImproveArguments` how rounds are scheduled, labelled,
filtered, evaluated and published, `ModelArguments` which network learns it, and
`SITrainingArguments` (a `transformers.TrainingArguments`) how round 0 trains. Rounds >= 1 reuse
the training arguments with the `round_*` overrides. Field names are unique across the four
classes because argparse sees them as one flat namespace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transformers import TrainingArguments
from trl import ModelConfig

from si_hf.filtering import FILTERS, VOTE_LABELS, vote_threshold
from si_hf.labeling import CACHE_IMPLEMENTATIONS
from si_hf.round_data import LABEL_SETTINGS, LABEL_SETTINGS_ADDED_LATER
from si_hf.tasks.addition import ADDITION_TASKS, D0_OPERAND_LENGTHS

SCHEDULES = ("standard", "accelerated", "multiplication", "multiplication_accelerated")
PRECISIONS = ("auto", "native", "fp32", "bf16")
DECODE_PRECISIONS = ("fp32", "native", "bf16")


@dataclass
class TaskArguments:
    task: str = field(
        default="reverse_addition",
        metadata={
            "help": "Task name: reverse_addition, forward_addition, copy, reverse_string, multiplication, "
            "maze_hops, maze_nodes."
        },
    )
    d0: str = field(
        default="16",
        metadata={"help": "Largest difficulty in the supervised set D_0 (multiplication: n for n-by-n)."},
    )
    num_d0_examples: int = field(
        default=2_000_000, metadata={"help": "Size of the D_0 pool, generated on the fly from `data_seed`."}
    )
    maze_num_nodes: int = field(default=30, metadata={"help": "maze_hops: nodes per maze."})
    maze_num_hops: int = field(default=9, metadata={"help": "maze_nodes: hops between start and end."})
    d0_operand_lengths: str = field(
        default="independent",
        metadata={
            "help": "reverse_addition / forward_addition: how D_0 draws the two operand lengths, each "
            "uniformly in 1..d0 (`independent`, the authors' scripts: level d, the longer operand, has weight "
            "2d - 1), one length for both (`equal`, section 3's wording: every level equally often), or for "
            "both the longer of two independent lengths (`equal_weighted`: equal operands, independent's "
            "mix of levels). Rounds and evaluation always use equal lengths.",
            "choices": list(D0_OPERAND_LENGTHS),
        },
    )
    data_seed_base: int = field(
        default=1234,
        metadata={
            "help": "Seed of every data stream (D_0, each round's prompts, evaluation); streams are derived "
            "per purpose so evaluation prompts never meet training prompts."
        },
    )

    def __post_init__(self):
        if self.d0_operand_lengths not in D0_OPERAND_LENGTHS:
            raise ValueError(
                f"d0_operand_lengths: {self.d0_operand_lengths!r} is not one of {list(D0_OPERAND_LENGTHS)}"
            )
        if self.d0_operand_lengths != "independent" and self.task not in ADDITION_TASKS:
            raise ValueError(
                f"d0_operand_lengths={self.d0_operand_lengths!r} applies to {' and '.join(ADDITION_TASKS)} "
                f"only, not task {self.task!r}; leave it at 'independent'"
            )

    def task_kwargs(self) -> dict:
        if self.task in ADDITION_TASKS:
            return {"d0_operand_lengths": self.d0_operand_lengths}
        if self.task == "maze_hops":
            return {"num_nodes": self.maze_num_nodes}
        if self.task == "maze_nodes":
            return {"num_hops": self.maze_num_hops}
        return {}


@dataclass
class ModelArguments(ModelConfig):
    """TRL's `ModelConfig` (same names: `dtype`, `lora_r`, `use_peft`, ...) plus the from-scratch sizes.

    Defaults changed from TRL's: `attn_implementation` sdpa, LoRA r 64 / alpha 128 / dropout 0 and
    every linear layer (appendix C.3.2), `lora_modules_to_save` the embeddings and lm_head (the
    character tokenizer replaces Llama's, so those rows are new). Quantized loading is refused.
    """

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Pretrained Llama to adapt (local path or Hub id). None trains `preset` from scratch."
        },
    )
    preset: str = field(default="paper", metadata={"help": "From-scratch size: paper (14M), cpu (1M), tiny."})
    # dict | str: a YAML mapping, or on the command line a JSON object (as TrainingArguments'
    # lr_scheduler_kwargs): --model_overrides '{"hidden_size": 192}'
    model_overrides: dict | str | None = field(
        default=None,
        metadata={
            "help": "Config fields overriding the preset: a YAML mapping, e.g. {num_hidden_layers: 4}, or on the "
            "command line a JSON object, e.g. '{\"num_hidden_layers\": 4}'."
        },
    )
    position_encoding: str | None = field(
        default=None,
        metadata={
            "help": "nope or rope; None = nope from scratch (paper), the checkpoint's own when pretrained."
        },
    )
    attn_implementation: str | None = field(
        default="sdpa", metadata={"help": "sdpa, eager, or flash_attention_2 (GPU only)."}
    )
    dtype: str | None = field(
        default="float32",
        metadata={"help": "Weights dtype when loading a pretrained model (float32, bfloat16, auto)."},
    )
    lora_r: int = field(default=64, metadata={"help": "LoRA rank (paper: 64 for Llama-1B, 32 for 3B)."})
    lora_alpha: int = field(default=128, metadata={"help": "LoRA alpha (paper: 128)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Modules LoRA adapts; None = all linear projections."}
    )
    lora_modules_to_save: list[str] | None = field(
        default=None,
        metadata={"help": "Modules trained in full beside the adapters; None = embed_tokens and lm_head."},
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "char or maze; None picks the task's tokenizer."}
    )

    def __post_init__(self):
        super().__post_init__()
        overrides = self.model_overrides
        if isinstance(overrides, str):
            try:
                overrides = json.loads(overrides)
            except ValueError:
                pass  # still a string: refused below with the value given
        if overrides is not None and not isinstance(overrides, dict):
            raise ValueError(
                f"model_overrides: {self.model_overrides!r} is not a mapping; expected config fields, e.g. "
                '{"num_hidden_layers": 4} (a JSON object on the command line)'
            )
        self.model_overrides = overrides
        if self.load_in_8bit or self.load_in_4bit:
            raise ValueError(
                "load_in_8bit / load_in_4bit: quantized loading is not supported by si-hf; "
                "use dtype: bfloat16 with use_peft: true"
            )
        if self.lora_task_type != "CAUSAL_LM":
            raise ValueError(f"lora_task_type: {self.lora_task_type!r}; si-hf trains causal LMs (CAUSAL_LM)")


@dataclass
class SelfImproveArguments:
    # --- which rounds this invocation runs ---
    round: int | None = field(default=None, metadata={"help": "Run exactly this round (0 = supervised)."})
    rounds: str | None = field(
        default=None,
        metadata={"help": "Run rounds A:B (inclusive) in one process, keeping models in memory."},
    )
    num_rounds: int = field(
        default=10,
        metadata={
            "help": "Last self-improvement round of the experiment; with neither --round nor --rounds "
            "the run continues from the last completed round up to this one."
        },
    )
    # --- difficulty schedule ---
    schedule: str = field(
        default="standard",
        metadata={
            "help": "standard (+difficulty_step per round), accelerated (every level with eval accuracy "
            ">= accelerate_threshold), multiplication (2-D n x m), multiplication_accelerated."
        },
    )
    difficulty_step: int = field(default=1, metadata={"help": "Levels added per round (maze_nodes: 3)."})
    accelerate_threshold: float = field(default=0.99, metadata={"help": "Accuracy that unlocks a level."})
    # --- self-labelling ---
    examples_per_round: int = field(default=50_000, metadata={"help": "N_r: prompts labelled per round."})
    label_batch_size: int = field(default=1024, metadata={"help": "Greedy labelling batch size."})
    label_cache_implementation: str = field(
        default="dynamic",
        metadata={
            "help": "KV cache of greedy decoding (labels and evaluation): dynamic (attention over exactly the "
            "tokens so far, kept in a buffer sized per batch), concat (transformers' DynamicCache: the same "
            "labels, but it concatenates the whole cache every step, 1.1-1.8x slower for CoT multiplication "
            "on a CPU), or static (a max-length cache; generate compiles the decoding step on a GPU; the same "
            "labels up to float rounding in a near-tie: 1 of 2000 CoT multiplication labels differed, "
            "docs/results.md).",
            "choices": list(CACHE_IMPLEMENTATIONS),
        },
    )
    decode_precision: str = field(
        default="fp32",
        metadata={
            "help": "Precision of greedy decoding (labels and evaluation): fp32 (default: no autocast, the "
            "weights' own dtype, fp32 for every recipe), bf16 (bf16 autocast), native (bf16 where the hardware computes it, as "
            "precision: native). On such a CPU bf16 decoded maze labels 1.36x as fast as fp32 and CoT "
            "multiplication 0.89-1.21x (docs/results.md); near-ties go other ways, so 3-27 percent of the "
            "labels differ from fp32's. benchmarks/bench_labeling.py --model measures both.",
            "choices": list(DECODE_PRECISIONS),
        },
    )
    filters: list[str] = field(
        default_factory=lambda: ["none"],
        metadata={
            "help": "Applied in order: none (keep every label, run-on outputs included), finished (drop "
            "run-on outputs), length, majority_vote, verifier. All but none imply finished."
        },
    )
    length_filter_tau: int = field(
        default=2,
        metadata={"help": "Drop labels at least this many tokens shorter than the batch's longest."},
    )
    num_members: int = field(
        default=1, metadata={"help": "k models trained with different seeds (majority vote needs k >= 2)."}
    )
    vote_threshold: float = field(
        default=0.8, metadata={"help": "Keep a label when >= ceil(tau*k) members agree (0.8 -> 4 of 5)."}
    )
    vote_labels: str = field(
        default="own",
        metadata={
            "help": "Majority vote: own (paper section 5: member m keeps a prompt only when its own label "
            "is the winning one) or consensus (an ablation: every member trains on the winning label).",
            "choices": list(VOTE_LABELS),
        },
    )
    verifier_checks: list[str] = field(
        default_factory=lambda: ["move", "end"], metadata={"help": "Maze verifier checks: move, end."}
    )
    # --- training in rounds >= 1 (round 0 uses the TrainingArguments as given) ---
    round_max_steps: int = field(
        default=1500, metadata={"help": "Optimizer steps per self-improvement round."}
    )
    round_learning_rate: float | None = field(
        default=None, metadata={"help": "Peak LR of rounds; None = round 0's."}
    )
    round_warmup_steps: int = field(default=0, metadata={"help": "Warmup steps per round."})
    round_decay_steps: int = field(default=1500, metadata={"help": "Decay steps at the end of each round."})
    pack_length: int | None = field(
        default=None,
        metadata={
            "help": "Padding-free training batches: each batch's examples are packed into rows of this many "
            "tokens (at least the longest example), position_ids restart per example and no example "
            "attends to another; same examples and loss as padded batches for fewer tokens of compute "
            "(CPU, copy 1-10: 1.26x a bare padded loop). null (default) pads every row to the batch's "
            "longest example."
        },
    )
    completion_only_loss: bool = field(
        default=True,
        metadata={
            "help": "true (default): the loss covers the completion and its EOS only, the paper's setting "
            "(section 3). false: it also covers every prompt token after BOS, so each example supervises "
            "the prompt's tokens too; no answer is involved, so self-labelled rounds stay free of ground "
            "truth. The maze CPU recipes set false (docs/cpu-tuning.md, 'Mazes')."
        },
    )
    newest_round_probability: float = field(
        default=0.5, metadata={"help": "Sampling probability of the newest round in the training mix."}
    )
    min_round_examples: int | None = field(
        default=None,
        metadata={
            "help": "A round that keeps fewer labels than this is published but left out of the mix, so a "
            "near-empty round never takes half of it. None = 1 percent of examples_per_round."
        },
    )
    # --- evaluation ---
    eval_examples_per_difficulty: int = field(default=1024, metadata={"help": "Held-out problems per level."})
    eval_beyond: int = field(default=3, metadata={"help": "Evaluate this many levels past the frontier."})
    eval_batch_size: int = field(default=1024, metadata={"help": "Batch size of evaluation decoding."})
    precision: str = field(
        default="auto",
        metadata={
            "help": "Training precision: auto (bf16+tf32 on a GPU, fp32 on the CPU), native (bf16 where the "
            "hardware computes it: a GPU with bf16, or a CPU with AVX512-BF16 or AMX; else fp32), fp32 or bf16. "
            "Labelling and evaluation run in fp32 unless decode_precision says otherwise.",
            "choices": list(PRECISIONS),
        },
    )
    # --- store ---
    hub_dataset_id: str | None = field(
        default=None, metadata={"help": "Push each round's dataset to this Hub repo (branch round-N)."}
    )
    overwrite_hub_revision: bool = field(
        default=False, metadata={"help": "Allow re-pushing a round revision that is already complete."}
    )
    allow_config_change: bool = field(
        default=False,
        metadata={
            "help": "Continue a store although a setting that defines the experiment (EXPERIMENT_KEYS: task, "
            "D_0, model, filters, schedule, seeds, round-0 training) differs from the one its rounds ran with."
        },
    )
    resume_from: str | None = field(
        default=None, metadata={"help": "Start from a published round: user/name@round-3 or a local path."}
    )

    def __post_init__(self):
        unknown = [f for f in self.filters if f not in FILTERS]
        if unknown:
            raise ValueError(f"filters: unknown {unknown}; expected some of {list(FILTERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: {self.schedule!r} is not one of {list(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: {self.precision!r} is not one of {list(PRECISIONS)}")
        if self.round is not None and self.rounds is not None:
            raise ValueError("give either --round or --rounds, not both")
        if self.decode_precision not in DECODE_PRECISIONS:
            raise ValueError(
                f"decode_precision: {self.decode_precision!r} is not one of {list(DECODE_PRECISIONS)}"
            )
        if self.label_cache_implementation not in CACHE_IMPLEMENTATIONS:
            raise ValueError(
                f"label_cache_implementation: {self.label_cache_implementation!r} is not one of "
                f"{list(CACHE_IMPLEMENTATIONS)}"
            )
        if self.vote_labels not in VOTE_LABELS:
            raise ValueError(f"vote_labels: {self.vote_labels!r} is not one of {list(VOTE_LABELS)}")
        if not 0 < self.vote_threshold <= 1:
            raise ValueError(f"vote_threshold: {self.vote_threshold} is not in (0, 1]")
        if "majority_vote" in self.filters and self.num_members < 2:
            raise ValueError(f"majority_vote needs num_members >= 2, got {self.num_members}")
        if self.num_members < 1:
            raise ValueError(f"num_members: {self.num_members} must be >= 1")
        if self.resume_from is not None and not self.resume_from.strip():
            raise ValueError("resume_from: '' names no round; give user/name@round-N or a local round path")
        if self.num_rounds < 0:
            raise ValueError(f"num_rounds: {self.num_rounds} must be >= 0 (0 runs round 0 only)")
        if self.round is not None and self.round < 0:
            raise ValueError(f"round: {self.round} must be >= 0")
        if "none" in self.filters and len(self.filters) > 1:
            raise ValueError(f"filters: {self.filters} combines 'none' with other filters")
        if "majority_vote" in self.filters and self.filters[0] != "majority_vote":
            raise ValueError(f"filters: {self.filters}: majority_vote must come first (it picks the label)")
        bad_checks = [c for c in self.verifier_checks if c not in ("move", "end")]
        if bad_checks or not self.verifier_checks:
            raise ValueError(
                f"verifier_checks: {self.verifier_checks}; expected a non-empty subset of ['move', 'end']"
            )
        if self.length_filter_tau < 1:
            raise ValueError(f"length_filter_tau: {self.length_filter_tau} must be >= 1 token")
        for name in (
            "examples_per_round",
            "label_batch_size",
            "eval_batch_size",
            "eval_examples_per_difficulty",
            "round_max_steps",
            "difficulty_step",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: {getattr(self, name)} must be >= 1")
        if self.pack_length is not None and self.pack_length < 1:
            raise ValueError(
                f"pack_length: {self.pack_length} must be >= 1 token, or null for padded batches"
            )
        if not 0 < self.newest_round_probability < 1:
            raise ValueError(f"newest_round_probability: {self.newest_round_probability} is not in (0, 1)")

    @property
    def min_kept(self) -> int:
        """Labels a round must keep to join the training mix."""
        if self.min_round_examples is not None:
            return self.min_round_examples
        return max(1, self.examples_per_round // 100)

    @property
    def votes_needed(self) -> int:
        """ceil(vote_threshold * num_members), computed by the filter itself."""
        return vote_threshold(self.vote_threshold, self.num_members)

    def round_range(self, next_round: int) -> tuple[int, int]:
        """Rounds (first, last) this invocation runs, given the first round not yet completed."""
        if self.round is not None:
            return self.round, self.round
        if self.rounds is not None:
            try:
                a, b = (int(x) for x in self.rounds.split(":"))
            except ValueError:
                raise ValueError(f"rounds: {self.rounds!r} is not of the form A:B (e.g. 0:5)") from None
            if a < 0 or b < a:
                raise ValueError(f"rounds: {self.rounds!r} needs 0 <= A <= B")
            return a, b
        return next_round, self.num_rounds


@dataclass
class SITrainingArguments(TrainingArguments):
    """TrainingArguments with the paper's defaults (appendix C.3)."""

    output_dir: str = field(
        default="outputs/run", metadata={"help": "Local store of rounds (always written)."}
    )
    lr_scheduler_type: str = field(
        default="warmup_stable_decay", metadata={"help": "Paper: warmup-stable-decay."}
    )
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1."})
    adam_beta2: float = field(
        default=0.99, metadata={"help": "AdamW beta2 (paper 0.99; authors' code 0.98)."}
    )
    adam_epsilon: float = field(default=1e-12, metadata={"help": "AdamW epsilon (paper: 1e-12)."})
    weight_decay: float = field(default=0.1, metadata={"help": "Paper 0.1; authors' code 0.01."})
    save_strategy: str = field(
        default="no",
        metadata={"help": "Set by the round loop from save_steps (steps when save_steps > 0, else no)."},
    )
    save_steps: float = field(
        default=0,
        metadata={
            "help": "In-round checkpoints: a Trainer checkpoint every N optimizer steps of every round (a float "
            "in (0, 1): that fraction of the round's steps), kept under output_dir/work/ until the round is "
            "published; a rerun after a crash resumes the round from the latest. 0 = none (a crash "
            "restarts the round's training)."
        },
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "The collator reads string columns."}
    )
    logging_steps: float = field(default=50, metadata={"help": "Log every N steps."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "D_0 is generated in the main process."})


def check_training_arguments(args: TrainingArguments) -> None:
    """Refuse the TrainingArguments fields the round loop sets itself, saying what to use instead,
    rather than drop them silently. (Checked once per run: the loop's own per-round copies set bf16.)"""
    refused = {
        "push_to_hub": (
            bool(args.push_to_hub),
            "rounds are pushed by the store: set hub_model_id (checkpoints) and/or hub_dataset_id (labels)",
        ),
        "resume_from_checkpoint": (
            args.resume_from_checkpoint is not None,
            "rerun the same command: the run resumes from its last round, its staged labels and the last "
            "in-round checkpoint by itself (save_steps sets how often one is saved); --resume_from starts "
            "from another run's round",
        ),
        "save_strategy": (
            str(getattr(args.save_strategy, "value", args.save_strategy)) not in ("no", "steps"),
            "set save_steps: N for an in-round checkpoint every N optimizer steps (the round loop sets "
            "save_strategy from it)",
        ),
        "save_only_model": (
            bool(args.save_only_model),
            "in-round checkpoints exist to resume a round, which needs the optimizer, scheduler and RNG states",
        ),
        "bf16": (bool(args.bf16), "set precision: bf16 (precision: auto picks bf16 on a GPU)"),
        "fp16": (bool(args.fp16), "fp16 is not supported; set precision: bf16 or fp32"),
        "hub_token": (
            args.hub_token is not None,
            "it would end up in logs and configs; set HF_TOKEN or run `hf auth login` instead",
        ),
    }
    for name, (is_set, instead) in refused.items():
        if is_set:
            shown = "<hidden>" if name == "hub_token" else repr(getattr(args, name))
            raise ValueError(f"{name}={shown} is not used by si-hf: {instead}")
    steps = args.save_steps
    if isinstance(steps, bool) or not (steps == 0 or 0 < steps < 1 or (steps >= 1 and steps == int(steps))):
        raise ValueError(
            f"save_steps={steps!r}: expected 0 (no in-round checkpoint), an int >= 1 (a checkpoint every N "
            "optimizer steps) or a float in (0, 1) (that fraction of each round's steps)"
        )
    if steps == 0 and str(getattr(args.save_strategy, "value", args.save_strategy)) == "steps":
        raise ValueError(
            "save_strategy='steps' with save_steps=0: set save_steps: N (> 0) for in-round checkpoints"
        )


# What defines an experiment: a store continued with another value of one of these would mix two
# experiments in one run, so `run_round.py` refuses it unless --allow_config_change is given. Every
# other argument may change between invocations (docs: README, "What the store guarantees").
EXPERIMENT_KEYS = {
    "task": (
        "task",
        "d0",
        "num_d0_examples",
        "maze_num_nodes",
        "maze_num_hops",
        "d0_operand_lengths",
        "data_seed_base",
    ),
    "self_improve": (
        "schedule",
        "difficulty_step",
        "accelerate_threshold",
        *LABEL_SETTINGS,  # what a round's labels depend on
        "newest_round_probability",
        "min_round_examples",
        "precision",
        "completion_only_loss",
    ),
    "model": (
        "model_name_or_path",
        "model_revision",
        "preset",
        "model_overrides",
        "position_encoding",
        "attn_implementation",
        "dtype",
        "use_peft",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "lora_target_modules",
        "lora_modules_to_save",
        "use_rslora",
        "use_dora",
        "tokenizer_name",
    ),
    "training": (
        "seed",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_steps",
        "learning_rate",
        "warmup_steps",
        "lr_scheduler_type",
        "lr_scheduler_kwargs",
        "adam_beta1",
        "adam_beta2",
        "adam_epsilon",
        "weight_decay",
        "max_grad_norm",
    ),
}


# EXPERIMENT_KEYS settings added after stores were written: the value those stores ran with.
KEYS_ADDED_LATER = {
    "completion_only_loss": True,
    "d0_operand_lengths": "independent",
    **LABEL_SETTINGS_ADDED_LATER,
}


def config_changes(recorded: dict, current: dict) -> list[str]:
    """`section.key: recorded -> current` for every EXPERIMENT_KEYS setting that differs. Both are
    config snapshots (`si_hf.rounds.config_snapshot`). A key a recorded section lacks (an older
    version of si-hf did not have it) counts as the value that version ran with (KEYS_ADDED_LATER),
    or is not compared when there is none."""
    current = json.loads(json.dumps(current, default=str))  # compare as they are stored
    changes = []
    for section, keys in EXPERIMENT_KEYS.items():
        old, new = recorded.get(section, {}), current.get(section, {})
        if section in recorded:
            old = {**{k: v for k, v in KEYS_ADDED_LATER.items() if k in keys}, **old}
        for key in keys:
            if key in old and key in new and old[key] != new[key]:
                changes.append(f"{section}.{key}: {old[key]!r} -> {new[key]!r}")
    return changes
