"""The `si-hf` command: `run` is the recipe entry, `compare` checks two runs round by round."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from test_store import publish

from si_hf.cli import main
from si_hf.store import open_store


def test_usage_and_unknown_command(capsys):
    assert main([]) == 0 and "si-hf COMMAND" in capsys.readouterr().out
    assert main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_run_help_lists_the_recipe_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0 and "--vote_labels" in capsys.readouterr().out


def test_compare_finds_equal_runs_equal_and_names_each_difference(tmp_path, char, capsys):
    store = open_store(tmp_path / "a")
    for r in (0, 1):
        publish(store, char, r)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "identical" in capsys.readouterr().out
    metrics = tmp_path / "b/rounds/round-001/member-0/metrics.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "train_seconds": 9.0}))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0  # timings are left out
    weights = tmp_path / "b/rounds/round-000/member-0/model/model.safetensors"
    tensors = load_file(str(weights))
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] + 1e-3
    save_file(tensors, str(weights))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "round-000/member-0: weights differ" in capsys.readouterr().out


def test_console_script_is_installed():
    bin_dir = shutil.which("si-hf", path=str(Path(sys.executable).parent))
    assert bin_dir is not None, "pip install -e . registers the si-hf command"
    proc = subprocess.run([bin_dir, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "compare" in proc.stdout
