"""Test helpers shipped with the package (the offline Hub server)."""

from si_hf.testing.hub_server import HubServer, serve_hub

__all__ = ["HubServer", "serve_hub"]
