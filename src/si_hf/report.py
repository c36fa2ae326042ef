"""Model and dataset cards: markdown with YAML front matter, as the Hub and `datasets` read them."""

from __future__ import annotations

import re

import yaml

from si_hf.tasks import difficulty_sort_key

TAGS = ["si-hf", "self-improvement", "length-generalization"]


def split_front_matter(text: str) -> tuple[dict, str]:
    """(metadata, body) of a card; metadata is {} when the card has no front matter."""
    m = re.match(r"^---\n(.*?\n)?---\n?(.*)$", text, re.S)
    if not m:
        return {}, text
    meta = yaml.safe_load(m[1] or "") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"card front matter must be a YAML mapping, got {type(meta).__name__}")
    return meta, m[2]


def join_front_matter(meta: dict, body: str) -> str:
    return f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---\n\n{body.lstrip()}"


def _require_round(info: dict) -> None:
    if not isinstance(info, dict) or not isinstance(info.get("round"), int):
        raise ValueError(f"info must be a dict with an int 'round', got {info!r:.200}")


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "n/a" if value is None else str(value)


def dataset_card(info: dict) -> str:
    """Card of one round's self-labelled dataset: task, round, generating model, filter, counts."""
    _require_round(info)
    task, r = info.get("task", "unknown"), info["round"]
    meta = {
        "pretty_name": f"si-hf {task} round {r}",
        "tags": TAGS + [str(task)],
        "task_categories": ["text-generation"],
    }
    rows = [
        ("task", task),
        ("round", r),
        ("member", info.get("member", 0)),
        ("generating model", info.get("generated_by", info.get("generating_model"))),
        ("filter", info.get("filter")),
        ("prompts labelled", info.get("n_generated")),
        ("labels kept", info.get("n_kept")),
        ("data accuracy (kept labels vs. oracle)", info.get("data_accuracy")),
    ]
    table = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in rows)
    body = (
        f"# si-hf {task}: self-labelled data of round {r}\n\n"
        "Prompts labelled by the previous round's model (no ground truth), kept by the filter below. "
        "Columns: prompt, completion (the model's label), difficulty, round, generated_by, filter, votes, "
        "oracle_correct (for analysis only: never used to filter; the verifier filter checks move and end validity, not this).\n\n"
        f"| | |\n|---|---|\n{table}\n"
    )
    return join_front_matter(meta, body)


def accuracy_table(metrics: dict) -> str:
    """Markdown table of metrics["accuracy"] = {difficulty_key: float}, in numeric difficulty order."""
    acc = metrics.get("accuracy") if isinstance(metrics, dict) else None
    if not isinstance(acc, dict):
        raise ValueError(f"metrics must hold 'accuracy': {{difficulty_key: float}}, got {metrics!r:.200}")
    lines = ["| difficulty | exact match |", "|---|---|"]
    lines += [f"| {k} | {float(acc[k]):.4f} |" for k in sorted(acc, key=difficulty_sort_key)]
    return "\n".join(lines)


def model_card(info: dict, metrics: dict) -> str:
    """Card of one round's checkpoint with the per-difficulty accuracy table."""
    _require_round(info)
    task, r = info.get("task", "unknown"), info["round"]
    meta = {"library_name": "transformers", "pipeline_tag": "text-generation", "tags": TAGS + [str(task)]}
    counts = {k: v for k, v in metrics.items() if k != "accuracy" and isinstance(v, int | float | str)}
    extra = "".join(f"- {k}: {_fmt(v)}\n" for k, v in counts.items())
    body = (
        f"# si-hf {task}: model after round {r}\n\n"
        f"Member {info.get('member', 0)}; trained on D_0 and the self-labelled rounds 1..{r}. "
        "Load with `AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)` "
        "and `AutoTokenizer.from_pretrained(path)`.\n\n"
        f"## Exact-match accuracy per difficulty\n\n{accuracy_table(metrics)}\n"
        + (f"\n{extra}" if extra else "")
    )
    return join_front_matter(meta, body)
