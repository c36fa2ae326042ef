import pytest
import yaml

from si_hf.report import dataset_card, join_front_matter, model_card, split_front_matter

INFO = {"task": "copy", "round": 3, "member": 1, "filter": "length(tau=2)", "n_generated": 2000, "n_kept": 1987,
        "data_accuracy": 0.9912, "generated_by": "round-2/member-1"}  # fmt: skip


def test_dataset_card_front_matter_and_facts():
    card = dataset_card(INFO)
    assert card.startswith("---\n")
    meta, body = split_front_matter(card)
    assert meta == yaml.safe_load(card.split("---\n")[1])
    assert "copy" in meta["tags"] and meta["task_categories"] == ["text-generation"]
    for fact in ("| round | 3 |", "| member | 1 |", "| filter | length(tau=2) |", "| prompts labelled | 2000 |",
                 "| labels kept | 1987 |", "| 0.9912 |", "round-2/member-1"):  # fmt: skip
        assert fact in body, fact


def test_model_card_accuracy_table_in_numeric_difficulty_order():
    metrics = {"accuracy": {"10": 0.25, "9": 1.0, "11": 0.0}, "n_eval": 200}
    meta, body = split_front_matter(model_card(INFO, metrics))
    assert meta["library_name"] == "transformers"
    rows = [line for line in body.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert rows == ["| 9 | 1.0000 |", "| 10 | 0.2500 |", "| 11 | 0.0000 |"]
    assert "- n_eval: 200" in body


def test_model_card_orders_multiplication_pairs():
    body = model_card(INFO, {"accuracy": {"10x2": 0.1, "2x10": 0.2, "2x3": 0.3}})
    keys = [
        line.split(" | ")[0][2:] for line in body.splitlines() if line.startswith("| ") and line[2].isdigit()
    ]
    assert keys == ["2x3", "2x10", "10x2"]


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="'accuracy'"):
        model_card(INFO, {"acc": {}})
    with pytest.raises(ValueError, match="int 'round'"):
        dataset_card({"task": "copy"})
    with pytest.raises(ValueError, match="YAML mapping"):
        split_front_matter("---\n- a\n---\nbody")


def test_front_matter_round_trip_keeps_unknown_keys():
    meta = {"configs": [{"config_name": "default", "data_files": "data/*"}], "tags": ["x"]}
    assert split_front_matter(join_front_matter(meta, "# hi\n")) == (meta, "\n# hi\n")
    assert split_front_matter("no front matter") == ({}, "no front matter")
