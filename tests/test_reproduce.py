"""scripts/reproduce.py (`make reproduce`): every recipe under every seed, reports, summaries, resume."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from test_report import SMALL

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    """scripts/reproduce.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "scripts" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_process(command: list[str]) -> None:
    """A recipe run in this process (the launcher's command line is test_plan's business): the same
    round loop without the start-up of two Python processes."""
    from si_hf.cli import run

    assert command[:2] == [command[0], "launch"] and "recipes/run_round.py" in command
    assert run(command[command.index("recipes/run_round.py") + 1 :]) == 0


@pytest.fixture
def reproduce(monkeypatch, tmp_path):
    """The script as a module, its task list replaced by a tiny copy contrast (none vs length), its runs
    in this process."""
    module = load_script()
    monkeypatch.setattr(module, "execute", in_process)
    monkeypatch.chdir(ROOT)
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
    module = load_script()
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


def test_every_vote_recipe_votes_and_its_task_has_recipes():
    module = load_script()
    for task, recipe in module.VOTES.items():
        assert task in module.RECIPES and task in recipe and (ROOT / recipe).is_file()
        assert module.num_members(recipe) <= len(module.SEEDS)


# what a vote recipe may set apart from the recipe whose round-0 models its members resume from
AFTER_ROUND_0 = {"output_dir", "num_rounds", "filters", "num_members", "vote_threshold", "vote_labels",
                 "length_filter_tau"}  # fmt: skip


def test_every_vote_recipe_trains_round_0_as_the_recipe_it_resumes_from():
    """The vote's members start from the first recipe's round 0, so the vote recipe run alone must train
    the same round 0 under the same seed: every task, model and round-0 key agrees."""
    module = load_script()
    for task, recipe in module.VOTES.items():
        vote, first = (yaml.safe_load((ROOT / r).read_text()) for r in (recipe, module.RECIPES[task][0]))
        differ = {k for k in vote.keys() | first.keys() if vote.get(k) != first.get(k)}
        assert differ <= AFTER_ROUND_0, (
            f"{recipe} and {module.RECIPES[task][0]} differ in {differ - AFTER_ROUND_0}"
        )
        assert "majority_vote" in vote["filters"] and vote["vote_threshold"] == 1.0


def test_vote_resumes_from_the_seeds_round_0_models(reproduce, monkeypatch, tmp_path, capsys):
    """The vote trains no round 0 of its own: member m starts from round 0 of seed m's run."""
    vote = tmp_path / "config_tiny_vote.yaml"
    vote.write_text(json.dumps({**SMALL, "task": "copy", "d0": "3", "filters": ["majority_vote"],
                                "num_members": 2, "vote_threshold": 1.0, "report_to": "none"}))  # fmt: skip
    monkeypatch.setattr(reproduce, "RECIPES", {"copy": reproduce.RECIPES["copy"][:1]})
    monkeypatch.setattr(reproduce, "VOTES", {"copy": str(vote)})
    out = tmp_path / "out"

    # too few seeds to vote: the seeds run, the vote is skipped with a note
    assert [r["recipe"] for r in reproduce.plan(["copy"], [7], out)] == [reproduce.RECIPES["copy"][0]]
    assert "not run, it votes over 2 models" in capsys.readouterr().err

    assert reproduce.main(["copy", "--seeds", "7", "8", "--output_dir", str(out)]) == 0
    run = out / "copy" / "tiny_vote" / "seeds-7-8"
    for m, seed in enumerate((7, 8)):
        link = out / "copy" / "tiny_vote" / "members-7-8" / f"member-{m}"
        source = out / "copy" / "tiny_none" / f"seed-{seed}" / "rounds" / "round-000" / "member-0"
        assert link.is_symlink() and link.resolve() == source.resolve()
        info = json.loads((run / "rounds" / "round-001" / f"member-{m}" / "si_hf_round.json").read_text())
        assert info["info"]["resumed_from"]["spec"] == str(link)
    assert not (run / "rounds" / "round-000").exists()
    wall = json.loads((run / "wall.json").read_text())
    assert wall["rounds_run"] == 1 and "--resume_from" in wall["command"]
    assert "seeds-7-8" in (out / "copy" / "contrast.md").read_text()

    # a rerun trains nothing; a member link that points elsewhere is refused, not followed
    first = (run / "wall.json").read_text()
    assert reproduce.main(["copy", "--seeds", "7", "8", "--output_dir", str(out)]) == 0
    assert (run / "wall.json").read_text() == first
    members = reproduce.plan(["copy"], [7, 8], out)[-1]["members"]
    link = out / "copy" / "tiny_vote" / "members-7-8" / "member-1"
    link.unlink()
    link.symlink_to(out / "copy" / "tiny_none" / "seed-7" / "rounds" / "round-000" / "member-0")
    with pytest.raises(FileExistsError, match="member-1 points to .*seed-7.*expected .*seed-8"):
        reproduce.link_members(members)
    # a seed whose round 0 never finished cannot be voted with
    missing = {tmp_path / "links" / "member-0": tmp_path / "nowhere"}
    with pytest.raises(FileNotFoundError, match="nowhere: no finished round 0"):
        reproduce.link_members(missing)
