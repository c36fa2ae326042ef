"""Trackers (`report_to`): one tracker run per member across all its rounds, on one step axis.

Every round trains a fresh Trainer whose `global_step` starts at 0, and round 0 and the later rounds
train different numbers of steps. So the round Trainers get `report_to: []` (`round_training_args`) and a
`RoundTracker` instead: a `TrainerCallback` holding the transformers integrations that `report_to` names
(tensorboard, wandb, mlflow, ...), which forwards every Trainer event to them with the step moved past
the member's earlier rounds. Once the round is evaluated and published, `RunTracking.log_round` sends
them what the round measured, at the round's last step, then the Trainer's train end it held back.

TensorBoard writes `<output_dir>/runs/member-M` (or `$TENSORBOARD_LOGGING_DIR/member-M`), outside the
work directory that is deleted after each round, so `tensorboard --logdir <output_dir>/runs` shows one
run per member. W&B keeps one run per process, so the member's run is selected before its round trains:
a stable id per output directory and member (`WANDB_RUN_ID`, resumed with `WANDB_RESUME=allow`), so reruns
and later invocations continue the same run.
"""

from __future__ import annotations

import copy
import hashlib
import os
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.integrations import TensorBoardCallback, get_reporting_integration_callbacks

from si_hf.layout import RunPaths, member_dirname

# How to get each integration's package (the others: see the transformers docs for `report_to`).
INSTALL = {
    "tensorboard": "pip install -e '.[dev]' (or pip install tensorboard)",
    "wandb": "pip install -e '.[wandb]' (or pip install wandb)",
}


def check_report_to(report_to: list[str]) -> None:
    """Fail before any work when an integration of `report_to` is unknown or its package is missing."""
    try:
        classes = get_reporting_integration_callbacks(report_to)
    except ValueError as e:
        raise ValueError(f"report_to={report_to!r}: {e}") from None
    for name, cls in zip(report_to, classes):
        try:
            cls()
        except (RuntimeError, ImportError) as e:
            hint = INSTALL.get(name, f"install the package of the {name} integration")
            raise ValueError(f"report_to={report_to!r}: {name} is not installed ({e}); {hint}") from None


def round_scalars(metrics: dict) -> dict[str, float]:
    """What a round measured, as the flat scalars trackers take. Evaluation per difficulty is named
    `eval_*` (shown under eval/ by the integrations), labelling `labels/*` (under train/)."""
    out = {"round": metrics["round"], "eval_accuracy_overall": metrics["overall"]}
    for name in ("accuracy", "finished", "move_valid", "end_valid"):
        for key, value in (metrics.get(name) or {}).items():
            out[f"eval_{name}/{key}"] = value
    if metrics.get("n_generated"):
        out["labels/kept_fraction"] = metrics["n_kept"] / metrics["n_generated"]
    for key, name in (
        ("n_kept", "kept"),
        ("data_accuracy", "data_accuracy"),
        ("label_examples_per_second", "examples_per_second"),
    ):
        if metrics.get(key) is not None:
            out[f"labels/{name}"] = metrics[key]
    for length, chains in (metrics.get("carry_accuracy") or {}).items():  # appendix B.8
        for chain, value in chains.items():
            out[f"eval_carry_accuracy/L{length}-chain-{chain}"] = value
    for k, shares in (metrics.get("memorised") or {}).items():  # figure 26, per earlier round k
        out[f"eval_memorised_right/round-{k}"] = shares["right"]
        out[f"eval_memorised_reproduced/round-{k}"] = shares["reproduced"]
    return out


def steps_before(history, r: int, member: int, max_steps: int, round_max_steps: int) -> int:
    """Optimizer steps of the member's rounds before r: the recorded ones of the rounds this store holds,
    the configured ones for rounds it does not (those of a `resume_from` source)."""
    total = 0
    for k in range(r):
        recorded = None if k <= history.source_round else history.metrics(k, member).get("train_steps")
        total += recorded or (max_steps if k == 0 else round_max_steps)
    return total


class RoundTracker(TrainerCallback):
    """The `report_to` integrations for one round of one member, their step moved by `offset`."""

    def __init__(self, report_to: list[str], log_dir: Path, offset: int, round: int):
        self.callbacks = [cls() for cls in get_reporting_integration_callbacks(report_to)]
        self.log_dir, self.offset, self.round = log_dir, offset, round
        self._train_end = None

    def _forward(self, event: str, args, state, control, **kwargs) -> None:
        moved = copy.copy(state)
        moved.global_step = state.global_step + self.offset
        if kwargs.get("logs") is not None:
            kwargs["logs"] = {**kwargs["logs"], "round": self.round}
        for callback in self.callbacks:
            getattr(callback, event)(args, moved, control, **kwargs)

    def on_train_begin(self, args, state, control, **kwargs):
        for callback in self.callbacks:
            if isinstance(callback, TensorBoardCallback) and callback.tb_writer is None:
                # Events an earlier, killed attempt logged past the step this one starts from are dropped
                # by TensorBoard (purge_step); the steps before it were trained identically.
                callback.tb_writer = _summary_writer(self.log_dir, self.offset + state.global_step + 1)
        self._forward("on_train_begin", args, state, control, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        # Held back until the round's own metrics are logged (`log_round`): integrations close their
        # writer or run at train end. Only what they read is kept, not the optimizer.
        self._train_end = (args, state, control, {k: kwargs.get(k) for k in ("model", "processing_class")})

    def log_round(self, metrics: dict) -> None:
        if self._train_end is None:
            raise RuntimeError(f"round {self.round}: log_round before the round's training ended")
        args, state, control, kwargs = self._train_end
        self._forward("on_log", args, state, control, logs=round_scalars(metrics), **kwargs)
        self._forward("on_train_end", args, state, control, **kwargs)
        self._train_end = None


def _forwarder(event: str):
    def forward(self, args, state, control, **kwargs):
        self._forward(event, args, state, control, **kwargs)

    forward.__name__ = event
    return forward


for _event in [name for name in vars(TrainerCallback) if name.startswith("on_")]:
    if _event not in vars(RoundTracker):
        setattr(RoundTracker, _event, _forwarder(_event))


def _after_existing_event_files(log_dir: Path) -> None:
    """TensorBoard reads a folder's event files in name order, and a name starts with its creation time
    in whole seconds, then host and pid. A rerun within the same second as the attempt it resumes could
    sort before it (a smaller pid), and the reader would then purge the rerun's events: wait for a later
    second than every file already there."""
    stamps = []
    for path in Path(log_dir).glob("events.out.tfevents.*"):
        part = path.name.split(".")[3]
        if part.isdigit():
            stamps.append(int(part))
    if stamps and time.time() < max(stamps) + 1:
        time.sleep(max(stamps) + 1 - time.time())


def _summary_writer(log_dir: Path, purge_step: int):
    _after_existing_event_files(log_dir)
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the other writer TensorBoardCallback accepts
        from tensorboardX import SummaryWriter
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


class RunTracking:
    """The trackers of a run: a `RoundTracker` per member and round, on the main process only (the
    integrations log from the main process anyway)."""

    def __init__(self, train_args, si, output_dir: Path, is_main_process: bool):
        self.report_to = list(train_args.report_to or []) if is_main_process else []
        if self.report_to:
            check_report_to(self.report_to)
        self.max_steps, self.round_max_steps = train_args.max_steps, si.round_max_steps
        self.num_members = si.num_members
        self.output_dir = Path(output_dir).resolve()
        self.log_root = Path(
            os.environ.get("TENSORBOARD_LOGGING_DIR") or RunPaths(self.output_dir).tracker_logs
        )
        self.wandb_id = os.environ.get("WANDB_RUN_ID")  # the user's, if any: read before it is set below
        self._trackers: dict[int, RoundTracker] = {}

    def callbacks(self, r: int, member: int, history) -> list[TrainerCallback]:
        """The callbacks of member m's round-r Trainer ([] without report_to)."""
        if not self.report_to:
            return []
        if "wandb" in self.report_to:
            self._select_wandb_run(member)
        offset = steps_before(history, r, member, self.max_steps, self.round_max_steps)
        tracker = RoundTracker(self.report_to, self.log_root / member_dirname(member), offset, r)
        self._trackers[member] = tracker
        return [tracker]

    def log_round(self, member: int, metrics: dict) -> None:
        """Send the published round's metrics to the trackers of its training."""
        tracker = self._trackers.pop(member, None)
        if tracker is not None:
            tracker.log_round(metrics)

    def _select_wandb_run(self, member: int) -> None:
        import wandb

        run_id = self.wandb_id or hashlib.sha256(str(self.output_dir).encode()).hexdigest()[:16]
        if self.num_members > 1:
            run_id = f"{run_id}-{member_dirname(member)}"
        if wandb.run is not None and wandb.run.id != run_id:
            wandb.finish()
        os.environ["WANDB_RUN_ID"] = run_id
        os.environ.setdefault("WANDB_RESUME", "allow")
