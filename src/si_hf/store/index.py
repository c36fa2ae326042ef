"""The landing page of a run, rewritten after every round: `<output_dir>/README.md` locally and the
`main` branch of each Hub repo (which holds nothing else: every round lives on its own branch).

Both show the full round x difficulty table, the heatmap (stored beside the README) and one link per
round: a directory locally, the `round-r` branch on the Hub.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from si_hf.cards import HEATMAP, index_card
from si_hf.report import run_heatmap
from si_hf.results import RunResults

from .layout import hub_endpoint, hub_errors, round_dirname

README = "README.md"


def write_local_index(local) -> Path:
    """`<root>/README.md` and `<root>/heatmap.png` for the rounds the local store holds."""
    results = RunResults.from_store(local)
    run_heatmap(results, local.root / HEATMAP)
    links = {r: f"rounds/{round_dirname(r)}" for r in results.rounds}
    text = str(index_card(results, "model", links))
    tmp = local.root / f".{README}.tmp"
    tmp.write_text(text)
    os.replace(tmp, local.root / README)  # a reader never sees half a README
    return local.root / README


def push_hub_index(mirror) -> None:
    """Commit README.md + heatmap.png to `main` of the dataset and the model repo, in one commit each."""
    from huggingface_hub import CommitOperationAdd

    results = RunResults.from_store(mirror.local)
    with tempfile.TemporaryDirectory() as tmp:
        png = run_heatmap(results, Path(tmp) / HEATMAP).read_bytes()
    targets = [(mirror.dataset_id, "dataset")] if mirror.dataset_id else []
    targets += [(mirror.model_id, "model")] if mirror.model_id else []
    for repo, kind in targets:
        base = f"{hub_endpoint()}/{'datasets/' if kind == 'dataset' else ''}{repo}/tree"
        # round 0 trains on D_0 alone, so the dataset repo has no branch for it
        links = {r: f"{base}/round-{r}" for r in results.rounds if kind == "model" or r > 0}
        if not links:  # the dataset repo is created by the first round with labels
            continue
        card = index_card(results, kind, links)
        with hub_errors("writing the index README", repo, "main"):
            mirror.api.create_commit(
                repo,
                operations=[
                    CommitOperationAdd(README, str(card).encode()),
                    CommitOperationAdd(HEATMAP, png),
                ],
                repo_type=kind,
                revision="main",
                commit_message=f"si-hf index: rounds {results.rounds[0]}..{results.rounds[-1]}",
            )
