"""Bad input, tried as a hostile new user would: every case runs through the real CLI (`si-hf`, in this
process), gets an error that names the key or the file and what is expected, exits non-zero, and leaves
every file of the user's as it was (the SHA-256 of every file under the workspace, before and after).
A case that reaches the store may create the run's own new output folder, and nothing else."""

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_rounds import TINY

from si_hf.cli import main as cli

SMALL = {**TINY, "num_d0_examples": 500, "max_steps": 10, "round_max_steps": 3, "examples_per_round": 16,
         "eval_examples_per_difficulty": 4, "num_rounds": 1}  # fmt: skip


def _run_config(root: Path, name: str, **overrides) -> Path:
    path = root / f"{name}.json"
    path.write_text(json.dumps({**SMALL, "task": "copy", "d0": "3", **overrides}))
    return path


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Two real runs: copy (rounds 0-1, length filter) and reverse_string (round 0)."""
    root = tmp_path_factory.mktemp("published")
    copy = _run_config(root, "copy", filters=["length"], output_dir=str(root / "copy"))
    assert cli(["run", "--config", str(copy)]) == 0
    strings = _run_config(root, "rs", task="reverse_string", num_rounds=0, output_dir=str(root / "rs"))
    assert cli(["run", "--config", str(strings)]) == 0
    return root


@dataclass
class Workspace:
    root: Path  # the user's folder, the working directory of every command
    config: Path  # a valid tiny recipe writing to root/new_run
    copy: Path  # a copy of the published copy run (rounds 0-1)
    strings: Path  # a copy of the published reverse_string run (round 0)

    def recipe(self, **overrides) -> str:
        data = {**json.loads(self.config.read_text()), **overrides}
        path = self.root / "recipe.json"
        path.write_text(json.dumps(data))
        return str(path)

    def round_file(self, run: Path, r: int, name: str) -> Path:
        return run / "rounds" / f"round-{r:03d}" / "member-0" / name


@pytest.fixture
def ws(tmp_path, published, monkeypatch):
    (tmp_path / "README.md").write_text("my project\n")
    (tmp_path / "metrics.json").write_text('{"mine": true}\n')
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes\n")
    (mine / "metrics.json").write_text("[1, 2, 3]\n")
    (tmp_path / "empty_a").mkdir()
    (tmp_path / "empty_b").mkdir()
    config = _run_config(tmp_path, "config", output_dir=str(tmp_path / "new_run"))
    shutil.copytree(published / "copy", tmp_path / "copy")
    shutil.copytree(published / "rs", tmp_path / "rs")
    monkeypatch.chdir(tmp_path)
    return Workspace(tmp_path, config, tmp_path / "copy", tmp_path / "rs")


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _metrics_with_accuracy(ws: Workspace, value) -> None:
    path = ws.copy / "metrics.json"
    entries = json.loads(path.read_text())
    entries[0]["accuracy"]["1"] = value
    path.write_text(json.dumps(entries))


# (case id, prepare(ws), argv(ws), expected message (regex), exit code)
RUN = "run"
CASES = [
    # --- nothing of the user's is written over ---
    ("output_dir with the user's files", None, lambda w: [RUN, "--config", str(w.config), "--output_dir", "mine"],
     r"output_dir: mine holds files that are not an si-hf store \(README.md, metrics.json\).*empty or new folder", 2),
    ("empty output_dir", None, lambda w: [RUN, "--config", str(w.config), "--output_dir", ""],
     r"output_dir: '' names no folder", 2),
    ("output_dir is a file", None, lambda w: [RUN, "--config", str(w.config), "--output_dir", "README.md"],
     r"output_dir: README.md is a file", 2),
    # --- round and evaluation settings, before any work ---
    ("round_learning_rate", None, lambda w: [RUN, "--config", w.recipe(round_learning_rate=-1)],
     r"round_learning_rate: -1 must be a number > 0", 2),
    ("round_warmup_steps", None, lambda w: [RUN, "--config", w.recipe(round_warmup_steps=-4)],
     r"round_warmup_steps: -4 must be an int >= 0", 2),
    ("accelerate_threshold", None, lambda w: [RUN, "--config", w.recipe(schedule="accelerated", accelerate_threshold=-3)],
     r"accelerate_threshold: -3 is not in \(0, 1\]", 2),
    ("eval_beyond", None, lambda w: [RUN, "--config", w.recipe(eval_beyond=-5)], r"eval_beyond: -5 must be an int >= 0", 2),
    ("eval_until_below", None, lambda w: [RUN, "--config", w.recipe(eval_until_below=1.5)],
     r"eval_until_below: 1\.5 is not in \(0, 1\]", 2),
    ("eval_max_beyond below the window", None,
     lambda w: [RUN, "--config", w.recipe(eval_until_below=0.05, eval_beyond=5, eval_max_beyond=2)],
     r"eval_max_beyond: 2 is below eval_beyond: 5", 2),
    ("batch size 0", None, lambda w: [RUN, "--config", w.recipe(per_device_train_batch_size=0)],
     r"per_device_train_batch_size: 0 must be an int >= 1", 2),
    ("negative learning_rate", None, lambda w: [RUN, "--config", w.recipe(learning_rate=-0.5)],
     r"learning_rate: -0.5 must be > 0", 2),
    ("negative seed", None, lambda w: [RUN, "--config", str(w.config), "--seed", "-1"], r"seed: -1 must be an int in 0\.\.", 2),
    ("num_rounds past the task, at once", None, lambda w: [RUN, "--config", w.recipe(num_rounds=100_000_000)],
     r"num_rounds: round 100000000 would label difficulty .* at most 3997 rounds fit", 2),
    ("decay longer than the round", None, lambda w: [RUN, "--config", w.recipe(round_decay_steps=9)],
     r"round_decay_steps: 9 exceed round_max_steps: 3", 2),
    ("round 0 decay longer than max_steps", None,
     lambda w: [RUN, "--config", w.recipe(lr_scheduler_kwargs={"num_decay_steps": 50})],
     r"lr_scheduler_kwargs.num_decay_steps: 50 .* does not fit in max_steps: 10", 2),
    ("--round past num_rounds", None, lambda w: [RUN, "--config", str(w.config), "--round", "2"],
     r"round: 2 goes past num_rounds: 1", 2),
    # --- what was accepted silently ---
    ("filters: []", None, lambda w: [RUN, "--config", w.recipe(filters=[])], r"filters: \[\] names no filter", 2),
    ("a filter twice", None, lambda w: [RUN, "--config", str(w.config), "--filters", "length", "length"],
     r"\['length'\] appear more than once", 2),
    ("maze option on a copy run", None, lambda w: [RUN, "--config", w.recipe(maze_num_nodes=8)],
     r"maze_num_nodes: 8 applies to task maze_hops only.*task: 'copy'", 2),
    ("a length option without the length filter", None, lambda w: [RUN, "--config", w.recipe(length_filter_tau=5)],
     r"length_filter_tau: 5 applies to filter length only", 2),
    # --- the laboratory's instruments (docs/experiments.md) ---
    ("noise on a copy run", None, lambda w: [RUN, "--config", w.recipe(noise_rounds=[1], noise_fraction=0.2)],
     r"noise_rounds: \[1\]: label noise is defined on the digits of arithmetic answers.*task 'copy'", 2),
    ("noise in a round the run does not have", None,
     lambda w: [RUN, "--config", w.recipe(task="reverse_addition", noise_rounds=[3], noise_fraction=0.2)],
     r"noise_rounds: \[3\]: \[3\] not rounds of this run; expected rounds in 1..1", 2),
    ("a noise share past 1", None,
     lambda w: [RUN, "--config", w.recipe(task="reverse_addition", noise_rounds=[1], noise_fraction=1.5)],
     r"noise_fraction: 1.5; expected a number in \[0, 1\]", 2),
    ("an oracle rate without the oracle", None, lambda w: [RUN, "--config", w.recipe(oracle_false_accept=0.3)],
     r"oracle_false_accept: 0.3 applies to filter oracle only", 2),
    ("an oracle rate past 1", None,
     lambda w: [RUN, "--config", w.recipe(filters=["oracle"], oracle_false_accept=2)],
     r"oracle_false_accept: 2; expected a probability in \[0, 1\]", 2),
    ("an unknown label source", None, lambda w: [RUN, "--config", w.recipe(label_source="teacher")],
     r"label_source: 'teacher' is not one of \['model', 'truth'\]", 2),
    ("a flag twice", None, lambda w: [RUN, "--config", str(w.config), "--seed", "1", "--seed", "2"],
     r"--seed is given more than once \(1, 2\)", 2),
    # --- errors that named nothing ---
    ("two tasks", None, lambda w: [RUN, "--config", w.recipe(task=["copy", "reverse_string"])],
     r"task: \['copy', 'reverse_string'\] is not a task name", 2),
    ("non-UTF-8 recipe", lambda w: (w.root / "bad.yaml").write_bytes(b"task: copy\n\xff\xfe\n"),
     lambda w: [RUN, "--config", "bad.yaml"], r"--config: 'bad.yaml' is not UTF-8 text", 2),
    ("a folder as --config", None, lambda w: [RUN, "--config", "mine"], r"--config: 'mine' is a folder", 2),
    ("--config without a value", None, lambda w: [RUN, "--config"], r"--config needs the path of a YAML recipe", 2),
    ("two --config", None, lambda w: [RUN, "--config", str(w.config), "--config", str(w.config)],
     r"--config is given more than once", 2),
    ("not a mapping", lambda w: (w.root / "list.yaml").write_text("- task\n- copy\n"),
     lambda w: [RUN, "--config", "list.yaml"], r"--config: 'list.yaml' holds list; expected a mapping", 2),
    ("multiplication d0 as n", None,
     lambda w: [RUN, "--config", w.recipe(task="multiplication", d0="2", schedule="multiplication")],
     r"d0: '2': multiplication: difficulty '2' is invalid; expected an \(n, m\) pair", 2),
    # --- cases covered before, in the same table ---
    ("unknown key", None, lambda w: [RUN, "--config", w.recipe(num_rouns=3)], r"num_rouns", 2),
    ("unknown filter", None, lambda w: [RUN, "--config", w.recipe(filters=["lenght"])],
     r"filters: 'lenght' is not a registered filter; expected one of", 2),
    ("schedule for another task", None, lambda w: [RUN, "--config", w.recipe(schedule="multiplication")],
     r"schedule: 'multiplication' does not fit task 'copy'", 2),
    ("verifier without a maze", None, lambda w: [RUN, "--config", w.recipe(filters=["verifier"])],
     r"filters: 'verifier' needs a maze task", 2),
    ("empty resume_from", None, lambda w: [RUN, "--config", w.recipe(resume_from="")], r"resume_from: '' names no round", 2),
    ("hub token", None, lambda w: [RUN, "--config", str(w.config), "--hub_token", "hf_secret_value"], r"HF_TOKEN", 2),
    ("decode precision", None, lambda w: [RUN, "--config", w.recipe(decode_precision="fp16")],
     r"decode_precision: 'fp16' is not one of \['fp32', 'native', 'bf16'\]", 2),
    ("plugin options of nothing", None, lambda w: [RUN, "--config", w.recipe(plugin_options={"nope": {"a": 1}})],
     r"plugin_options: 'nope' names no registered task", 2),
    # --- resume from a round that does not fit, or is damaged (the run's own new folder may appear) ---
    ("resume another task's round", None,
     lambda w: [RUN, "--config", w.recipe(task="reverse_string"), "--resume_from", str(w.copy / "rounds/round-001/member-0")],
     r"resume_from: .* is a round of task 'copy'; this run's task is 'reverse_string'", 2),
    ("resume a truncated checkpoint", lambda w: _truncate(w.round_file(w.copy, 1, "model/model.safetensors")),
     lambda w: [RUN, "--config", str(w.config), "--resume_from", str(w.copy / "rounds/round-001/member-0")],
     r"model.safetensors: unreadable weights file", 2),
    # --- a diverged run is never published ---
    ("diverging learning rate", None, lambda w: [RUN, "--config", w.recipe(learning_rate=1.0e9)],
     r"training diverged .* learning_rate 1000000000.0: nothing of this round is published", 1),
    # --- compare cannot pass by accident ---
    ("compare two missing paths", None, lambda w: ["compare", "nope_a", "nope_b"], r"nope_a does not exist", 2),
    ("compare two empty folders", None, lambda w: ["compare", "empty_a", "empty_b"],
     r"empty_a is not an si-hf run: it holds no published round", 2),
    ("compare unrelated folders", None, lambda w: ["compare", "mine", "empty_a"], r"mine is not an si-hf run", 2),
    ("compare a folder with itself", None, lambda w: ["compare", "copy", "./copy"], r"are the same folder", 2),
    ("compare runs without weights",
     lambda w: [p.unlink() for run in (w.copy, w.strings) for p in run.rglob("*.safetensors")],
     lambda w: ["compare", "copy", "rs"], r"copy/rounds/round-000/member-0/model: no weights file", 2),
    ("compare a truncated metrics.json", lambda w: _truncate(w.round_file(w.copy, 1, "metrics.json")),
     lambda w: ["compare", "copy", "rs"], r"round-001/member-0/metrics.json: not valid JSON", 2),
    ("compare a truncated checkpoint", lambda w: _truncate(w.round_file(w.copy, 0, "model/model.safetensors")),
     lambda w: ["compare", "copy", "rs"], r"model.safetensors: unreadable weights file", 2),
    # --- report and summary ---
    ("report a truncated round metrics.json", lambda w: _truncate(w.round_file(w.copy, 1, "metrics.json")),
     lambda w: ["report", "copy", "--output_dir", "copy/report2"], r"round-001/member-0/metrics.json: not valid JSON", 2),
    ("report an accuracy of 7.5", lambda w: _metrics_with_accuracy(w, 7.5),
     lambda w: ["report", "copy", "--output_dir", "copy/report2"], r"accuracy of difficulty '1' is 7.5; expected a share in \[0, 1\]", 2),
    ("report an accuracy of -3", lambda w: _metrics_with_accuracy(w, -3),
     lambda w: ["report", "copy", "--output_dir", "copy/report2"], r"accuracy of difficulty '1' is -3", 2),
    ("report into a file", None, lambda w: ["report", "copy", "--output_dir", "README.md"],
     r"--output_dir: README.md is a file; expected a folder", 2),
    ("summary of two tasks", None, lambda w: ["summary", "copy", "rs"],
     r"the runs are of different tasks \(copy: copy, rs: reverse_string\)", 2),
    ("summary of one run twice", None, lambda w: ["summary", "copy", "./copy"],
     r"the same run given more than once", 2),
    ("summary into a folder", None, lambda w: ["summary", "copy", "--output", "mine"],
     r"--output: mine is a folder; expected the path of a file", 2),
]  # fmt: skip


@pytest.mark.parametrize("case, prepare, argv, match, code", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named_and_changes_nothing_of_the_users(ws, capsys, case, prepare, argv, match, code):
    if prepare is not None:
        prepare(ws)
    command = argv(ws)  # writes the case's recipe, which is the user's file from now on
    before = _hashes(ws.root)
    try:
        status = cli(command)
    except SystemExit as exit_info:  # argparse's errors (compare, report, summary)
        status = exit_info.code
    err = capsys.readouterr().err
    assert status == code, err[-2000:]
    assert len([line for line in err.splitlines() if "error" in line or "failed" in line]) >= 1
    assert re.search(match, err), err[-2000:]
    after = _hashes(ws.root)
    new_run = {k for k in after.keys() - before.keys() if k.startswith("new_run/")}
    assert {k: v for k, v in after.items() if k not in new_run} == before  # nothing else changed or appeared
    if case == "diverging learning rate":
        assert not (ws.root / "new_run" / "rounds").exists()  # nothing was published
