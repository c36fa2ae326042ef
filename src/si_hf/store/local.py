"""The local store: every round/member an immutable folder, written atomically (see `si_hf.store`)."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

from accelerate import PartialState

from si_hf import atomic
from si_hf.layout import (
    DATA,
    DATASET,
    HOLDER,
    LABEL_INFO,
    LABELS,
    LOCK,
    MARKER,
    METRICS,
    MODEL,
    PARQUET,
    ROUNDS,
    STORE_MARKER,
    TRAINER,
    WORK,
    RunPaths,
    check_address,
    member_path,
    round_dirname,
)
from si_hf.schema import REQUIRED_COLUMNS, ROUND_FEATURES

from .lock import RunLock
from .pages import Pages, round_files, run_files
from .verify import check_round, file_checksums, read_json


def save_checkpoint(model, tokenizer, path: str | os.PathLike) -> None:
    """save_pretrained model (merged when it is a peft model), its generation config and tokenizer, as
    a native transformers checkpoint: an SI-Llama is saved as the SmolLM3 (NoPE) or Llama (RoPE) it
    is, so plain transformers loads it with no remote code and no prompt (`si_hf.modeling.native`)."""
    from si_hf.modeling import merge_lora, to_native

    try:
        from peft import PeftModel
    except ImportError:  # peft is optional for plain checkpoints
        PeftModel = ()
    if isinstance(model, PeftModel):
        model = merge_lora(copy.deepcopy(model))
    to_native(model).save_pretrained(path)
    tokenizer.save_pretrained(path)


def read_parquet(files):
    """Parquet files as a Dataset; unlike `Dataset.from_parquet` this accepts a round that kept 0 labels."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    return datasets.Dataset(pa.concat_tables([pq.read_table(str(f)) for f in files]))


def is_main_process() -> bool:
    """Which process am I: accelerate's answer (one process: the main one). Only the main one writes."""
    return PartialState().is_main_process


class LocalStore:
    """Rounds under ``<root>/rounds``; see `si_hf.layout` for the names. `pages` (optional) makes the
    cards, figures and index page written beside the data (`si_hf.store.pages`)."""

    def __init__(self, root: str | os.PathLike, pages: Pages | None = None):
        self.root = Path(root)
        self.paths = RunPaths(self.root)
        self.rounds_dir = self.paths.rounds
        self.pages = pages

    def lock(self) -> RunLock:
        """The run's hold on this folder (`with store.local.lock(): ...`; see `si_hf.store.lock`), once
        the folder is known to be this store or empty (`claim`): nothing of a user's is written over."""
        self.claim()
        return RunLock(self.root)

    def claim(self) -> None:
        """Refuse, before anything is written, an output_dir that is not an si-hf store: one that exists
        and holds files but none of what only si-hf writes (the store marker, the run lock, `rounds/`,
        `work/`: a store of an older si-hf has no marker). A README.md or metrics.json alone may be the
        user's own."""
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"output_dir: {self.root} is a file; expected a folder for the run's store")
        if not self.root.is_dir():
            return
        entries = sorted(p.name for p in self.root.iterdir())
        if not entries or set(entries) & {STORE_MARKER, LOCK, HOLDER, ROUNDS, WORK}:
            return
        shown = ", ".join(entries[:6]) + (", ..." if len(entries) > 6 else "")
        raise ValueError(
            f"output_dir: {self.root} holds files that are not an si-hf store ({shown}); si-hf would write "
            "README.md, metrics.json and more there: pick an empty or new folder"
        )

    def recover(self) -> None:
        """Undo what a killed run left half-done (`si_hf.atomic.recover_dirs`). Only call it holding the
        lock: another live run's half-written round looks exactly the same."""
        if self.rounds_dir.exists() and is_main_process():
            for round_dir in self.rounds_dir.glob("round-*"):
                atomic.recover_dirs(round_dir)

    def path(self, round: int, member: int = 0) -> Path:
        return self.paths.round(round, member).root

    def completed_rounds(self, member: int = 0) -> list[int]:
        check_address(0, member)
        return [r for r, m in self.paths.published() if m == member]

    def completed(self) -> list[tuple[int, int]]:
        """Every (round, member) written, sorted."""
        return self.paths.published()

    def _existing(self, round: int, member: int) -> Path:
        path = self.path(round, member)
        if not path.is_dir():
            have = self.completed_rounds(member)
            raise FileNotFoundError(
                f"round {round} member {member} is not in {self.rounds_dir} (have rounds {have})"
            )
        return path

    def marker(self, round: int, member: int = 0) -> dict:
        return read_json(self._existing(round, member) / MARKER, round)

    def metrics(self, round: int, member: int = 0) -> dict:
        return read_json(self._existing(round, member) / METRICS, round)

    def verify(self, round: int, member: int = 0, *, checksums: str | None = None) -> dict:
        """The cheap checks of `si_hf.store.verify.check_round` (and the checksums under a prefix)."""
        return check_round(self._existing(round, member), round, checksums=checksums)

    def model_path(self, round: int, member: int = 0) -> str:
        """The round's checkpoint folder, its files checked against their published checksums."""
        self.verify(round, member, checksums=f"{MODEL}/")
        return str(self._existing(round, member) / MODEL)

    def dataset_path(self, round: int, member: int = 0) -> str | None:
        path = self._existing(round, member) / DATASET
        return str(path) if path.is_dir() else None

    def load_dataset(self, round: int, member: int = 0):
        path = self.dataset_path(round, member)
        if path is None:
            raise FileNotFoundError(
                f"round {round} member {member} has no self-labelled dataset (round 0 uses D_0)"
            )
        self.verify(round, member, checksums=f"{DATASET}/")
        return read_parquet(self.paths.round(round, member).parquet_files())

    def publish_round(
        self, round, member, *, dataset, model, tokenizer, metrics, info, overwrite=False
    ) -> Path | None:
        """Write one round/member atomically; raises FileExistsError if it exists and not `overwrite`."""
        check_address(round, member)
        if not is_main_process():
            return None
        final = self.path(round, member)
        if final.exists() and not overwrite:
            raise FileExistsError(
                f"round {round} member {member} already exists at {final}; pass overwrite=True"
            )
        if dataset is None and round > 0:
            raise ValueError(
                f"round {round} needs its self-labelled dataset (only round 0 may pass dataset=None)"
            )
        if dataset is not None:
            missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
            if missing:
                raise ValueError(f"dataset lacks columns {missing}; expected {list(ROUND_FEATURES)}")
        info = {**info, "round": round, "member": member}
        json.dumps([metrics, info])  # fail before writing anything if they are not JSON-able
        with atomic.staged_dir(final) as tmp:
            self._write_round(tmp, round, member, dataset, model, tokenizer, metrics, info)
        self.write_index()
        return final

    def _write_round(self, tmp: Path, round, member, dataset, model, tokenizer, metrics, info) -> None:
        if dataset is not None:
            (tmp / DATASET / DATA).mkdir(parents=True)
            dataset.to_parquet(str(tmp / DATASET / DATA / PARQUET))
        save_checkpoint(model, tokenizer, tmp / MODEL)
        if self.pages is not None:
            num_rows = len(dataset) if dataset is not None else None
            pages = self.pages.round_pages(self, round, member, metrics=metrics, info=info, num_rows=num_rows)
            for name, data in round_files(pages).items():
                (tmp / name).write_bytes(data)
        for d in (tmp, tmp / MODEL):
            (d / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True))
        # provenance: the self-labelled datasets of rounds 1..round, relative to rounds/
        prov = [
            {"round": r, "member": member, "path": f"{member_path(r, member)}/{DATASET}"}
            for r in range(1, round + (dataset is not None))
            if r == round or (self.path(r, member) / DATASET).is_dir()
        ]
        marker = {
            "round": round,
            "member": member,
            "info": info,
            "datasets": prov,
            "checksums": file_checksums(tmp),  # verified whenever the round is loaded
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))

    def write_index(self) -> None:
        """The run's index page (`<root>/README.md`, `heatmap.png`) from the rounds held, when there are
        pages to write."""
        rounds = sorted({r for r, _ in self.completed()})
        if self.pages is None or not rounds:
            return
        links = {r: f"{self.rounds_dir.name}/{round_dirname(r)}" for r in rounds}
        for name, data in run_files(self.pages.index_pages(self, "model", links)).items():
            atomic.write_bytes(self.root / name, data)

    # ---- labels of the round in progress, staged so that a crash never labels them again ----
    def work_dir(self, round: int, member: int) -> Path:
        """`<root>/work/round-003/member-0`: what a round builds before it is published."""
        return self.paths.work_round(round, member)

    def stage_labels(self, round: int, member: int, dataset, info: dict) -> None:
        """Keep a round's kept labels and their label info until the round is published (main process).
        Parquet, like a published round, so a round that kept no label reloads too."""
        if not is_main_process():
            return
        with atomic.staged_dir(self.work_dir(round, member) / LABELS) as tmp:
            (tmp / DATA).mkdir()
            dataset.to_parquet(str(tmp / DATA / PARQUET))
            (tmp / LABEL_INFO).write_text(json.dumps(info, indent=2))
            # in-round checkpoints trained on labels that are being replaced must not be resumed
            shutil.rmtree(self.work_dir(round, member) / TRAINER, ignore_errors=True)

    def staged_labels(self, round: int, member: int):
        """(dataset, label info) staged for round/member, or None when nothing is staged."""
        stage = self.work_dir(round, member) / LABELS
        if not (stage / LABEL_INFO).is_file():
            return None
        info = json.loads((stage / LABEL_INFO).read_text())
        return read_parquet(sorted((stage / DATA).glob("*.parquet"))), info

    def clear_work(self, round: int, member: int) -> None:
        """Drop what round/member staged (once it is published); empty parents go too."""
        if not is_main_process():
            return
        work = self.work_dir(round, member)
        shutil.rmtree(work, ignore_errors=True)
        for parent in (work.parent, work.parent.parent):
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
