"""Run arguments: four dataclasses parsed together by `trl.TrlParser` (YAML + CLI overrides).

`TaskArguments` says what is learned, `SelfImproveArguments` how rounds are scheduled, labelled,
filtered, evaluated and published, `ModelArguments` which network learns it, and
`SITrainingArguments` (a `transformers.TrainingArguments`) how round 0 trains; rounds >= 1 reuse the
training arguments with the `round_*` overrides. Field names are unique across the four classes
because argparse sees them as one flat namespace.

A leaf: plain argument classes that check what each value alone must be (types, ranges). What a value
means to the rest of si-hf (a registered task, filter or schedule and their options, a precision the
hardware has) is checked by the module that owns it, all before any work: `si_hf.validation`. What
defines an experiment (and may not change between invocations) is `si_hf.experiment`.

Changed defaults against transformers / TRL (the paper's, appendix C.3): AdamW betas (0.9, 0.99),
epsilon 1e-12, weight decay 0.1, the warmup-stable-decay schedule, no saving unless `save_steps`,
`remove_unused_columns: false`; LoRA r 64 / alpha 128 on every linear layer, sdpa attention.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transformers import TrainingArguments
from trl import ModelConfig


def _at_least(owner, names: tuple[str, ...], minimum: int) -> None:
    for name in names:
        value = getattr(owner, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
            raise ValueError(f"{name}: {value!r} must be an int >= {minimum}")


def _in_unit_interval(owner, name: str, *, low_open: bool = True, high_open: bool = False) -> None:
    value = getattr(owner, name)
    low_ok = value > 0 if low_open else value >= 0
    high_ok = value < 1 if high_open else value <= 1
    if isinstance(value, bool) or not isinstance(value, int | float) or not (low_ok and high_ok):
        span = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"{name}: {value!r} is not in {span}")


def parse_mapping(value, name: str, example: str) -> dict | None:
    """A YAML mapping, or on the command line a JSON object; None stays None."""
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            pass  # still a string: refused below with the value given
    if parsed is not None and not isinstance(parsed, dict):
        raise ValueError(
            f"{name}: {value!r} is not a mapping; expected {example} (a JSON object on the command line)"
        )
    return parsed


@dataclass
class TaskArguments:
    task: str = field(
        default="reverse_addition",
        metadata={"help": "The task (registered in si_hf.tasks.TASKS; --help lists them)."},
    )
    d0: str = field(
        default="16",
        metadata={
            "help": "Largest difficulty of the supervised set D_0: a level, or for multiplication n x n as '5x5'."
        },
    )
    num_d0_examples: int = field(
        default=2_000_000,
        metadata={"help": "Size of the D_0 pool, generated on the fly from `data_seed_base`."},
    )
    maze_num_nodes: int = field(default=30, metadata={"help": "maze_hops: nodes per maze."})
    maze_num_hops: int = field(default=9, metadata={"help": "maze_nodes: hops between start and end."})
    d0_operand_lengths: str = field(
        default="independent",
        metadata={
            "help": "reverse_addition / forward_addition: how D_0 draws the two operand lengths: each uniformly "
            "in 1..d0 (independent, the authors' scripts: level d has weight 2d - 1), one length for both "
            "(equal, section 3's wording: every level equally often), or for both the longer of two independent "
            "lengths (equal_weighted: equal operands, independent's mix of levels). Rounds and evaluation "
            "always use equal lengths."
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
        if not isinstance(self.task, str):
            raise ValueError(f"task: {self.task!r} is not a task name; give one registered task, e.g. copy")
        if isinstance(self.d0, bool) or not isinstance(self.d0, str | int):
            raise ValueError(f"d0: {self.d0!r} is not a difficulty; expected a level such as '16' or '5x5'")
        _at_least(self, ("num_d0_examples",), 1)


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
        self.model_overrides = parse_mapping(
            self.model_overrides, "model_overrides", 'config fields, e.g. {"num_hidden_layers": 4}'
        )
        if self.load_in_8bit or self.load_in_4bit:
            raise ValueError(
                "load_in_8bit / load_in_4bit: quantized loading is not supported by si-hf; "
                "use dtype: bfloat16 with use_peft: true"
            )
        if self.lora_task_type != "CAUSAL_LM":
            raise ValueError(f"lora_task_type: {self.lora_task_type!r}; si-hf trains causal LMs (CAUSAL_LM)")


@dataclass
class EvaluationArguments:
    """How each round is evaluated: exact match on held-out problems per level, from the easiest to
    `eval_beyond` levels past the frontier, or with `eval_until_below` as far as the model still
    solves (figures 9 and 10). Parsed with `SelfImproveArguments`, which inherits them."""

    eval_examples_per_difficulty: int = field(default=1024, metadata={"help": "Held-out problems per level."})
    eval_beyond: int = field(default=3, metadata={"help": "Evaluate this many levels past the frontier."})
    eval_until_below: float | None = field(
        default=None,
        metadata={
            "help": "After the eval_beyond levels, go on one level at a time (one ring of the n x m grid) while "
            "the last one's exact match is >= this floor, up to eval_max_beyond past the frontier: figure 9's "
            "margin and the accelerated schedule then never meet the window's edge. null: the fixed window."
        },
    )
    eval_max_beyond: int = field(
        default=40, metadata={"help": "The most levels past the frontier that eval_until_below evaluates."}
    )
    eval_batch_size: int = field(default=1024, metadata={"help": "Batch size of evaluation decoding."})
    eval_carry_sets: list[int] = field(
        default_factory=list,
        metadata={
            "help": "Addition only (appendix B.8): after each round, exact match on held-out problems of these "
            "operand lengths grouped by their longest cascading carry chain (0..L); [] = off."
        },
    )
    eval_carry_per_chain: int = field(
        default=50, metadata={"help": "eval_carry_sets: problems per operand length and longest chain."}
    )

    def check_evaluation(self) -> None:
        _at_least(self, ("eval_beyond", "eval_max_beyond"), 0)
        _at_least(self, ("eval_batch_size", "eval_examples_per_difficulty", "eval_carry_per_chain"), 1)
        if isinstance(self.eval_carry_sets, int):
            self.eval_carry_sets = [self.eval_carry_sets]
        bad = [n for n in self.eval_carry_sets if isinstance(n, bool) or not isinstance(n, int) or n < 1]
        if bad:
            raise ValueError(
                f"eval_carry_sets: {self.eval_carry_sets!r}; expected operand lengths, ints >= 1"
            )
        if self.eval_until_below is not None:
            _in_unit_interval(self, "eval_until_below")
            if self.eval_max_beyond < self.eval_beyond:
                raise ValueError(
                    f"eval_max_beyond: {self.eval_max_beyond} is below eval_beyond: {self.eval_beyond}; expected "
                    "the cap of eval_until_below to be at least the fixed window"
                )


@dataclass
class StoreArguments:
    """Where rounds go besides the local store, and how a store is continued or started from another
    run's round. Parsed with `SelfImproveArguments`, which inherits them."""

    hub_dataset_id: str | None = field(
        default=None, metadata={"help": "Push each round's dataset to this Hub repo (branch round-N)."}
    )
    overwrite_hub_revision: bool = field(
        default=False, metadata={"help": "Allow re-pushing a round revision that is already complete."}
    )
    allow_config_change: bool = field(
        default=False,
        metadata={
            "help": "Continue a store although a setting that defines the experiment (si_hf.experiment: task, "
            "D_0, model, filters, schedule, seeds, round-0 training) differs from the one its rounds ran with."
        },
    )
    resume_from: str | None = field(
        default=None, metadata={"help": "Start from a published round: user/name@round-3 or a local path."}
    )


@dataclass
class LaboratoryArguments:
    """The avalanche laboratory's instruments (docs/experiments.md): a graded oracle check, truth-labelled
    control rounds, synthetic label noise (appendix B.6-B.7) and memorised mistakes (figure 26). Parsed
    with `SelfImproveArguments`, which inherits them; their defaults leave the method as the paper runs it."""

    oracle_false_accept: float = field(
        default=0.0,
        metadata={
            "help": "oracle (a research instrument, never the method): keep each wrong label with this "
            "probability q (1 keeps every finished label)."
        },
    )
    oracle_false_reject: float = field(
        default=0.0, metadata={"help": "oracle: drop each right label with this probability p."}
    )
    label_source: str = field(
        default="model",
        metadata={
            "help": "model (the method: the previous round's models label greedily) or truth (a control: "
            "the task's true answers; with noise_kind uniform the random-label experiment of B.7)."
        },
    )
    noise_kind: str = field(
        default="uniform",
        metadata={
            "help": "Label noise injected in noise_rounds (B.6.2): uniform, perturb, drop_digits or drop_perturb."
        },
    )
    noise_fraction: float = field(
        default=0.0, metadata={"help": "Fraction of a noise round's kept labels replaced (0-1)."}
    )
    noise_rounds: list[int] = field(
        default_factory=list,
        metadata={"help": "Rounds (>= 1) whose kept labels get noise, after the filters; [] = none."},
    )
    memorised_eval_examples: int = field(
        default=500,
        metadata={
            "help": "Figure 26: after each round, the model answers up to this many wrong training labels of "
            "every earlier round (share now right, share reproduced); 0 = off."
        },
    )


@dataclass
class SelfImproveArguments(LaboratoryArguments, EvaluationArguments, StoreArguments):
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
        metadata={"help": "Which levels each round labels (registered in si_hf.schedules.SCHEDULES)."},
    )
    difficulty_step: int = field(default=1, metadata={"help": "Levels added per round (maze_nodes: 3)."})
    accelerate_threshold: float = field(
        default=0.99, metadata={"help": "Accelerated schedules: exact match that unlocks a level."}
    )
    # --- self-labelling ---
    examples_per_round: int = field(default=50_000, metadata={"help": "N_r: prompts labelled per round."})
    label_batch_size: int = field(default=1024, metadata={"help": "Greedy labelling batch size."})
    label_cache_implementation: str = field(
        default="dynamic",
        metadata={
            "help": "KV cache of greedy decoding (labels and evaluation): dynamic (attention over exactly the "
            "tokens so far, in one buffer per batch), concat (transformers' DynamicCache: the same labels, "
            "concatenated every step) or static (a max-length cache that generate compiles on a GPU; a "
            "near-tie may go the other way)."
        },
    )
    decode_precision: str = field(
        default="fp32",
        metadata={
            "help": "Precision of greedy decoding (labels and evaluation): fp32 (the weights' own dtype, no "
            "autocast), bf16 (bf16 autocast: near-ties may go other ways than fp32) or native (bf16 where "
            "the hardware computes it)."
        },
    )
    filters: list[str] = field(
        default_factory=lambda: ["none"],
        metadata={
            "help": "Label filters, applied in order (registered in si_hf.filtering.FILTERS). All but none "
            "drop run-on outputs."
        },
    )
    length_filter_tau: int = field(
        default=2,
        metadata={"help": "length: drop labels at least this many tokens shorter than the batch's longest."},
    )
    num_members: int = field(
        default=1, metadata={"help": "k models trained with different seeds (majority vote needs k >= 2)."}
    )
    vote_threshold: float = field(
        default=0.8,
        metadata={"help": "majority_vote: keep a label when >= ceil(tau*k) members agree (0.8 -> 4 of 5)."},
    )
    vote_labels: str = field(
        default="own",
        metadata={
            "help": "majority_vote: own (section 5: member m keeps a prompt only when its own label is the "
            "winning one) or consensus (an ablation: every member trains on the winning label)."
        },
    )
    vote_variant: str = field(
        default="independent",
        metadata={
            "help": "Appendix B.2.4 (table 2): independent (the paper's setting: k seeds, each member trains on "
            "its own labels), shared_data (every member trains on one voted dataset: member 0's prompts, the "
            "winning labels), shared_seed (every member starts from member 0's round-0 model, then its own "
            "labels) or more_data (the baseline: one model, k x examples_per_round prompts, no vote)."
        },
    )
    verifier_checks: list[str] = field(
        default_factory=lambda: ["move", "end"], metadata={"help": "verifier: maze checks, move and/or end."}
    )
    # --- training in rounds >= 1 (round 0 uses the TrainingArguments as given) ---
    round_init: str = field(
        default="continue",
        metadata={
            "help": "continue (round r starts from round r-1's model) or base (round r starts again from the "
            "round-0 model, or the pretrained base with fresh LoRA adapters, on D_0 and every kept round, with "
            "the same mix and step budget): the restart-or-continue question of expert iteration."
        },
    )
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
            "attends to another: the same examples and loss as padded batches for fewer tokens of compute. "
            "null (default) pads every row to the batch's longest example."
        },
    )
    completion_only_loss: bool = field(
        default=True,
        metadata={
            "help": "true (default): the loss covers the completion and its EOS only, the paper's setting "
            "(section 3). false: it also covers every prompt token after BOS; no answer is involved, so "
            "self-labelled rounds stay free of ground truth."
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
    precision: str = field(
        default="auto",
        metadata={
            "help": "Training precision: auto (bf16+tf32 on a GPU, fp32 on the CPU), native (bf16 where the "
            "hardware computes it: a GPU with bf16, or a CPU with AVX512-BF16 or AMX; else fp32), fp32 or "
            "bf16. Labelling and evaluation follow decode_precision."
        },
    )
    # --- extensions (docs/extending.md) ---
    plugins: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Modules to import before the run (dotted names or .py paths): they register tasks, "
            "filters and schedules of their own."
        },
    )
    plugin_options: dict | str | None = field(
        default=None,
        metadata={
            "help": "Options of registered entries that have no field of their own, by entry name, e.g. "
            "{my_filter: {slack: 1}} (a JSON object on the command line)."
        },
    )

    def __post_init__(self):
        for name in (
            "schedule",
            "decode_precision",
            "label_cache_implementation",
            "vote_labels",
            "vote_variant",
            "round_init",
            "precision",
        ):
            if not isinstance(getattr(self, name), str):
                raise ValueError(
                    f"{name}: {getattr(self, name)!r} is not a name; give one, e.g. {name}: <name>"
                )
        if self.round is not None and self.rounds is not None:
            raise ValueError(
                f"round: {self.round} and rounds: {self.rounds!r}: give either round or rounds, not both"
            )
        _at_least(self, ("round", "num_rounds", "round_warmup_steps", "round_decay_steps"), 0)
        self.check_evaluation()
        _at_least(self, ("min_round_examples", "memorised_eval_examples"), 0)
        _at_least(
            self,
            (
                "examples_per_round",
                "label_batch_size",
                "round_max_steps",
                "difficulty_step",
                "num_members",
                "length_filter_tau",
                "pack_length",
            ),
            1,
        )
        if self.rounds is not None:
            self.round_range(0)  # refuses a malformed A:B now
        last = self.round if self.round is not None else (self.round_range(0)[1] if self.rounds else None)
        if last is not None and last > self.num_rounds:
            which = f"round: {self.round}" if self.round is not None else f"rounds: {self.rounds!r}"
            raise ValueError(f"{which} goes past num_rounds: {self.num_rounds}; raise num_rounds to run it")
        if self.round_warmup_steps + self.round_decay_steps > self.round_max_steps:
            raise ValueError(
                f"round_warmup_steps: {self.round_warmup_steps} + round_decay_steps: {self.round_decay_steps} "
                f"exceed round_max_steps: {self.round_max_steps}; expected warmup + decay <= round_max_steps"
            )
        if self.resume_from is not None and not self.resume_from.strip():
            raise ValueError("resume_from: '' names no round; give user/name@round-N or a local round path")
        for name in ("vote_threshold", "accelerate_threshold"):
            _in_unit_interval(self, name)
        _in_unit_interval(self, "newest_round_probability", high_open=True)
        rate = self.round_learning_rate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0):
            raise ValueError(f"round_learning_rate: {rate!r} must be a number > 0, or null for round 0's")
        if isinstance(self.filters, str) or not all(isinstance(f, str) for f in self.filters):
            raise ValueError(f"filters: {self.filters!r} is not a list of filter names, e.g. [length]")
        if isinstance(self.plugins, str):
            self.plugins = [self.plugins]
        self.plugin_options = parse_mapping(
            self.plugin_options, "plugin_options", "{entry name: {option: value}}"
        )

    @property
    def min_kept(self) -> int:
        """Labels a round must keep to join the training mix."""
        if self.min_round_examples is not None:
            return self.min_round_examples
        return max(1, self.examples_per_round // 100)

    def options_of(self, name: str) -> dict:
        """The `plugin_options` of one registered entry ({} when none are given)."""
        return dict((self.plugin_options or {}).get(name) or {})

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
    """Every TrainingArguments field si-hf reads, checked before any work: the fields the round loop sets
    itself are refused (saying what to use instead, rather than dropping them silently), the save cadence
    and the ranges of what round 0 trains with. (Checked once per run: the loop's own per-round copies
    set bf16.)"""
    _refuse_loop_owned(args)
    _check_save_steps(args)
    _check_training_ranges(args)


def _refuse_loop_owned(args: TrainingArguments) -> None:
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


def _check_save_steps(args: TrainingArguments) -> None:
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


MAX_SEED = 2**31 - 1_000_000  # numpy and torch take seeds < 2**32; rounds add 1000 * member + round


def _check_training_ranges(args: TrainingArguments) -> None:
    if not isinstance(args.output_dir, str) or not args.output_dir.strip():
        raise ValueError(f"output_dir: {args.output_dir!r} names no folder; give the run's own folder")
    if args.max_steps is None or args.max_steps < 1:
        raise ValueError(
            f"max_steps: {args.max_steps!r} must be an int >= 1: round 0 trains a number of optimizer steps"
        )
    _at_least(args, ("per_device_train_batch_size", "gradient_accumulation_steps"), 1)
    if not isinstance(args.seed, int) or not 0 <= args.seed <= MAX_SEED:
        raise ValueError(f"seed: {args.seed!r} must be an int in 0..{MAX_SEED}")
    if not args.learning_rate > 0:
        raise ValueError(f"learning_rate: {args.learning_rate!r} must be > 0")
    for name in ("warmup_steps", "weight_decay", "max_grad_norm"):
        if getattr(args, name) < 0:
            raise ValueError(f"{name}: {getattr(args, name)!r} must be >= 0")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(args, name) < 1:
            raise ValueError(f"{name}: {getattr(args, name)!r} is not in [0, 1)")
    scheduler = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
    decay = (args.lr_scheduler_kwargs or {}).get("num_decay_steps")
    if scheduler == "warmup_stable_decay" and decay is not None:
        warmup = args.warmup_steps if args.warmup_steps >= 1 else args.warmup_steps * args.max_steps
        if not isinstance(decay, int) or decay < 0 or warmup + decay > args.max_steps:
            raise ValueError(
                f"lr_scheduler_kwargs.num_decay_steps: {decay!r} with warmup_steps: {args.warmup_steps!r} does "
                f"not fit in max_steps: {args.max_steps}; expected an int >= 0 with warmup + decay <= max_steps"
            )
