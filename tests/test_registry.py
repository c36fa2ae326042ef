"""Registries: what users extend registers itself, and a user's own module extends a run (docs/extending.md)."""

import json
from pathlib import Path

import pytest

from si_hf.configs import SelfImproveArguments
from si_hf.filtering import FILTERS
from si_hf.registry import Registry, load_plugins
from si_hf.schedules import SCHEDULES
from si_hf.tasks import TASKS

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sort_digits.yaml"


def test_register_get_describe_and_the_errors_that_name_the_key():
    reg = Registry("widget", key="widgets")

    @reg.register(help="a square", options=("side",))
    class Square:
        name = "square"

    reg.register("dot", object(), help="a dot", options={"dot_size": "size"})
    assert reg.names() == ["square", "dot"] and list(reg) == ["square", "dot"] and "dot" in reg
    assert reg.get("square").obj is Square and reg.get("dot").options == {"dot_size": "size"}
    assert reg.describe() == "square: a square (options: side); dot: a dot (options: dot_size)"
    with pytest.raises(
        ValueError, match=r"widgets: 'circle' is not a registered widget; expected one of \['square', 'dot'\]"
    ):
        reg.get("circle")
    with pytest.raises(ValueError, match="widget 'dot' is already registered"):
        reg.register("dot", object(), help="another dot")
    with pytest.raises(ValueError, match="needs a name"):
        reg.register(obj=object(), help="nameless")
    reg.unregister("dot")
    assert reg.names() == ["square"]


def test_an_option_of_an_unused_entry_set_away_from_its_default_is_named():
    SCHEDULES.refuse_unused_options(
        SelfImproveArguments(schedule="accelerated", accelerate_threshold=0.9), "accelerated"
    )
    with pytest.raises(
        ValueError,
        match=r"accelerate_threshold: 0.9 applies to schedule accelerated and multiplication_accelerated only.*'standard'",
    ):
        SCHEDULES.refuse_unused_options(SelfImproveArguments(accelerate_threshold=0.9), "standard")
    with pytest.raises(
        ValueError,
        match=r"vote_threshold: 0.5 applies to filter majority_vote only.*\['length', 'verifier'\]",
    ):
        FILTERS.refuse_unused_options(SelfImproveArguments(vote_threshold=0.5), ["length", "verifier"])


def test_every_built_in_is_registered():
    assert set(TASKS.names()) == {"reverse_addition", "forward_addition", "copy", "reverse_string",
                                  "multiplication", "maze_hops", "maze_nodes"}  # fmt: skip
    assert FILTERS.names() == ["none", "finished", "length", "majority_vote", "oracle", "verifier"]
    assert SCHEDULES.names() == ["standard", "accelerated", "multiplication", "multiplication_accelerated"]


@pytest.fixture
def registries_restored():
    """What a test registers (a plugin's entries) is gone afterwards: the registries are process-wide."""
    import sys

    before = {reg: reg.names() for reg in (TASKS, FILTERS, SCHEDULES)}
    modules = set(sys.modules)
    yield
    for reg, names in before.items():
        for name in set(reg.names()) - set(names):
            reg.unregister(name)
    for name in set(sys.modules) - modules:
        if name.startswith("si_hf_plugin_"):
            del sys.modules[name]


def test_plugins_that_cannot_be_loaded_are_named(tmp_path, registries_restored):
    with pytest.raises(ValueError, match="plugins: cannot import 'no_such_module_xyz'"):
        load_plugins(["no_such_module_xyz"])
    with pytest.raises(ValueError, match=r"plugins: '.*missing.py' is not a file"):
        load_plugins([str(tmp_path / "missing.py")])
    plugin = tmp_path / "twice.py"
    plugin.write_text(
        "from si_hf.schedules import SCHEDULES, Schedule, standard\n"
        "SCHEDULES.register('twice_test', Schedule(standard), help='registered once')\n"
    )
    # imported once per path: a second import would register the name again, which is an error
    assert load_plugins([str(plugin)]) == load_plugins([str(plugin)]) and "twice_test" in SCHEDULES


def test_plugins_named_on_the_command_line_and_in_the_recipe(monkeypatch, registries_restored):
    from si_hf.rounds import _plugins_named, parse_args

    monkeypatch.chdir(REPO)
    argv = ["--plugins", "examples/my_extension.py", "--seed", "3", "--task", "sort_digits"]
    assert _plugins_named(argv) == ["examples/my_extension.py"]  # the flags after it are not plugins
    assert _plugins_named([f"--config={EXAMPLE}", "--plugins=extra.py"]) == [
        "examples/my_extension.py",
        "extra.py",
    ]
    task_args, si, *_ = parse_args(
        [*argv, "--d0", "4", "--max_steps", "10", "--output_dir", "/tmp/unused", "--filters", "same_digits"]
    )
    assert (
        task_args.task == "sort_digits"
        and si.filters == ["same_digits"]
        and si.plugins == ["examples/my_extension.py"]
    )


@pytest.mark.parametrize(
    "options, match",
    [
        ({"nothing_registered": {"a": 1}}, r"plugin_options: 'nothing_registered' names no registered task"),
        (
            {"accelerated": {"a": 1}},
            r"plugin_options: 'accelerated' is registered but this run does not use it",
        ),
        ({"wide": 3}, r"plugin_options.wide: 3 is not a mapping of options"),
        ({"wide": {"width": 0}}, r"plugin_options.wide.width=0: expected an int >= 1"),
    ],
)
def test_plugin_options_are_checked_before_any_work(monkeypatch, registries_restored, options, match):
    from si_hf.rounds import parse_args

    monkeypatch.chdir(REPO)
    with pytest.raises(ValueError, match=match):
        parse_args(["--config", str(EXAMPLE), "--plugin_options", json.dumps(options)])


def test_the_usage_doc_names_every_built_in():
    usage = (REPO / "docs" / "usage.md").read_text()
    for registry in (TASKS, FILTERS, SCHEDULES):
        for name in registry.names():
            assert f"`{name}`" in usage, name


def test_a_users_task_filter_and_schedule_run_a_round(tmp_path, monkeypatch, capsys, registries_restored):
    """examples/sort_digits.yaml with a tiny model: the plugin's task is trained on, its schedule picks
    round 1's two levels, its filter keeps the labels that use the prompt's digits and drops the others,
    and --help lists what it registered."""
    from si_hf.rounds import main, parse_args

    monkeypatch.chdir(REPO)  # the recipe names its plugin relative to the repository, as a user runs it
    with pytest.raises(SystemExit):
        parse_args(["--config", str(EXAMPLE), "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "sort_digits: sort the digits" in help_text and "same_digits: keep a label" in help_text
    # D_0 = lengths 1-3: enough for a tiny model to write some right permutations of lengths 4 and 5
    tiny = {"preset": "tiny", "d0": "3", "num_d0_examples": 2000, "max_steps": 150, "learning_rate": 3.0e-3,
            "per_device_train_batch_size": 16,
            "lr_scheduler_kwargs": {"num_decay_steps": 5}, "warmup_steps": 2, "pack_length": None,
            "num_rounds": 1, "examples_per_round": 48, "label_batch_size": 16, "round_max_steps": 4,
            "round_decay_steps": 2, "eval_examples_per_difficulty": 8, "eval_beyond": 1, "report_to": [],
            "disable_tqdm": True, "output_dir": str(tmp_path / "run")}  # fmt: skip
    config = tmp_path / "config.yaml"
    import yaml

    config.write_text(json.dumps({**yaml.safe_load(EXAMPLE.read_text()), **tiny}))
    main(["--config", str(config)])
    from test_rounds import round_dataset

    out = tmp_path / "run" / "rounds" / "round-001" / "member-0"
    rows = round_dataset(tmp_path / "run", 1)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_generated"] == 48 and metrics["filter_counts"]["total"] == 48
    assert metrics["filter_counts"]["same_digits"] == metrics["n_kept"] == len(rows)
    assert 0 < metrics["n_kept"] < metrics["filter_counts"]["finished"]  # some kept, some dropped
    assert set(rows["filter"]) == {"same_digits"} and set(rows["difficulty"]) <= {"4", "5"}
    for prompt, label in zip(rows["prompt"], rows["completion"]):
        assert sorted(label) == sorted(prompt[:-1])
    # the plugin's filter as a stage of apply_filters: kept exactly when the digits are the prompt's
    from si_hf.filtering import apply_filters
    from si_hf.labeling import Prediction

    preds = [Prediction(t, True, len(t)) for t in ("1233", "1234", "123", "3321")]
    assert apply_filters(["same_digits"], preds, prompts=["3321="] * 4).keep == [True, False, False, True]
    info = json.loads((out / "si_hf_round.json").read_text())["info"]
    assert info["levels"] == ["4", "5"] and info["task"] == "sort_digits"  # the `wide` schedule: 2 levels
    assert sorted(metrics["accuracy"], key=int) == [str(n) for n in range(1, 7)]
