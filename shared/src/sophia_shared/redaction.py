"""One process-wide redactor that knows every resolved secret value.

Anything that leaves a server (tool text, structured content, error messages, log lines) passes
through `redact`. Values are registered as settings resolve them, so a backend's own error text
that echoes a password or token is masked too.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

MASK = "[REDACTED]"
DISPLAY_MASK = "********"  # how `mask` shows any non-empty secret
# Shorter values would mask ordinary words, so they are never masked; `too_short_to_redact` lets
# `sophia doctor` warn about such a secret.
MIN_SECRET_LENGTH = 4


def too_short_to_redact(value: str | None) -> bool:
    """True for a non-empty value the redactor will not mask because it is shorter than MIN_SECRET_LENGTH."""
    return value is not None and 0 < len(value) < MIN_SECRET_LENGTH


class Redactor:
    """Replaces every registered secret (and simple encodings of it) with a mask."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._stale = False  # values changed since the pattern was compiled

    def register(self, value: str | None) -> None:
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        variants = {value, value.strip()}
        # Backends sometimes echo a secret URL-encoded or JSON-escaped.
        from urllib.parse import quote, quote_plus

        variants |= {
            quote(value, safe=""),
            quote_plus(value),
            value.replace('"', '\\"'),
            json.dumps(value)[1:-1],  # backslashes, control characters, \uXXXX
            json.dumps(value, ensure_ascii=False)[1:-1],
        }
        with self._lock:
            before = len(self._values)
            self._values |= {v for v in variants if len(v) >= MIN_SECRET_LENGTH}
            # Compiled on the next redaction, not here: registering N values stays O(N).
            self._stale |= len(self._values) != before

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None
            self._stale = False

    def _current(self) -> re.Pattern[str] | None:
        if not self._stale:
            return self._pattern
        with self._lock:
            if self._stale:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None
                self._stale = False
            return self._pattern

    def redact(self, text: str) -> str:
        pattern = self._current()
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def redact_obj(self, obj: Any) -> Any:
        """Redact every string inside a JSON-like structure (keys included), and numbers equal to a secret."""
        if self._current() is None:
            return obj
        if isinstance(obj, str):
            return self.redact(obj)
        # A numeric secret (a PIN, an account number) can come back as a JSON number; bool is an int too.
        if isinstance(obj, int | float) and not isinstance(obj, bool):
            return MASK if str(obj) in self._values else obj
        if isinstance(obj, dict):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.redact_obj(v) for v in obj]
        return obj


REDACTOR = Redactor()


def register_secret(value: str | None) -> None:
    REDACTOR.register(value)


def redact(text: str) -> str:
    return REDACTOR.redact(text)


def redact_obj(obj: Any) -> Any:
    return REDACTOR.redact_obj(obj)


def mask(value: str | None) -> str:
    """A display form that proves a value is set without showing it: the same mask for every value."""
    # No prefix and no length: for a password both narrow a guess, and doctor output gets pasted
    # into tickets. `too_short_to_redact` covers the one length worth warning about.
    return DISPLAY_MASK if value else ""


class RedactingFilter(logging.Filter):
    """Logging filter that masks secrets in the final message (args included), traceback and stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not drop the log line
            message = str(record.msg)
        record.msg = REDACTOR.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = REDACTOR.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = REDACTOR.redact(record.stack_info)
        return True
