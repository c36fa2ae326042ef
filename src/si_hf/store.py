"""Versioned round datasets and checkpoints: a local directory always, the Hub as a mirror when asked.

Local layout (every round/member immutable, written atomically)::

    <output_dir>/rounds/round-003/member-0/
        si_hf_round.json          marker: info, provenance (datasets of rounds 1..r, paths relative
                                  to rounds/), Hub repos/revisions once pushed
        metrics.json
        dataset/README.md         dataset card (YAML front matter); absent for round 0 (D_0 is regenerated)
        dataset/data/train-00000-of-00001.parquet
        model/                    save_pretrained: config (auto_map + modeling code for SI-Llama),
                                  weights, tokenizer, generation_config, metrics.json, README.md (model card)

A member directory is built in ``round-003/.tmp-member-0-<id>``, fsynced, then ``os.rename``d into
place, so a crash leaves no visible half-written round; ``open_store`` removes stale ``.tmp-*``.
``datasets.load_dataset(".../dataset")`` and ``AutoModelForCausalLM.from_pretrained(".../model")``
load them directly. A peft model is saved merged (a deep copy is merged, the live model is untouched),
so every checkpoint loads without peft.

Hub layout (``hub_dataset_id`` / ``hub_model_id``): one branch ``round-{r}`` per round in each repo.
Single-model runs (``num_members=1``) use the default dataset config and the model repo root;
majority-vote runs use dataset config ``member-{m}`` (files under ``member-{m}/``) and model
subfolder ``member-{m}`` (``from_pretrained(repo, revision=..., subfolder="member-1")``). Each repo
gets ``si_hf_round.json`` (or ``member-{m}/si_hf_round.json``) committed last: a round/member is
complete on the Hub only when every configured repo holds it. Pushing to a complete one raises unless
``overwrite_hub_revision=True``; an incomplete one is resumed. Only the process with ``RANK`` 0
writes. The token comes from the environment / ``hf auth login`` and is never written anywhere.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from si_hf.report import dataset_card, join_front_matter, model_card, split_front_matter

MARKER = "si_hf_round.json"
COLUMNS = ("prompt", "completion", "difficulty", "round", "generated_by", "filter", "votes", "oracle_correct")
HUB_SPEC = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)@round-(?P<round>\d+)(?:/member-(?P<member>\d+))?$")


class HubError(RuntimeError):
    """A Hub call failed or was refused; the message names the repo, the revision and the HTTP status."""


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _check_address(round: int, member: int) -> None:
    for name, v in (("round", round), ("member", member)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")


def _fsync_tree(root: Path) -> None:
    # Durability before the rename: otherwise a power loss can leave a renamed dir of empty files.
    for dirpath, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(model, tokenizer, path: str | os.PathLike) -> None:
    """save_pretrained model (merged when it is a peft model), its generation config and tokenizer."""
    try:
        from peft import PeftModel
    except ImportError:  # peft is optional for plain checkpoints
        PeftModel = ()
    if isinstance(model, PeftModel):
        from si_hf.modeling import merge_lora

        model = merge_lora(copy.deepcopy(model))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def _read_parquet(files):
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
        _check_address(round, member)
        return self.rounds_dir / f"round-{round:03d}" / f"member-{member}"

    def completed_rounds(self, member: int = 0) -> list[int]:
        _check_address(0, member)
        found = (
            re.fullmatch(r"round-(\d+)", p.parent.name)
            for p in self.rounds_dir.glob(f"round-*/member-{member}")
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
        return json.loads((self._existing(round, member) / MARKER).read_text())

    def metrics(self, round: int, member: int = 0) -> dict:
        return json.loads((self._existing(round, member) / "metrics.json").read_text())

    def model_path(self, round: int, member: int = 0) -> str:
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
        return _read_parquet(sorted(Path(path, "data").glob("*.parquet")))

    def publish_round(
        self, round, member, *, dataset, model, tokenizer, metrics, info, overwrite=False
    ) -> Path | None:
        """Write one round/member atomically; raises FileExistsError if it exists and not `overwrite`."""
        _check_address(round, member)
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
            missing = [c for c in COLUMNS if c not in dataset.column_names]
            if missing:
                raise ValueError(f"dataset lacks columns {missing}; expected {list(COLUMNS)}")
        info = {**info, "round": round, "member": member}
        json.dumps([metrics, info])  # fail before writing anything if they are not JSON-able
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            if dataset is not None:
                (tmp / "dataset" / "data").mkdir(parents=True)
                dataset.to_parquet(str(tmp / "dataset" / "data" / "train-00000-of-00001.parquet"))
                (tmp / "dataset" / "README.md").write_text(dataset_card(info))
            save_checkpoint(model, tokenizer, tmp / "model")
            (tmp / "model" / "README.md").write_text(model_card(info, metrics))
            for d in (tmp, tmp / "model"):
                (d / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
            prov = [
                {"round": r, "member": member, "path": f"round-{r:03d}/member-{member}/dataset"}
                for r in range(1, round)
                if (self.path(r, member) / "dataset").is_dir()
            ]
            if dataset is not None:
                prov.append(
                    {"round": round, "member": member, "path": f"{final.parent.name}/{final.name}/dataset"}
                )
            marker = {
                "round": round,
                "member": member,
                "info": info,
                "datasets": prov,
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
            _fsync_tree(tmp)
            old = None
            if final.exists():  # overwrite: move the old one aside, swap, then delete it
                old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
                os.rename(final, old)
            os.rename(tmp, final)
            _fsync_dir(final.parent)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final


@contextlib.contextmanager
def hub_errors(what: str, repo: str, rev: str):
    """Re-raise a Hub HTTP error as HubError naming the operation, repo, revision and HTTP status."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        yield
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "no response"
        raise HubError(f"{what} failed for {repo}@{rev}: HTTP {status}: {e}") from e


class HubMirror:
    """Pushes local rounds to branch ``round-{r}`` of the dataset and/or model repo."""

    def __init__(
        self,
        local: LocalStore,
        dataset_id=None,
        model_id=None,
        *,
        overwrite_revision=False,
        private=False,
        num_members=1,
    ):
        for name, repo in (("hub_dataset_id", dataset_id), ("hub_model_id", model_id)):
            if repo is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
                raise ValueError(f"{name} must look like 'user/name', got {repo!r}")
        from huggingface_hub import HfApi

        self.local, self.api = local, HfApi()
        self.dataset_id, self.model_id = dataset_id, model_id
        self.overwrite_revision, self.private, self.num_members = overwrite_revision, private, num_members

    def _prefix(self, member: int) -> str:
        if member >= self.num_members:
            raise ValueError(
                f"member {member} needs num_members > {member} in open_store (got {self.num_members})"
            )
        return "" if self.num_members == 1 else f"member-{member}/"

    def _targets(self, has_dataset: bool) -> list[tuple[str, str]]:
        out = [(self.dataset_id, "dataset")] if self.dataset_id and has_dataset else []
        return out + ([(self.model_id, "model")] if self.model_id else [])

    def is_complete(self, round: int, member: int = 0, has_dataset: bool | None = None) -> bool:
        if has_dataset is None:
            has_dataset = (self.local.path(round, member) / "dataset").is_dir()
        rev, marker = f"round-{round}", self._prefix(member) + MARKER
        for repo, kind in self._targets(has_dataset):
            with hub_errors("checking the round marker", repo, rev):
                if not self.api.file_exists(repo, marker, repo_type=kind, revision=rev):
                    return False
        return True

    def check_writable(self, round: int, member: int, has_dataset: bool) -> None:
        if not self.overwrite_revision and self.is_complete(round, member, has_dataset):
            repos = ", ".join(f"{repo}@round-{round}" for repo, _ in self._targets(has_dataset))
            raise HubError(
                f"{repos} already holds a complete round {round} (member {member}); "
                "pass overwrite_hub_revision=True to replace it"
            )

    def push(self, round: int, member: int = 0) -> None:
        if not is_main_process():
            return
        rev, prefix, src = f"round-{round}", self._prefix(member), self.local.path(round, member)
        has_dataset = (src / "dataset").is_dir()
        self.check_writable(round, member, has_dataset)
        for repo, kind in self._targets(has_dataset):
            with hub_errors("creating the repo and branch", repo, rev):
                self.api.create_repo(repo, repo_type=kind, private=self.private, exist_ok=True)
                self.api.create_branch(repo, branch=rev, repo_type=kind, exist_ok=True)
                # An overwrite drops the old marker first, so a crash half-way reads as incomplete, not done.
                if self.overwrite_revision and self.api.file_exists(
                    repo, prefix + MARKER, repo_type=kind, revision=rev
                ):
                    self.api.delete_file(prefix + MARKER, repo, repo_type=kind, revision=rev)
        marker = json.loads((src / MARKER).read_text())
        marker["hub"] = {
            "model_repo": self.model_id,
            "revision": rev,
            "subfolder": prefix[:-1],
            "dataset_repo": None,
        }
        if self.dataset_id and has_dataset:
            config = prefix[:-1] or "default"
            self._push_dataset(round, member, rev, prefix, config)
            marker["hub"].update(dataset_repo=self.dataset_id, dataset_config=config)
            marker["datasets"] = [
                {**d, "repo": self.dataset_id, "revision": f"round-{d['round']}", "config": config}
                for d in marker["datasets"]
            ]
            self._upload_marker(self.dataset_id, "dataset", rev, prefix, marker)
        if self.model_id:
            with hub_errors("uploading the checkpoint", self.model_id, rev):
                self.api.upload_folder(
                    repo_id=self.model_id,
                    folder_path=str(src / "model"),
                    path_in_repo=prefix[:-1] or None,
                    revision=rev,
                    commit_message=f"si-hf round {round} member {member} checkpoint",
                )
                if (
                    prefix
                ):  # transformers looks for trust_remote_code files at the repo root, even with subfolder=
                    self.api.upload_folder(
                        repo_id=self.model_id,
                        folder_path=str(src / "model"),
                        allow_patterns=["*.py"],
                        revision=rev,
                        commit_message="modeling code",
                    )
            self._upload_marker(self.model_id, "model", rev, prefix, marker)

    def _push_dataset(self, round: int, member: int, rev: str, prefix: str, config: str) -> None:
        from huggingface_hub import hf_hub_download

        repo, card = self.dataset_id, (self.local.path(round, member) / "dataset" / "README.md").read_text()
        with hub_errors("pushing the dataset", repo, rev):
            self.local.load_dataset(round, member).push_to_hub(
                repo,
                config_name=config,
                revision=rev,
                private=self.private,
                commit_message=f"si-hf round {round} member {member} dataset",
            )
            if prefix:  # the root README holds every member's config; each member's card sits with its data
                path, text = prefix + "README.md", card
            else:  # push_to_hub wrote a README whose YAML declares the data: keep its metadata, add ours
                theirs = Path(
                    hf_hub_download(repo, "README.md", repo_type="dataset", revision=rev)
                ).read_text()
                ours, body = split_front_matter(card)
                path, text = "README.md", join_front_matter({**ours, **split_front_matter(theirs)[0]}, body)
            self.api.upload_file(
                path_or_fileobj=text.encode(),
                path_in_repo=path,
                repo_id=repo,
                repo_type="dataset",
                revision=rev,
                commit_message="dataset card",
            )

    def _upload_marker(self, repo: str, kind: str, rev: str, prefix: str, marker: dict) -> None:
        with hub_errors("committing the round marker", repo, rev):
            self.api.upload_file(
                path_or_fileobj=json.dumps(marker, indent=2, sort_keys=True).encode(),
                path_in_repo=prefix + MARKER,
                repo_id=repo,
                repo_type=kind,
                revision=rev,
                commit_message=f"si-hf {rev} complete",
            )


class Store:
    """The interface the round loop uses: local rounds, mirrored to the Hub when configured."""

    def __init__(self, local: LocalStore, hub: HubMirror | None = None):
        self.local, self.hub = local, hub

    def completed_rounds(self, member: int = 0) -> list[int]:
        return self.local.completed_rounds(member)

    def publish_round(
        self, round, member=0, *, dataset, model, tokenizer, metrics, info, overwrite=False
    ) -> None:
        """Local first (atomic), then the Hub; a failed push raises HubError and keeps the local copy."""
        if not is_main_process():
            return
        if self.hub is not None:  # refuse before writing anything locally
            self.hub.check_writable(round, member, dataset is not None)
        self.local.publish_round(
            round,
            member,
            dataset=dataset,
            model=model,
            tokenizer=tokenizer,
            metrics=metrics,
            info=info,
            overwrite=overwrite,
        )
        if self.hub is not None:
            self.hub.push(round, member)

    def load_dataset(self, round: int, member: int = 0):
        return self.local.load_dataset(round, member)

    def load_model(self, round: int, member: int = 0, **kwargs):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.model_path(round, member), **kwargs)

    def model_path(self, round: int, member: int = 0) -> str:
        return self.local.model_path(round, member)

    def metrics(self, round: int, member: int = 0) -> dict:
        return self.local.metrics(round, member)

    def info(self, round: int, member: int = 0) -> dict:
        """What the round recorded about itself: task, filter, counts, trained levels, config."""
        return self.local.marker(round, member)["info"]

    def sync(self) -> list[tuple[int, int]]:
        """Push every local round/member the Hub lacks (complete ones are left alone); returns those pushed."""
        if self.hub is None or not is_main_process():
            return []
        pushed = []
        for r, m in self.local.completed():
            if not self.hub.is_complete(r, m):  # incomplete branches are resumed, complete ones kept
                self.hub.push(r, m)
                pushed.append((r, m))
        return pushed


def open_store(
    output_dir,
    hub_dataset_id=None,
    hub_model_id=None,
    overwrite_hub_revision=False,
    hub_private=False,
    num_members=1,
) -> Store:
    """Local store under `output_dir`, mirrored to the Hub repos that are given."""
    if not isinstance(num_members, int) or num_members < 1:
        raise ValueError(f"num_members must be a positive int, got {num_members!r}")
    local = LocalStore(output_dir)
    hub = None
    if hub_dataset_id or hub_model_id:
        hub = HubMirror(
            local,
            hub_dataset_id,
            hub_model_id,
            overwrite_revision=overwrite_hub_revision,
            private=hub_private,
            num_members=num_members,
        )
    return Store(local, hub)


@dataclass
class ResumeSource:
    round: int
    member: int
    model_path: str
    datasets: dict = field(default_factory=dict)  # round -> datasets.Dataset, rounds 1..r
    metrics: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    source: str = ""


def resolve_resume(spec: str, cache_dir=None, member: int | None = None) -> ResumeSource:
    """A finished round to resume from: ``user/name@round-3[/member-1]`` on the Hub, or a local round
    directory (``.../rounds/round-003/member-0`` or its ``model/``). Returns the model directory and the
    self-labelled datasets of rounds 1..r named by the round's marker. A run that itself started from
    another run records it in `info["resumed_from"]`; its earlier rounds are fetched from there."""
    source = _resolve_one(spec, cache_dir, member)
    parent = source.info.get("resumed_from")
    if parent:
        earlier = resolve_resume(parent["spec"], cache_dir, member=parent.get("member"))
        source.datasets = {**earlier.datasets, **source.datasets}
    missing = [r for r in range(1, source.round + 1) if r not in source.datasets]
    if missing:
        raise ValueError(
            f"{spec!r}: the self-labelled datasets of rounds {missing} are not recorded anywhere"
        )
    return source


def _resolve_one(spec: str, cache_dir, member: int | None) -> ResumeSource:
    path = Path(spec)
    if path.exists():
        root = path.parent if path.name == "model" else path
        if not (root / MARKER).is_file():
            raise ValueError(f"{spec!r} is not a published round: {root / MARKER} is missing")
        marker = json.loads((root / MARKER).read_text())
        sets = {
            d["round"]: _read_parquet(sorted((root.parent.parent / d["path"] / "data").glob("*.parquet")))
            for d in marker["datasets"]
        }
        metrics = json.loads((root / "metrics.json").read_text())
        return ResumeSource(
            marker["round"], marker["member"], str(root / "model"), sets, metrics, marker["info"], spec
        )
    m = HUB_SPEC.match(spec)
    if not m:
        raise ValueError(
            f"resume_from must be an existing local round path or 'user/name@round-3', got {spec!r}"
        )
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    repo, rnd = m["repo"], int(m["round"])
    mem = int(m["member"]) if m["member"] is not None else (member or 0)
    rev = f"round-{rnd}"
    sub = "" if m["member"] is None and member is None else f"member-{mem}/"
    try:
        try:
            marker_file = hf_hub_download(repo, sub + MARKER, revision=rev, cache_dir=cache_dir)
        except EntryNotFoundError as e:
            raise HubError(
                f"{repo}@{rev} has no {sub + MARKER}: the round is incomplete, cannot resume"
            ) from e
        allow = [f"{sub}*"] if sub else None
        snap = snapshot_download(repo, revision=rev, cache_dir=cache_dir, allow_patterns=allow)
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "no response"
        raise HubError(f"downloading {repo}@{rev} failed: HTTP {status}: {e}") from e
    marker = json.loads(Path(marker_file).read_text())
    import datasets

    sets = {}
    for d in marker["datasets"]:
        if "repo" not in d:
            raise HubError(
                f"{repo}@{rev}: the dataset of round {d['round']} was never pushed (the run had no "
                "--hub_dataset_id), so this round cannot be resumed from the Hub; resume from its local "
                "round directory instead"
            )
        name = None if d.get("config", "default") == "default" else d["config"]
        try:
            sets[d["round"]] = datasets.load_dataset(
                d["repo"], name, revision=d["revision"], split="train", cache_dir=cache_dir
            )
        except ValueError as e:  # datasets cannot infer a split from a parquet file with no rows
            if "corresponds to no data" not in str(e):
                raise
            sets[d["round"]] = datasets.Dataset.from_dict({c: [] for c in COLUMNS})
    model_dir = str(Path(snap) / sub) if sub else snap
    metrics = json.loads(Path(model_dir, "metrics.json").read_text())
    return ResumeSource(rnd, mem, model_dir, sets, metrics, marker["info"], spec)
