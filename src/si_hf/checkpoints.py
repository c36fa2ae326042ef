"""In-round checkpoints: the Trainer checkpoints of the round in progress, and the one a rerun resumes from.

`save_steps` is the only thing the user chooses. The round loop turns it into `save_strategy: steps`
with the round's work directory (`<output_dir>/work/round-NNN/member-M/trainer/`) as the Trainer's
output_dir, keeps the latest `save_total_limit` (default 1) checkpoints there, and deletes them with the
work directory once the round is published. When the round runs again after a crash, `resume_checkpoint`
picks the latest complete checkpoint (`transformers.trainer_utils.get_last_checkpoint`) for
`Trainer.train(resume_from_checkpoint=...)`.

A checkpoint resumes only the training that made it: the settings its optimizer steps depend on are
written beside it (`si_hf_training.json`), and a rerun with other ones trains the round from its start.
New labels for the round (its labelling settings changed) drop its checkpoints as well (`LocalStore.stage_labels`).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from accelerate import PartialState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from si_hf import atomic
from si_hf.distributed import zero_stage

logger = logging.getLogger("si_hf")

SETTINGS_FILE = "si_hf_training.json"
# Written last by Trainer._save_checkpoint: a checkpoint without it was cut short by a crash.
TRAINER_STATE = "trainer_state.json"
# The TrainingArguments a checkpoint's optimizer steps depend on (the round's own copy: seed and
# max_steps are per round). Logging, the save cadence, trackers and dataloader workers may change.
RESUME_KEYS = (
    "seed",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "warmup_steps",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "optim",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "weight_decay",
    "max_grad_norm",
    "bf16",
    "fp16",
)


def training_settings(args, pack_length: int | None = None) -> dict:
    """What a round's checkpoints were trained with: RESUME_KEYS, the number of processes (the global
    batch), the packing of batches and, under DeepSpeed, the ZeRO stage, as JSON values."""
    values = args.to_dict()
    settings = {k: values[k] for k in RESUME_KEYS}
    settings.update(world_size=args.world_size, pack_length=pack_length)
    stage = zero_stage(args)
    if stage is not None:
        # A DeepSpeed checkpoint (optimizer shards per stage) resumes under the same stage only, and a
        # DDP one not at all under DeepSpeed. Left out without DeepSpeed, so the settings recorded
        # beside earlier checkpoints still match.
        settings["zero_stage"] = stage
    return json.loads(json.dumps(settings, default=str))


def checkpoint_step(path: str | None) -> int:
    """The optimizer step a checkpoint directory was saved at (0 for None: no checkpoint)."""
    return int(Path(path).name.rsplit("-", 1)[1]) if path else 0


def _checkpoints(root: Path) -> list[Path]:
    return sorted(p for p in root.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir())


def _read_settings(path: Path) -> dict | None:
    """The recorded settings, or None where there is no readable record: the checkpoints beside an
    unreadable one (written by a version that could be killed mid-write) cannot be vouched for."""
    if not path.is_file():
        return None
    try:
        recorded = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        logger.warning("%s is not the JSON of a settings record; its checkpoints count as stale", path)
        return None
    return recorded if isinstance(recorded, dict) else None


def _discard_stale(root: Path, settings: dict) -> None:
    for ckpt in _checkpoints(root):
        if not (ckpt / TRAINER_STATE).is_file():
            logger.warning("dropping %s: it was being written when the run stopped", ckpt)
            shutil.rmtree(ckpt)
    recorded_file = root / SETTINGS_FILE
    recorded = _read_settings(recorded_file)
    if _checkpoints(root) and recorded != settings:
        recorded = recorded or {}
        # both sides' keys: a setting only one of them has (zero_stage) is a change too
        changed = sorted(k for k in {*settings, *recorded} if recorded.get(k) != settings.get(k))
        logger.warning(
            "%s: training settings changed since its checkpoints were saved (%s); training the round from its start",
            root,
            ", ".join(f"{k}: {recorded.get(k)!r} -> {settings.get(k)!r}" for k in changed),
        )
        for ckpt in _checkpoints(root):
            shutil.rmtree(ckpt)
    # a run killed while writing leaves the old record, never half a new one
    atomic.write_json(recorded_file, settings, sort_keys=True)


def resume_checkpoint(output_dir: str, settings: dict) -> str | None:
    """The latest complete checkpoint under `output_dir` that was trained with `settings`, or None.
    The main process drops incomplete and stale checkpoints; every process gets the same answer."""
    root = Path(output_dir)
    state = PartialState()
    if state.is_main_process:
        _discard_stale(root, settings)
    state.wait_for_everyone()
    last = get_last_checkpoint(str(root)) if root.is_dir() else None
    if last is not None:
        logger.info("resuming the round's training from %s", last)
    return last
