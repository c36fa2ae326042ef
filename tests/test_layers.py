"""The layers of src/si_hf only point down: the contract in pyproject.toml, checked by import-linter,
and the same list in docs/architecture.md."""

import re
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: import-linter brings tomli
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _contract() -> dict:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["id"] == "layers")


def test_no_module_imports_from_a_layer_above_its_own(capsys):
    from importlinter import configuration
    from importlinter.application.use_cases import lint_imports

    configuration.configure()
    kept = lint_imports(config_filename=str(REPO / "pyproject.toml"), cache_dir=None, no_logo=True)
    assert kept, capsys.readouterr().out[-4000:]
    assert _contract()["exhaustive"] is True  # a new module must be given its layer


def test_the_architecture_doc_shows_the_checked_layers():
    doc = (REPO / "docs" / "architecture.md").read_text()
    block = re.search(r"<!-- layers -->\n```\n(.*?)```", doc, re.S)
    assert block, "docs/architecture.md needs the layers block"
    shown = [" | ".join(part.strip() for part in line.split("|")) for line in block[1].strip().splitlines()]
    assert shown == _contract()["layers"]
