"""The store's hook for what it writes beside the data it stores: a round's cards and figure, and the
run's index page. The store only asks; a publishing layer above it answers (`si_hf.publishing.RunPages`,
given to `open_store(pages=...)`), so storing and publishing change apart. Without pages the store
writes the data, the checkpoints, the metrics and the markers only.

The store writes only the names `si_hf.layout` allows: `ROUND_PAGES` inside a round, `RUN_PAGES` at
the top of the output directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from si_hf.layout import ROUND_PAGES, RUN_PAGES


@dataclass(frozen=True)
class HubNames:
    """Where a run's rounds go on the Hub, for pages that name repos and revisions instead of paths."""

    model_id: str | None
    dataset_id: str | None
    num_members: int


class Pages(Protocol):
    def round_pages(
        self, local, round: int, member: int, *, metrics: dict, info: dict, num_rows: int | None, hub=None
    ) -> dict[str, bytes]:
        """Files of the round by path relative to it (of ROUND_PAGES); `hub` (HubNames) for the Hub's
        copy, where the round's own files are already stored."""

    def index_pages(self, local, kind: str, links: dict[int, str]) -> dict[str, bytes]:
        """The run's index (of RUN_PAGES) for a model or dataset repo, or the output directory
        (`kind` "model"), with one link per round."""


def checked(files: dict[str, bytes], allowed: tuple[str, ...], what: str) -> dict[str, bytes]:
    other = sorted(set(files) - set(allowed))
    if other:
        raise ValueError(f"pages {other} are not {what} the store writes; expected some of {list(allowed)}")
    return files


def round_files(files: dict[str, bytes]) -> dict[str, bytes]:
    return checked(files, ROUND_PAGES, "round pages")


def run_files(files: dict[str, bytes]) -> dict[str, bytes]:
    return checked(files, RUN_PAGES, "run pages")
