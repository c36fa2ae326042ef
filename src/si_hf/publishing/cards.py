"""Model, dataset and index cards, built with huggingface_hub's `ModelCard`/`ModelCardData` and
`DatasetCard`/`DatasetCardData`, so the Hub reads their metadata: license, base model, datasets,
evaluation results (`model-index`: exact match per difficulty), size category, tags.

A round's cards are written twice: into the local store (paths, no Hub names) and, when the round is
pushed, again with the Hub names (`repo@round-r`), because only the push knows where it goes.
"""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

from si_hf import tables
from si_hf.layout import (
    DATASET,
    HEATMAP,
    HUB_SPEC,
    MODEL,
    REPO_ID,
    RunPaths,
    member_dirname,
    resume_spec,
    revision,
)
from si_hf.results import RunResults, accuracy_markdown
from si_hf.tasks import difficulty_sort_key

LICENSE = "apache-2.0"  # the project's license (pyproject: Apache-2.0), as the Hub spells it
TAGS = ["si-hf", "self-improvement", "length-generalization"]
SIZES = [(10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M")]
SIZES += [(10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B")]
_GENERATED_BY = re.compile(r"^round-(\d+)/(?:member-(\d+)|members-([\d,]+))$")


def _require_round(info: dict) -> None:
    if not isinstance(info, dict) or not isinstance(info.get("round"), int):
        raise ValueError(f"info must be a dict with an int 'round', got {info!r:.200}")


def _card(cls, data, body: str):
    return cls(f"---\n{data.to_yaml()}\n---\n\n{body.lstrip()}")


def _num_members(info: dict, given: int | None) -> int:
    if given is not None:
        return given
    return int(((info.get("config") or {}).get("self_improve") or {}).get("num_members") or 1)


def size_category(n: int) -> str:
    """The Hub's `size_categories` value for a dataset of n rows."""
    return next((name for bound, name in SIZES if n < bound), "n>1B")


def generating_models(info: dict, hub_model_id: str | None = None, num_members: int | None = None) -> list:
    """The model(s) that labelled a round: `repo@round-(r-1)[/member-m]` once published, else the
    local checkpoint directories, relative to the output directory."""
    who = info.get("generated_by")
    match = _GENERATED_BY.match(who) if isinstance(who, str) else None
    if match is None:
        return [who] if who else []
    r = int(match[1])
    members = [int(match[2])] if match[2] is not None else [int(j) for j in match[3].split(",")]
    if hub_model_id:
        k = _num_members(info, num_members)
        return [resume_spec(hub_model_id, r, j, k) for j in members]
    return [RunPaths(".").relative(r, j, MODEL) for j in members]


def base_model(info: dict, hub_model_id: str | None = None) -> str | None:
    """What round r fine-tuned: the previous round `repo@round-(r-1)` once published (in the repo of
    the run this one resumed from, when round r-1 is that run's); otherwise the pretrained model a LoRA
    / fine-tuning run started from, when it is a Hub id (a local path is not)."""
    r = info["round"]
    spec = str((info.get("resumed_from") or {}).get("spec") or "")
    rounds = re.findall(r"round-(\d+)", spec)
    if r > 0 and rounds and int(rounds[-1]) == r - 1:  # round r-1 is the resume source's
        hub = HUB_SPEC.match(spec)
        if hub:
            return f"{hub['repo']}@{revision(r - 1)}"
    elif r > 0 and hub_model_id:
        return f"{hub_model_id}@{revision(r - 1)}"
    name = ((info.get("config") or {}).get("model") or {}).get("model_name_or_path")
    if isinstance(name, str) and REPO_ID.fullmatch(name) and not Path(name).exists():
        return name
    return None


def accuracy_table(metrics: dict) -> str:
    """Markdown table of metrics["accuracy"] = {difficulty_key: float}, in numeric difficulty order."""
    acc = metrics.get("accuracy") if isinstance(metrics, dict) else None
    if not isinstance(acc, dict):
        raise ValueError(f"metrics must hold 'accuracy': {{difficulty_key: float}}, got {metrics!r:.200}")
    rows = [[k, float(acc[k])] for k in sorted(acc, key=difficulty_sort_key)]
    return tables.markdown(["difficulty", "exact match"], rows)


def eval_results(task: str, accuracy: dict[str, float]) -> list[EvalResult]:
    """model-index entries: exact match on held-out prompts, one per difficulty (dataset config)."""
    return [
        EvalResult(
            task_type="text-generation",
            task_name=f"{task} (exact match)",
            dataset_type=f"si-hf/{task}",
            dataset_name=f"{task} held-out prompts, difficulty {k}",
            dataset_config=k,
            dataset_split="eval",
            metric_type="exact_match",
            metric_name=f"exact match, difficulty {k}",
            metric_value=float(accuracy[k]),
        )
        for k in sorted(accuracy, key=difficulty_sort_key)
    ]


def _load_lines(kind: str, info: dict, hub_id: str | None, num_members: int) -> str:
    r, m = info["round"], info.get("member", 0)
    local = RunPaths(".").relative(r, m, kind)
    note = "" if hub_id else "# the path is relative to the run's output directory\n"
    if kind == MODEL:
        sub = f', subfolder="{member_dirname(m)}"' if num_members > 1 else ""
        where = f'"{hub_id}", revision="{revision(r)}"{sub}' if hub_id else f'"{local}"'
        return (
            f"```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n{note}"
            f"model = AutoModelForCausalLM.from_pretrained({where})\n"
            f"tokenizer = AutoTokenizer.from_pretrained({where})\n```\n"
        )
    config = f'"{member_dirname(m)}", ' if num_members > 1 else ""
    where = f'"{hub_id}", {config}revision="{revision(r)}"' if hub_id else f'"{local}"'
    return f'```python\nfrom datasets import load_dataset\n\n{note}labels = load_dataset({where}, split="train")\n```\n'


def model_card(
    info: dict,
    metrics: dict,
    *,
    hub_model_id: str | None = None,
    hub_dataset_id: str | None = None,
    num_members: int | None = None,
    heatmap: str | None = None,
) -> ModelCard:
    """Card of one round's checkpoint: metadata for the Hub, how to load it, its heatmap (the file
    `heatmap` beside the card) and the per-difficulty accuracy table."""
    _require_round(info)
    table = accuracy_table(metrics)
    task, r, m = info.get("task", "unknown"), info["round"], info.get("member", 0)
    k = _num_members(info, num_members)
    name = f"si-hf-{task}-round-{r}" + (f"-member-{m}" if k > 1 else "")
    data = ModelCardData(
        license=LICENSE,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=TAGS + [str(task)],
        base_model=base_model(info, hub_model_id),
        datasets=[hub_dataset_id] if hub_dataset_id and r > 0 else None,
        model_name=name,
        eval_results=eval_results(task, metrics["accuracy"]) or None,
    )
    member = f"Member {m} of a {k}-member majority-vote run. " if k > 1 else ""
    trained = "D_0" + (f" and the self-labelled rounds 1..{r}" if r else "")
    counts = {x: v for x, v in metrics.items() if x != "accuracy" and isinstance(v, int | float | str)}
    extra = "".join(f"- {x}: {tables.cell(v)}\n" for x, v in counts.items())
    figure = f"![exact match per round and difficulty]({heatmap})\n\n" if heatmap else ""
    base = data.base_model or (f"the round {r - 1} model" if r else "none (trained from scratch)")
    body = (
        f"# si-hf {task}: model after round {r}\n\n{member}Trained on {trained} "
        f"(self-improvement, Lee et al. 2025, section 3); base model: {base}.\n\n"
        f"{_load_lines(MODEL, info, hub_model_id, k)}\n"
        f"## Exact match per round and difficulty\n\n{figure}"
        f"## Exact-match accuracy per difficulty after round {r}\n\n{table}\n"
        + (f"\n{extra}" if extra else "")
    )
    return _card(ModelCard, data, body)


def dataset_card(
    info: dict,
    num_rows: int,
    *,
    hub_model_id: str | None = None,
    hub_dataset_id: str | None = None,
    num_members: int | None = None,
) -> DatasetCard:
    """Card of one round's self-labelled dataset: task, round, generating model, filter, counts."""
    _require_round(info)
    if not isinstance(num_rows, int) or num_rows < 0:
        raise ValueError(f"num_rows must be a non-negative int, got {num_rows!r}")
    task, r, m = info.get("task", "unknown"), info["round"], info.get("member", 0)
    k = _num_members(info, num_members)
    data = DatasetCardData(
        license=LICENSE,
        pretty_name=f"si-hf {task} round {r}" + (f" member {m}" if k > 1 else ""),
        tags=TAGS + [str(task)],
        task_categories=["text-generation"],
        size_categories=[size_category(num_rows)],
        annotations_creators=["machine-generated"],
        language_creators=["machine-generated"],
        source_datasets=["original"],
    )
    rows = [
        ("task", task),
        ("round", r),
        ("member", m),
        ("generating model", ", ".join(generating_models(info, hub_model_id, k)) or None),
        ("filter", info.get("filter")),
        ("prompts labelled", info.get("n_generated")),
        ("labels kept", info.get("n_kept")),
        ("data accuracy (kept labels vs. oracle)", info.get("data_accuracy")),
    ]
    table = tables.markdown(["", ""], rows)
    body = (
        f"# si-hf {task}: self-labelled data of round {r}\n\n"
        "Prompts labelled by the previous round's model (no ground truth), kept by the filter below. "
        "Columns: prompt, completion (the model's label), difficulty, round, generated_by, filter, votes, "
        "oracle_correct (for analysis only: never used to filter; the verifier filter checks move and end validity, not this).\n\n"
        f"{_load_lines(DATASET, info, hub_dataset_id, k)}\n{table}\n"
    )
    return _card(DatasetCard, data, body)


def index_card(results: RunResults, kind: str, links: dict[int, str], *, heatmap: str | None = HEATMAP):
    """The landing page of a run (the `main` branch of a Hub repo, or the output directory): the full
    round x difficulty table, the heatmap and one link per round (`links`: {round: url or path})."""
    if kind not in ("model", "dataset"):
        raise ValueError(f"kind must be 'model' or 'dataset', got {kind!r}")
    task, k = results.task, len(results.members)
    if kind == "model":
        data = ModelCardData(license=LICENSE, tags=TAGS + [task])
    else:  # main holds no data: no viewer, or the Hub would show the heatmap as an image dataset
        data = DatasetCardData(license=LICENSE, pretty_name=f"si-hf {task}", tags=TAGS + [task], viewer=False)
    mean = f" (mean over {k} members)" if k > 1 else ""
    d0 = ", ".join(results.supervised) or "n/a"
    rows = []
    data_accuracy = results.data_accuracy()
    for r in results.rounds:
        target = f"[{revision(r)}]({links[r]})" if r in links else revision(r)
        labelled = [x for m in results.members for x in results.label_rows(m) if x["round"] == r]
        if not labelled:
            rows.append([r, target, "D_0", "supervised", None])
            continue
        kept, gen = (sum(x[c] or 0 for x in labelled) for c in ("n_kept", "n_generated"))
        rows.append([r, target, ", ".join(labelled[0]["levels"]), f"{kept}/{gen}", data_accuracy.get(r)])
    head = ["round", "link", "labelled levels", "labels kept", "data accuracy"]
    figure = f"![exact match per round and difficulty]({heatmap})\n\n" if heatmap else ""
    body = (
        f"# si-hf {task}: self-improvement rounds\n\n"
        f"Each round is a branch `round-r` ({len(results.rounds)} so far); the supervised range D_0 is "
        f"{d0}. Rounds >= 1 were labelled by the previous round's model, without ground truth.\n\n"
        f"{figure}## Exact match (%) per round and difficulty{mean}\n\n"
        f"`*`: supervised (D_0)\n\n{accuracy_markdown(results)}\n\n"
        f"## Rounds\n\n{tables.markdown(head, rows)}\n"
    )
    return _card(ModelCard if kind == "model" else DatasetCard, data, body)
