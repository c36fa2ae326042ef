"""One layout for the local store and the Hub: names of rounds, members and revisions, the marker,
and one translation of Hub failures into `HubError`."""

from __future__ import annotations

import contextlib
import os
import re

from si_hf.checks import is_int

MARKER = "si_hf_round.json"
HUB_SPEC = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)@round-(?P<round>\d+)(?:/member-(?P<member>\d+))?$")
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


class HubError(RuntimeError):
    """A Hub call failed or was refused; the message names the repo, the revision and the HTTP status."""


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def check_address(round: int, member: int) -> None:
    for name, v in (("round", round), ("member", member)):
        if not is_int(v) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")


def round_dirname(round: int) -> str:
    """`round-003`: the local directory of a round (zero-padded so directories sort by round)."""
    return f"round-{round:03d}"


def member_dirname(member: int) -> str:
    return f"member-{member}"


def member_path(round: int, member: int) -> str:
    """`round-003/member-0`: a round/member relative to `rounds/` (or to `work/` while it is built)."""
    return f"{round_dirname(round)}/{member_dirname(member)}"


def revision(round: int) -> str:
    """`round-3`: the Hub branch of a round, in the dataset repo and the model repo alike."""
    return f"round-{round}"


def hub_prefix(member: int, num_members: int) -> str:
    """Where a member's files sit in a Hub repo: the root for single-model runs, `member-m/` otherwise."""
    return "" if num_members == 1 else f"{member_dirname(member)}/"


@contextlib.contextmanager
def hub_errors(what: str, repo: str, rev: str):
    """Re-raise a Hub HTTP error as HubError naming the operation, repo, revision and HTTP status."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        yield
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "no response"
        raise HubError(f"{what} failed for {repo}@{rev}: HTTP {status}: {e}") from e
