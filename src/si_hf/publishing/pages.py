"""The pages of a run: what `si_hf.store` writes beside the data, made here (`RunPages`, handed to
`open_store(pages=RunPages())`; the store never imports this module).

- A round's pages: its dataset card (rounds >= 1), its model card and the member's heatmap of rounds
  0..r embedded in the model card (`si_hf.publishing.cards`). Locally they name paths; the Hub's copies,
  made when the round is pushed, name repos and revisions (`repo@round-2`).
- The run's index, rewritten after every round: `<output_dir>/README.md` and `heatmap.png` locally,
  and the `main` branch of each Hub repo (which holds nothing else: every round lives on its own
  branch): the full round x difficulty table, the heatmap and one link per round.
"""

from __future__ import annotations

from si_hf.layout import DATASET, HEATMAP, MODEL, README, RunPaths
from si_hf.publishing.cards import dataset_card, index_card, model_card
from si_hf.publishing.report import run_heatmap
from si_hf.results import Record, RunResults


class RunPages:
    """The cards, figures and index of a run's rounds (`si_hf.store.pages.Pages`)."""

    def round_pages(self, local, round, member, *, metrics, info, num_rows, hub=None) -> dict[str, bytes]:
        names = {}
        if hub is not None:
            names = {
                "hub_model_id": hub.model_id,
                "hub_dataset_id": hub.dataset_id,
                "num_members": hub.num_members,
            }
        files = {}
        if num_rows is not None:
            files[f"{DATASET}/{README}"] = str(dataset_card(info, num_rows, **names)).encode()
        if hub is None:
            # the card embeds this member's heatmap of rounds 0..round, stored beside it
            history = RunResults.from_store(local, member=member, extra=Record(round, member, metrics, info))
            files[f"{MODEL}/{HEATMAP}"] = run_heatmap(history, None)
            heatmap = HEATMAP
        else:  # the round's own heatmap is already stored (a round of an older si-hf may have none)
            heatmap = (
                HEATMAP if (RunPaths(local.root).round(round, member).model / HEATMAP).is_file() else None
            )
        files[f"{MODEL}/{README}"] = str(model_card(info, metrics, heatmap=heatmap, **names)).encode()
        return files

    def index_pages(self, local, kind, links) -> dict[str, bytes]:
        results = RunResults.from_store(local)
        return {README: str(index_card(results, kind, links)).encode(), HEATMAP: run_heatmap(results, None)}
