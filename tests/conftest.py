"""Fixtures shared by the test files: the real tokenizers and tasks, and the offline Hub server."""

import os
from dataclasses import dataclass

import pytest

from si_hf.tasks import get_task
from si_hf.testing import serve_hub
from si_hf.tokenization import get_tokenizer


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
