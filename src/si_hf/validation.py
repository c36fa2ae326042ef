"""Every argument of a run checked before any work, each by the module that owns what it names.

`configs` checks what a value alone must be (an int >= 1, a share in (0, 1]); here the run's arguments
meet the registries and the modules behind them: the plugins are imported, the task is built with its
options (`si_hf.tasks.task_from_args`), D_0 must be one of its difficulties, the schedule must fit it
(`si_hf.schedules`), the filters and their options must hold (`si_hf.filtering.check_filters`), and
the choices of the decoding and precision options are the ones their modules implement. Each error
names the YAML / CLI key, the bad value and what is expected.
"""

from __future__ import annotations

from si_hf.carries import check_carry_sets
from si_hf.configs import check_training_arguments
from si_hf.filtering import FILTERS, VOTE_LABELS, VOTE_VARIANTS, check_filters, check_vote_variant
from si_hf.labeling import CACHE_IMPLEMENTATIONS, check_cache_implementation
from si_hf.noise import NOISE_KINDS, check_noise
from si_hf.precision import DECODE_PRECISIONS, PRECISIONS, check_decode_precision, check_precision
from si_hf.registry import load_plugins
from si_hf.round_data import LABEL_SOURCES, check_label_source
from si_hf.schedules import SCHEDULES, check_compatible, check_planned_rounds
from si_hf.tasks import TASKS, Task, task_from_args
from si_hf.tasks.addition import D0_OPERAND_LENGTHS
from si_hf.training import ROUND_INITS, check_round_init

# Options whose values are a fixed set, for --help (each is checked by the module that implements it).
CHOICES = {
    "label_cache_implementation": CACHE_IMPLEMENTATIONS,
    "decode_precision": DECODE_PRECISIONS,
    "precision": PRECISIONS,
    "vote_labels": VOTE_LABELS,
    "vote_variant": tuple(VOTE_VARIANTS),
    "round_init": ROUND_INITS,
    "d0_operand_lengths": D0_OPERAND_LENGTHS,
    "noise_kind": NOISE_KINDS,
    "label_source": LABEL_SOURCES,
}
# Options that name registered entries: --help lists what is registered.
REGISTERED = {"task": TASKS, "schedule": SCHEDULES, "filters": FILTERS}


def _check_plugin_options(si, used: dict[str, str]) -> None:
    """`plugin_options` holds a mapping per entry the run uses (`used`: entry name -> its kind)."""
    for name, value in (si.plugin_options or {}).items():
        if name not in used:
            registered = {*TASKS.names(), *SCHEDULES.names(), *FILTERS.names()}
            what = (
                "names no registered task, schedule or filter"
                if name not in registered
                else ("is registered but this run does not use it")
            )
            raise ValueError(
                f"plugin_options: {name!r} {what}; the run uses {sorted(used)} (task, schedule, filters)"
            )
        if not isinstance(value, dict):
            raise ValueError(
                f"plugin_options.{name}: {value!r} is not a mapping of options, e.g. {{width: 2}}"
            )


def validate(task_args, si, model_args, train_args) -> Task:
    """Raise ValueError naming the first bad argument; return the run's task."""
    load_plugins(si.plugins)
    _check_plugin_options(
        si, {task_args.task: "task", si.schedule: "schedule", **{f: "filter" for f in si.filters}}
    )
    check_precision(si.precision)
    check_decode_precision(si.decode_precision)
    check_cache_implementation(si.label_cache_implementation)
    task = task_from_args(task_args, si)
    entry = TASKS.get(task_args.task)
    if entry.validate is not None:
        entry.validate(si, task)
    try:
        task.parse_difficulty(task_args.d0)
    except ValueError as err:
        raise ValueError(f"d0: {task_args.d0!r}: {err}") from None
    SCHEDULES.refuse_unused_options(si, si.schedule)
    check_compatible(task, si)
    schedule = SCHEDULES.get(si.schedule)
    if schedule.validate is not None:
        schedule.validate(si, task)
    check_filters(si, task)
    check_label_source(si.label_source)
    check_noise(si.noise_kind, si.noise_fraction, si.noise_rounds, num_rounds=si.num_rounds, task=task)
    check_carry_sets(si.eval_carry_sets, task)
    check_vote_variant(si)
    check_round_init(si.round_init)
    check_planned_rounds(task, si, task.parse_difficulty(task_args.d0), si.round_range(0)[1])
    check_training_arguments(train_args)
    return task


def describe_registered(parser) -> None:
    """Put what is registered (and the fixed choices) into the --help of the options that name them."""
    for action in parser._actions:
        if action.dest in REGISTERED:
            action.help = f"{action.help} Registered: {REGISTERED[action.dest].describe()}.".replace(
                "%", "%%"
            )
        elif action.dest in CHOICES:
            action.choices = list(CHOICES[action.dest])
