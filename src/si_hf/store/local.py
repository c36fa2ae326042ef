"""The local store: every round/member an immutable directory, written atomically (see `si_hf.store`)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import uuid
from pathlib import Path

from si_hf.cards import HEATMAP, dataset_card, model_card
from si_hf.report import run_heatmap
from si_hf.results import Record, RunResults
from si_hf.schema import REQUIRED_COLUMNS, ROUND_FEATURES

from .index import write_local_index
from .layout import MARKER, check_address, is_main_process, member_dirname, member_path, round_dirname
from .lock import RunLock
from .verify import check_round, file_checksums, read_json


def _fsync_tree(root: Path) -> None:
    # Durability before the rename: otherwise a power loss can leave a renamed dir of empty files.
    for dirpath, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        _fsync_dir(Path(dirpath))


def _swap_in(tmp: Path, final: Path) -> None:
    """Rename the finished round into place; an existing one is moved aside first, then deleted."""
    old = None
    if final.exists():
        old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


class LocalStore:
    """Rounds under ``<root>/rounds``; see the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.rounds_dir = self.root / "rounds"

    def lock(self) -> RunLock:
        """The run's hold on this directory (`with store.local.lock(): ...`); see `si_hf.store.lock`."""
        return RunLock(self.root)

    def recover(self) -> None:
        """Undo what a killed run left half-done. Only call it holding the lock: another live run's
        half-written round looks exactly the same."""
        if self.rounds_dir.exists() and is_main_process():
            for stale in self.rounds_dir.glob("round-*/.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            for old in self.rounds_dir.glob("round-*/.old-*"):
                # An overwrite moves the old round aside, then the new one in: if it died in between,
                # the old round is the only copy and goes back into place.
                final = old.parent / old.name[len(".old-") :].rsplit("-", 1)[0]
                if final.exists():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.rename(old, final)

    def path(self, round: int, member: int = 0) -> Path:
        check_address(round, member)
        return self.rounds_dir / round_dirname(round) / member_dirname(member)

    def completed_rounds(self, member: int = 0) -> list[int]:
        check_address(0, member)
        found = (
            re.fullmatch(r"round-(\d+)", p.parent.name)
            for p in self.rounds_dir.glob(f"round-*/{member_dirname(member)}")
        )
        return sorted(int(m[1]) for m in found if m)

    def completed(self) -> list[tuple[int, int]]:
        """Every (round, member) written, sorted."""
        out = []
        for p in self.rounds_dir.glob("round-*/member-*"):
            r, m = re.fullmatch(r"round-(\d+)", p.parent.name), re.fullmatch(r"member-(\d+)", p.name)
            if r and m:
                out.append((int(r[1]), int(m[1])))
        return sorted(out)

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
        return read_json(self._existing(round, member) / "metrics.json", round)

    def verify(self, round: int, member: int = 0, *, checksums: str | None = None) -> dict:
        """The cheap checks of `si_hf.store.verify.check_round` (and the checksums under a prefix)."""
        return check_round(self._existing(round, member), round, checksums=checksums)

    def model_path(self, round: int, member: int = 0) -> str:
        """The round's checkpoint directory, its files checked against their published checksums."""
        self.verify(round, member, checksums="model/")
        return str(self._existing(round, member) / "model")

    def dataset_path(self, round: int, member: int = 0) -> str | None:
        path = self._existing(round, member) / "dataset"
        return str(path) if path.is_dir() else None

    def load_dataset(self, round: int, member: int = 0):
        path = self.dataset_path(round, member)
        if path is None:
            raise FileNotFoundError(
                f"round {round} member {member} has no self-labelled dataset (round 0 uses D_0)"
            )
        self.verify(round, member, checksums="dataset/")
        return read_parquet(sorted(Path(path, "data").glob("*.parquet")))

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
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            self._write_round(tmp, round, member, dataset, model, tokenizer, metrics, info)
            _fsync_tree(tmp)
            _swap_in(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        write_local_index(self)  # the run's landing page: every round's table, heatmap and link
        return final

    def _write_round(self, tmp: Path, round, member, dataset, model, tokenizer, metrics, info) -> None:
        if dataset is not None:
            (tmp / "dataset" / "data").mkdir(parents=True)
            dataset.to_parquet(str(tmp / "dataset" / "data" / "train-00000-of-00001.parquet"))
            dataset_card(info, len(dataset)).save(tmp / "dataset" / "README.md")
        save_checkpoint(model, tokenizer, tmp / "model")
        # the card embeds this member's heatmap of rounds 0..round, stored beside it
        history = RunResults.from_store(self, member=member, extra=Record(round, member, metrics, info))
        run_heatmap(history, tmp / "model" / HEATMAP)
        model_card(info, metrics, heatmap=HEATMAP).save(tmp / "model" / "README.md")
        for d in (tmp, tmp / "model"):
            (d / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        # provenance: the self-labelled datasets of rounds 1..round, relative to rounds/
        prov = [
            {"round": r, "member": member, "path": f"{member_path(r, member)}/dataset"}
            for r in range(1, round + (dataset is not None))
            if r == round or (self.path(r, member) / "dataset").is_dir()
        ]
        marker = {
            "round": round,
            "member": member,
            "info": info,
            "datasets": prov,
            "checksums": file_checksums(tmp),  # verified whenever the round is loaded
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))

    # ---- labels of the round in progress, staged so that a crash never labels them again ----
    def work_dir(self, round: int, member: int) -> Path:
        """`<root>/work/round-003/member-0`: what a round builds before it is published."""
        check_address(round, member)
        return self.root / "work" / member_path(round, member)

    def stage_labels(self, round: int, member: int, dataset, info: dict) -> None:
        """Keep a round's kept labels and their label info until the round is published (main process).
        Parquet, like a published round, so a round that kept no label reloads too."""
        if not is_main_process():
            return
        stage = self.work_dir(round, member) / "labels"
        tmp = stage.with_name("labels.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "data").mkdir(parents=True)
        dataset.to_parquet(str(tmp / "data" / "train-00000-of-00001.parquet"))
        (tmp / "label_info.json").write_text(json.dumps(info, indent=2))
        shutil.rmtree(stage, ignore_errors=True)
        # in-round checkpoints trained on labels that are being replaced must not be resumed
        shutil.rmtree(self.work_dir(round, member) / "trainer", ignore_errors=True)
        os.replace(tmp, stage)

    def staged_labels(self, round: int, member: int):
        """(dataset, label info) staged for round/member, or None when nothing is staged."""
        stage = self.work_dir(round, member) / "labels"
        if not (stage / "label_info.json").is_file():
            return None
        info = json.loads((stage / "label_info.json").read_text())
        return read_parquet(sorted((stage / "data").glob("*.parquet"))), info

    def clear_work(self, round: int, member: int) -> None:
        """Drop what round/member staged (once it is published); empty parents go too."""
        if not is_main_process():
            return
        work = self.work_dir(round, member)
        shutil.rmtree(work, ignore_errors=True)
        for parent in (work.parent, work.parent.parent):
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
