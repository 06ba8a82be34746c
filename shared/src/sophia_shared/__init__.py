"""Shared core of the Sophia MCP suite.

Kept import-light on purpose: servers must answer `initialize` fast, so heavy modules
(vendor SDKs, httpx, yaml) are imported inside the code paths that need them.
"""

__version__ = "0.1.0"
