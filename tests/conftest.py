"""Fixtures shared by the test files: the real tokenizers and tasks, and the offline Hub server."""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# `make test` runs the suite in two pytest-xdist workers, one per core of the 2-core machine it is sized
# for. Each worker, and every process a test starts (inheriting the variable), computes on one thread:
# two workers of two threads each would fight over the cores. Set before torch is first imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

# Test files import helpers from each other (`from test_rounds import TINY`): the folders that hold
# them are importable whatever the order pytest collects them in.
for _folder in (Path(__file__).parent, Path(__file__).parent / "publishing", Path(__file__).parent / "tasks"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import torch  # noqa: E402

from si_hf.tasks import get_task  # noqa: E402
from si_hf.testing import serve_hub  # noqa: E402
from si_hf.tokenization import get_tokenizer  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # in case a plugin imported torch before OMP_NUM_THREADS was set


@pytest.fixture(scope="session")
def char():
    """The character tokenizer, built in memory as the package builds it."""
    return get_tokenizer("char")


@pytest.fixture(scope="session")
def copy_task():
    return get_task("copy")


@dataclass
class OfflineHub:
    """The Hub-compatible server of si_hf.testing on 127.0.0.1, and the environment its clients need."""

    url: str
    server: object

    def env(self, home, token: str, **extra: str) -> dict:
        """Client environment: the clients read these at import time, so they run in subprocesses."""
        return dict(
            os.environ,
            HF_ENDPOINT=self.url,
            HF_TOKEN=token,
            HF_HUB_DISABLE_XET="1",  # huggingface_hub 2.x uploads through xet otherwise
            HF_HOME=str(home),  # a fresh cache per client: a stale one can return another revision
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            **extra,
        )


@pytest.fixture
def offline_hub():
    with serve_hub() as (url, server):
        yield OfflineHub(url, server)
