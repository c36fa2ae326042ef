"""The Hub mirror: pushes local rounds to branch `round-{r}` of the dataset and/or model repo."""

from __future__ import annotations

import json
from pathlib import Path

from si_hf.report import join_front_matter, split_front_matter

from .layout import (
    MARKER,
    REPO_ID,
    HubError,
    check_hub_reachable,
    hub_errors,
    hub_prefix,
    is_main_process,
    revision,
)
from .local import LocalStore


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
            if repo is not None and not REPO_ID.fullmatch(repo):
                raise ValueError(f"{name} must look like 'user/name', got {repo!r}")
        check_hub_reachable()
        from huggingface_hub import HfApi

        self.local, self.api = local, HfApi()
        self.dataset_id, self.model_id = dataset_id, model_id
        self.overwrite_revision, self.private, self.num_members = overwrite_revision, private, num_members

    def _prefix(self, member: int) -> str:
        if member >= self.num_members:
            raise ValueError(
                f"member {member} needs num_members > {member} in open_store (got {self.num_members})"
            )
        return hub_prefix(member, self.num_members)

    def _targets(self, has_dataset: bool) -> list[tuple[str, str]]:
        out = [(self.dataset_id, "dataset")] if self.dataset_id and has_dataset else []
        return out + ([(self.model_id, "model")] if self.model_id else [])

    def is_complete(self, round: int, member: int = 0, has_dataset: bool | None = None) -> bool:
        if has_dataset is None:
            has_dataset = (self.local.path(round, member) / "dataset").is_dir()
        rev, marker = revision(round), self._prefix(member) + MARKER
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
        rev, prefix, src = revision(round), self._prefix(member), self.local.path(round, member)
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
                {**d, "repo": self.dataset_id, "revision": revision(d["round"]), "config": config}
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
