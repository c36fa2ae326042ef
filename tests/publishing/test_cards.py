"""Cards built with huggingface_hub's card classes: the metadata the Hub reads survives a round trip."""

import re
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard, ModelCard

from si_hf.publishing.cards import (
    LICENSE,
    base_model,
    dataset_card,
    generating_models,
    index_card,
    model_card,
    size_category,
)
from si_hf.results import Record, RunResults

REPO = Path(__file__).resolve().parents[2]
INFO = {"task": "copy", "round": 3, "member": 1, "filter": "length", "n_generated": 2000, "n_kept": 1987,
        "data_accuracy": 0.9912, "generated_by": "round-2/member-1"}  # fmt: skip
METRICS = {"accuracy": {"10": 0.25, "9": 1.0, "11": 0.0}, "n_eval": 200}


def test_license_is_the_projects():
    declared = re.search(r'^license = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M)[1]
    assert LICENSE == declared.lower()


def test_model_card_metadata_for_the_hub():
    card = model_card(INFO, METRICS, hub_model_id="user/m", hub_dataset_id="user/d", heatmap="heatmap.png")
    data = ModelCard(str(card)).data  # what the Hub and huggingface_hub read back
    assert data.license == LICENSE and data.library_name == "transformers"
    assert data.pipeline_tag == "text-generation" and "copy" in data.tags and "si-hf" in data.tags
    assert data.base_model == "user/m@round-2" and data.datasets == ["user/d"]
    assert data.model_name == "si-hf-copy-round-3"
    assert {r.dataset_config: r.metric_value for r in data.eval_results} == METRICS["accuracy"]
    assert {r.metric_type for r in data.eval_results} == {"exact_match"}
    assert "model-index:" in str(card)
    assert "![exact match per round and difficulty](heatmap.png)" in card.text
    assert 'from_pretrained("user/m", revision="round-3")' in card.text


def test_local_card_names_no_hub_repo():
    data = model_card(INFO, METRICS).data
    assert data.base_model is None and data.datasets is None
    assert 'from_pretrained("rounds/round-003/member-1/model"' in model_card(INFO, METRICS).text


def test_member_cards_load_from_their_subfolder():
    card = model_card(INFO, METRICS, hub_model_id="user/m", num_members=3)
    assert card.data.model_name == "si-hf-copy-round-3-member-1"
    assert 'revision="round-3", subfolder="member-1"' in card.text


def test_base_model_is_the_previous_round_or_the_pretrained_model(tmp_path):
    lora = {"config": {"model": {"model_name_or_path": "meta-llama/Llama-3.2-1B"}}}
    assert base_model({**lora, "round": 0}) == "meta-llama/Llama-3.2-1B"
    assert base_model({**lora, "round": 2}) == "meta-llama/Llama-3.2-1B"
    assert base_model({**lora, "round": 2}, "user/m") == "user/m@round-1"
    assert base_model({"round": 0}, "user/m") is None  # trained from scratch
    # the first round after --resume_from fine-tuned the source's round, not one of this repo
    resumed = {"round": 4, "resumed_from": {"spec": "other/m@round-3/member-1", "member": 1}}
    assert base_model(resumed, "user/m") == "other/m@round-3"
    assert base_model({**resumed, "round": 5}, "user/m") == "user/m@round-4"
    local = {"round": 4, "resumed_from": {"spec": str(tmp_path / "rounds/round-003/member-0")}}
    assert base_model(local, "user/m") is None
    (tmp_path / "llama").mkdir()  # a local pretrained model is no Hub id
    local = {"round": 0, "config": {"model": {"model_name_or_path": str(tmp_path / "llama")}}}
    assert base_model(local) is None


def test_accuracy_table_in_numeric_difficulty_order():
    body = model_card(INFO, METRICS).text
    rows = [line for line in body.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert rows == ["| 9 | 1.0000 |", "| 10 | 0.2500 |", "| 11 | 0.0000 |"]
    assert "- n_eval: 200" in body
    pairs = model_card(INFO, {"accuracy": {"10x2": 0.1, "2x10": 0.2, "2x3": 0.3}}).text
    keys = [
        line.split(" | ")[0][2:] for line in pairs.splitlines() if line.startswith("| ") and line[2].isdigit()
    ]
    assert keys == ["2x3", "2x10", "10x2"]


def test_dataset_card_metadata_and_generating_model():
    card = dataset_card(INFO, 1987, hub_model_id="user/m", hub_dataset_id="user/d")
    data = DatasetCard(str(card)).data
    assert data.license == LICENSE and data.size_categories == ["1K<n<10K"]
    assert data.task_categories == ["text-generation"] and data.annotations_creators == ["machine-generated"]
    assert data.pretty_name == "si-hf copy round 3" and "copy" in data.tags
    assert "| generating model | user/m@round-2 |" in card.text
    assert 'load_dataset("user/d", revision="round-3", split="train")' in card.text
    local = dataset_card(INFO, 0)
    assert local.data.size_categories == ["n<1K"]
    assert "| generating model | rounds/round-002/member-1/model |" in local.text


def test_generating_models_of_a_vote():
    vote = {**INFO, "generated_by": "round-2/members-0,1,2"}
    assert generating_models(vote, "user/m", num_members=3) == [
        f"user/m@round-2/member-{j}" for j in range(3)
    ]
    assert generating_models(vote) == [f"rounds/round-002/member-{j}/model" for j in range(3)]
    assert generating_models({"round": 1}) == []


@pytest.mark.parametrize("n, category", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (10**6, "1M<n<10M")])
def test_size_categories(n, category):
    assert size_category(n) == category


def test_index_card_table_heatmap_and_links():
    run = RunResults(
        [
            Record(0, 0, {"accuracy": {"1": 1.0, "2": 0.5}}, {"task": "copy", "levels": ["1"]}),
            Record(1, 0, {"accuracy": {"1": 1.0, "2": 0.75, "3": 0.25}, "n_generated": 10, "n_kept": 9,
                          "data_accuracy": 0.875}, {"task": "copy", "levels": ["2"]}),
        ]
    )  # fmt: skip
    links = {0: "https://hub/user/m/tree/round-0", 1: "https://hub/user/m/tree/round-1"}
    card = index_card(run, "model", links)
    assert ModelCard(str(card)).data.license == LICENSE
    assert "![exact match per round and difficulty](heatmap.png)" in card.text
    assert "| 1 | 100.0 | 75.0 | 25.0 |" in card.text and "| 0 | 100.0 | 50.0 | - |" in card.text
    assert "| 1 | [round-1](https://hub/user/m/tree/round-1) | 2 | 9/10 | 0.8750 |" in card.text
    data = index_card(run, "dataset", {1: "https://hub/datasets/user/d/tree/round-1"})
    assert DatasetCard(str(data)).data.viewer is False
    assert "| 0 | round-0 | D_0 |" in data.text  # no dataset branch for round 0


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="'accuracy'"):
        model_card(INFO, {"acc": {}})
    with pytest.raises(ValueError, match="int 'round'"):
        dataset_card({"task": "copy"}, 3)
    with pytest.raises(ValueError, match="num_rows must be a non-negative int, got -1"):
        dataset_card(INFO, -1)
    run = RunResults([Record(0, 0, {"accuracy": {"1": 1.0}})])
    with pytest.raises(ValueError, match="kind must be 'model' or 'dataset', got 'space'"):
        index_card(run, "space", {})
