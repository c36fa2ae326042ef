"""The Hub mirror: pushes local rounds to branch `round-{r}` of the dataset and/or model repo."""

from __future__ import annotations

import json

from si_hf.layout import DATASET, MARKER, METRICS, MODEL, README, REPO_ID, hub_prefix, revision

from .errors import HubError, check_hub_reachable, hub_endpoint, hub_errors
from .local import LocalStore, is_main_process
from .pages import HubNames, round_files, run_files


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

    @property
    def names(self) -> HubNames:
        return HubNames(self.model_id, self.dataset_id, self.num_members)

    def is_complete(self, round: int, member: int = 0, has_dataset: bool | None = None) -> bool:
        if has_dataset is None:
            has_dataset = (self.local.path(round, member) / DATASET).is_dir()
        rev, marker = revision(round), self._prefix(member) + MARKER
        for repo, kind in self._targets(has_dataset):
            with hub_errors("checking the round marker", repo, rev):
                if not self.api.file_exists(repo, marker, repo_type=kind, revision=rev):
                    return False
        return True

    def check_writable(self, round: int, member: int, has_dataset: bool) -> None:
        if not self.overwrite_revision and self.is_complete(round, member, has_dataset):
            repos = ", ".join(f"{repo}@{revision(round)}" for repo, _ in self._targets(has_dataset))
            raise HubError(
                f"{repos} already holds a complete round {round} (member {member}); "
                "pass overwrite_hub_revision=True to replace it"
            )

    def push(self, round: int, member: int = 0) -> None:
        if not is_main_process():
            return
        rev, prefix, src = revision(round), self._prefix(member), self.local.path(round, member)
        has_dataset = (src / DATASET).is_dir()
        self.check_writable(round, member, has_dataset)
        for repo, kind in self._targets(has_dataset):
            with hub_errors("creating the repo and branch", repo, rev):
                self.api.create_repo(repo, repo_type=kind, private=self.private, exist_ok=True)
                # From the repo's initial commit, not from main: main holds the run's index README
                # and heatmap, which are no part of a round.
                initial = self.api.list_repo_commits(repo, repo_type=kind)[-1].commit_id
                self.api.create_branch(repo, branch=rev, revision=initial, repo_type=kind, exist_ok=True)
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
                self.api.create_commit(
                    self.model_id,
                    operations=self._model_operations(round, member, prefix, marker["info"]),
                    revision=rev,
                    commit_message=f"si-hf round {round} member {member} checkpoint",
                )
            self._upload_marker(self.model_id, "model", rev, prefix, marker)

    def push_index(self) -> None:
        """Rewrite `main` of each repo with the run's index page (README.md + heatmap.png), one commit
        each, from the local rounds; `main` holds nothing else. Without pages there is none to write."""
        from huggingface_hub import CommitOperationAdd

        rounds = sorted({r for r, _ in self.local.completed()})
        if not is_main_process() or not rounds or self.local.pages is None:
            return
        for repo, kind in self._targets(has_dataset=True):
            base = f"{hub_endpoint()}/{'datasets/' if kind == 'dataset' else ''}{repo}/tree"
            # round 0 trains on D_0 alone, so the dataset repo has no branch for it
            links = {r: f"{base}/{revision(r)}" for r in rounds if kind == "model" or r > 0}
            if not links:  # the dataset repo is created by the first round with labels
                continue
            files = run_files(self.local.pages.index_pages(self.local, kind, links))
            with hub_errors("writing the index README", repo, "main"):
                self.api.create_commit(
                    repo,
                    operations=[CommitOperationAdd(name, data) for name, data in files.items()],
                    repo_type=kind,
                    revision="main",
                    commit_message=f"si-hf index: rounds {rounds[0]}..{rounds[-1]}",
                )

    def _hub_pages(self, round: int, member: int, info: dict, num_rows: int | None) -> dict[str, bytes]:
        """The round's cards as the Hub shows them (repo@revision names), or none without pages."""
        if self.local.pages is None:
            return {}
        metrics = json.loads((self.local.path(round, member) / METRICS).read_text())
        pages = self.local.pages.round_pages(
            self.local, round, member, metrics=metrics, info=info, num_rows=num_rows, hub=self.names
        )
        return round_files(pages)

    def _model_operations(self, round: int, member: int, prefix: str, info: dict) -> list:
        """The checkpoint folder with the card rewritten for the Hub. Rounds are native checkpoints
        without code; a round saved as si_llama by an older si_hf has modeling code, which a member
        subfolder also needs at the root: transformers looks for trust_remote_code files there, even
        with subfolder=."""
        from huggingface_hub import CommitOperationAdd

        folder = self.local.path(round, member) / MODEL
        card = self._hub_pages(round, member, info, None).get(f"{MODEL}/{README}")
        files = sorted(f for f in folder.rglob("*") if f.is_file() and not (card and f.name == README))
        ops = [CommitOperationAdd(prefix + f.relative_to(folder).as_posix(), str(f)) for f in files]
        if card:
            ops.append(CommitOperationAdd(prefix + README, card))
        if prefix:
            ops += [CommitOperationAdd(f.name, str(f)) for f in sorted(folder.glob("*.py"))]
        return ops

    def _push_dataset(self, round: int, member: int, rev: str, prefix: str, config: str) -> None:
        from huggingface_hub import DatasetCard, hf_hub_download

        repo, dataset = self.dataset_id, self.local.load_dataset(round, member)
        info = self.local.marker(round, member)["info"]
        page = self._hub_pages(round, member, info, len(dataset)).get(f"{DATASET}/{README}")
        with hub_errors("pushing the dataset", repo, rev):
            dataset.push_to_hub(
                repo,
                config_name=config,
                revision=rev,
                private=self.private,
                commit_message=f"si-hf round {round} member {member} dataset",
            )
            if page is None:
                return
            card = DatasetCard(page.decode())
            if not prefix:
                # push_to_hub wrote a README whose YAML declares the data (configs, dataset_info): keep
                # what it declares that our card does not. A member's card sits with its data instead;
                # the root README holds every member's config.
                theirs = DatasetCard.load(hf_hub_download(repo, README, repo_type="dataset", revision=rev))
                for key, value in theirs.data.to_dict().items():
                    if key not in card.data:
                        card.data[key] = value
            self.api.upload_file(
                path_or_fileobj=str(card).encode(),
                path_in_repo=prefix + README,
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
