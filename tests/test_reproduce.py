"""scripts/reproduce.py (`make reproduce`): every recipe under every seed, reports, summaries, resume."""

import importlib.util
import json
from pathlib import Path

import pytest
from test_report import SMALL

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def reproduce(monkeypatch, tmp_path):
    """The script as a module, its task list replaced by a tiny copy contrast (none vs length)."""
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "scripts" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recipes = []
    for name, filters in (("config_tiny_none.yaml", ["none"]), ("config_tiny_length.yaml", ["length"])):
        path = tmp_path / name
        path.write_text(
            json.dumps({**SMALL, "task": "copy", "d0": "3", "filters": filters, "report_to": "none"})
        )
        recipes.append(str(path))
    monkeypatch.setattr(module, "RECIPES", {"copy": recipes})
    return module


def test_every_recipe_in_the_task_list_exists():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "scripts" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for task, recipes in module.RECIPES.items():
        for recipe in recipes:
            assert (ROOT / recipe).is_file(), recipe
            assert task in recipe


def test_plan_names_every_run_and_refuses_unknown_tasks(reproduce, tmp_path):
    runs = reproduce.plan(["copy"], [1, 2], tmp_path / "out")
    assert [(Path(r["recipe"]).name, r["seed"]) for r in runs] == [
        ("config_tiny_none.yaml", 1), ("config_tiny_none.yaml", 2),
        ("config_tiny_length.yaml", 1), ("config_tiny_length.yaml", 2),
    ]  # fmt: skip
    assert runs[0]["output_dir"] == tmp_path / "out" / "copy" / "tiny_none" / "seed-1"
    assert runs[0]["command"][-6:] == ["--config", runs[0]["recipe"], "--seed", "1", "--output_dir",
                                       str(runs[0]["output_dir"])]  # fmt: skip
    with pytest.raises(ValueError, match="unknown task.*'maze'"):
        reproduce.plan(["maze"], [1], tmp_path)


def test_runs_writes_reports_and_summaries_and_resumes(reproduce, tmp_path, capsys):
    out = tmp_path / "out"
    assert reproduce.main(["copy", "--seeds", "7", "--output_dir", str(out)]) == 0
    for variant in ("tiny_none", "tiny_length"):
        run = out / "copy" / variant / "seed-7"
        wall = json.loads((run / "wall.json").read_text())
        assert wall["seconds"] > 0 and wall["rounds_run"] == 2 and wall["resumed"] is False
        assert "--seed 7" in wall["command"] and wall["cpu"]
        assert (run / "report" / "report.md").is_file()
        assert "| seed-7 | 1 |" in (out / "copy" / variant / "summary.md").read_text()
    contrast = (out / "copy" / "contrast.md").read_text()
    assert "| tiny_none/seed-7 | 1 |" in contrast and "| tiny_length/seed-7 | 1 |" in contrast
    assert "**mean**" in contrast
    # a rerun finds every round in the stores: nothing trains, the recorded times stay
    first = (out / "copy" / "tiny_none" / "seed-7" / "wall.json").read_text()
    assert reproduce.main(["copy", "--seeds", "7", "--output_dir", str(out)]) == 0
    assert (out / "copy" / "tiny_none" / "seed-7" / "wall.json").read_text() == first
