"""The store's errors, and the one translation of Hub failures into `HubError`."""

from __future__ import annotations

import contextlib


class HubError(RuntimeError):
    """A Hub call failed or was refused; the message names the repo, the revision and the HTTP status,
    or the endpoint that could not be reached."""


class StoreLockedError(RuntimeError):
    """Another live run holds the output directory."""


class DamagedRoundError(RuntimeError):
    """A published round is incomplete or corrupt; the message names the file and how to recover."""


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def check_hub_reachable(timeout: float = 5.0) -> None:
    """Fail fast, and say so, when the Hub endpoint cannot be reached (rather than a timeout later
    that reads as a missing file). Any HTTP answer, an error status included, means reachable."""
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub.utils import get_session

    endpoint = hub_endpoint()
    try:
        get_session().head(endpoint, timeout=timeout)
    except httpx2.HTTPError as e:
        raise HubError(
            f"cannot reach the Hub at {endpoint} ({type(e).__name__}: {e}); check the network or HF_ENDPOINT"
        ) from e


@contextlib.contextmanager
def hub_errors(what: str, repo: str, rev: str):
    """Re-raise a Hub HTTP error as HubError naming the operation, repo, revision and HTTP status."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        yield
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "no response"
        raise HubError(f"{what} failed for {repo}@{rev}: HTTP {status}: {e}") from e
    except (httpx2.TransportError, LocalEntryNotFoundError, ConnectionError) as e:
        # huggingface_hub reports "no connection and nothing cached" as LocalEntryNotFoundError,
        # which is an EntryNotFoundError too: without this it would read as a missing file.
        raise HubError(
            f"{what} failed for {repo}@{rev}: cannot reach the Hub at {hub_endpoint()} ({type(e).__name__}: {e})"
        ) from e
