"""Logging to stderr only: stdout belongs to the MCP protocol."""

from __future__ import annotations

import logging
import os
import sys

from .redaction import RedactingFilter

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str | None = None) -> None:
    """Route every logger to stderr through the redactor (idempotent)."""
    root = logging.getLogger()
    level_name = (level or os.environ.get("SOPHIA_LOG_LEVEL") or "INFO").upper()
    root.setLevel(getattr(logging, level_name, logging.INFO))
    for handler in list(root.handlers):
        if getattr(handler, "_sophia", False):
            return
        # The SDK installs its own handler; replace it so nothing bypasses redaction.
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter())
    handler._sophia = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    # Vendor SDKs log every connect at INFO; keep their warnings, drop the chatter.
    for noisy in ("snowflake.connector", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
