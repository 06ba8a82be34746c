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


# Query parameters whose values are credentials (`?api_key=…`, `&X-Amz-Signature=…`, `?sig=…`).
_SECRET_PARAM = re.compile(
    r"(?i)(?:key|token|secret|signature|passw(?:or)?d|pwd|credential|auth|session)|\A(?:sig|pass|pw)\Z"
)
_BARE_TOKEN_LENGTH = 16  # a shorter bare user name is a name ("admin"), masking it would mask the word
_URL = re.compile(r"(?i)\A[a-z][a-z0-9+.-]*://")


def url_secrets(value: str | None) -> list[str]:
    """The credentials inside a URL: its userinfo password (or the user when it is a bare token,
    `https://TOKEN@host`) and the values of secret-looking query parameters. Empty for anything else."""
    if not value or not _URL.match(value.strip()):
        return []
    from urllib.parse import parse_qsl, unquote, urlsplit

    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return []
    found: list[str] = []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and userinfo:
        user, colon, password = userinfo.partition(":")
        if colon:
            found += [password, unquote(password)]
        elif len(user) >= _BARE_TOKEN_LENGTH:  # a token as the user (`https://TOKEN@host`), not `admin@`
            found += [user, unquote(user)]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=False) if _SECRET_PARAM.search(k)]
    return [f for f in dict.fromkeys(found) if f]


def register_url_secrets(value: str | None) -> None:
    """Register the credentials a URL carries (see `url_secrets`), so logs and errors mask them too."""
    for found in url_secrets(value):
        register_secret(found)


def mask_url(value: str) -> str:
    """A URL for display: userinfo masked whole, and the values of secret-looking query parameters masked;
    anything that is not a URL is returned unchanged."""
    if not _URL.match(value.strip()):
        return value
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return DISPLAY_MASK  # an unparsable URL-looking value: show nothing rather than a credential
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and userinfo:
        netloc = f"{DISPLAY_MASK}@{host}"
    query = "&".join(_masked_param(item) for item in parts.query.split("&")) if parts.query else ""
    if netloc == parts.netloc and query == parts.query:
        return value  # nothing to hide: shown exactly as set
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def holds_url_credentials(value: str) -> bool:
    """Whether `value` is a URL that carries credentials (userinfo or a secret-looking query parameter)."""
    return mask_url(value) != value


def _masked_param(item: str) -> str:
    from urllib.parse import unquote_plus

    name, equals, value = item.partition("=")
    if equals and value and _SECRET_PARAM.search(unquote_plus(name)):
        return f"{name}={DISPLAY_MASK}"
    return item


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
