"""Versioned round datasets and checkpoints: a local folder always, the Hub as a mirror when asked.

The store writes, verifies and reads rounds; every name it uses is `si_hf.layout`'s. A round/member
is an immutable folder (`rounds/round-003/member-0`: marker, metrics, dataset parquet for rounds >= 1,
a native transformers checkpoint) built in ``round-003/.tmp-member-0-<id>``, fsynced and renamed into
place (`si_hf.atomic.staged_dir`), so a crash leaves no visible half-written round; the marker records
the SHA-256 of every file, checked whenever the round is loaded. ``datasets.load_dataset(".../dataset")``
and ``AutoModelForCausalLM.from_pretrained(".../model")`` load a round with no trust_remote_code and
without si_hf. A peft model is saved merged (a deep copy is merged, the live model is untouched).

What is written beside the data (cards, the heatmap, the run's index page) comes from the `pages` given
to `open_store` (`si_hf.store.pages`; the round loop gives `si_hf.publishing.RunPages`).

Hub layout (``hub_dataset_id`` / ``hub_model_id``): one branch ``round-{r}`` per round in each repo.
Single-model runs (``num_members=1``) use the default dataset config and the model repo root;
majority-vote runs use dataset config ``member-{m}`` (files under ``member-{m}/``) and model
subfolder ``member-{m}`` (``from_pretrained(repo, revision=..., subfolder="member-1")``). Each repo
gets ``si_hf_round.json`` (or ``member-{m}/si_hf_round.json``) committed last: a round/member is
complete on the Hub only when every configured repo holds it. Pushing to a complete one raises unless
``overwrite_hub_revision=True``; an incomplete one is resumed. Round branches start from the repo's
initial commit; ``main`` holds only the index (README.md + heatmap.png), rewritten after each round.
Only the main process (accelerate's `PartialState`) writes. The token comes from the environment /
``hf auth login`` and is never written anywhere.
"""

from __future__ import annotations

from si_hf.layout import MARKER, member_path, revision, round_dirname
from si_hf.schema import REQUIRED_COLUMNS as COLUMNS

from .errors import DamagedRoundError, HubError, StoreLockedError, hub_errors
from .hub import HubMirror
from .local import LocalStore, is_main_process, read_parquet, save_checkpoint
from .pages import HubNames, Pages
from .resume import ResumeSource, resolve_resume


class Store:
    """The interface the round loop uses: local rounds, mirrored to the Hub when configured."""

    def __init__(self, local: LocalStore, hub: HubMirror | None = None):
        self.local, self.hub = local, hub

    def completed_rounds(self, member: int = 0) -> list[int]:
        return self.local.completed_rounds(member)

    def check_hub_writable(self, todo: dict[int, list[int]]) -> None:
        """Raise HubError now if the Hub already holds one of the rounds {round: [members]} to write."""
        if self.hub is None:
            return
        for r, members in todo.items():
            for m in members:
                self.hub.check_writable(r, m, r > 0)

    def verify(self) -> None:
        """The cheap checks of every local round (`si_hf.store.verify`), before any work starts.
        Damage raises DamagedRoundError naming the file and the way to recover."""
        for r, m in self.local.completed():
            try:
                self.local.verify(r, m)
            except DamagedRoundError as e:
                if self.hub is not None and self.hub.model_id:
                    raise DamagedRoundError(
                        f"{e} (or download branch {revision(r)} of {self.hub.model_id} and "
                        f"{self.hub.dataset_id or 'the dataset repo'} again into its place)"
                    ) from None
                raise

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
            self.hub.push_index()

    def load_dataset(self, round: int, member: int = 0):
        return self.local.load_dataset(round, member)

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
        self.hub.push_index()  # also repairs an index whose last push failed after its round was done
        return pushed


def open_store(
    output_dir,
    hub_dataset_id=None,
    hub_model_id=None,
    overwrite_hub_revision=False,
    hub_private=False,
    num_members=1,
    pages: Pages | None = None,
) -> Store:
    """Local store under `output_dir`, mirrored to the Hub repos that are given; `pages` makes the
    cards, figures and index written beside the data (`si_hf.publishing.RunPages`; none without)."""
    if not isinstance(num_members, int) or num_members < 1:
        raise ValueError(f"num_members must be a positive int, got {num_members!r}")
    local = LocalStore(output_dir, pages=pages)
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


__all__ = [
    "COLUMNS",
    "MARKER",
    "DamagedRoundError",
    "HubError",
    "HubNames",
    "Pages",
    "StoreLockedError",
    "HubMirror",
    "LocalStore",
    "read_parquet",
    "ResumeSource",
    "Store",
    "hub_errors",
    "is_main_process",
    "member_path",
    "open_store",
    "resolve_resume",
    "revision",
    "round_dirname",
    "save_checkpoint",
]
