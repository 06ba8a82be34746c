"""Which ESC values changed between two openings, compared by keyed fingerprints, never by value.

`rotate-check` keeps the last opening's fingerprints in the data directory (owner-only): an HMAC of
each value under a random key stored beside them, so the file holds no value and no plain hash of one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sophia_shared.esc_document import UNKNOWN, EscDocument, dotted_path
from sophia_shared.files import write_atomically
from sophia_shared.paths import data_dir


def _leaves(value: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
    if isinstance(value, Mapping):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(_leaves(item, (*path, str(key))))
        return found
    if isinstance(value, list):
        found = {}
        for index, item in enumerate(value):
            found.update(_leaves(item, (*path, index)))
        return found
    return {dotted_path(path): "[unknown]" if value is UNKNOWN else value}


def fingerprints(document: EscDocument, key: bytes | None = None) -> dict[str, str]:
    """Each leaf path of the document → an HMAC of its value (under `key`, default the stored one)."""
    secret = key if key is not None else _hmac_key()
    return {
        path: hmac.new(secret, json.dumps(value, sort_keys=True, default=str).encode(), hashlib.sha256).hexdigest()
        for path, value in _leaves(document.values, ()).items()
    }


def changed_keys(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, list[str]]:
    return {
        "changed": sorted(p for p in after if p in before and before[p] != after[p]),
        "added": sorted(p for p in after if p not in before),
        "removed": sorted(p for p in before if p not in after),
    }


def _state_file() -> Path:
    return data_dir() / "secrets" / "esc-fingerprints.json"


def _read_state() -> dict[str, Any]:
    path = _state_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _hmac_key() -> bytes:
    state = _read_state()
    key = state.get("key")
    if isinstance(key, str) and len(key) == 64:
        return bytes.fromhex(key)
    fresh = secrets.token_hex(32)
    _write_state({"key": fresh, "environments": {}})
    return bytes.fromhex(fresh)


def _write_state(state: Mapping[str, Any]) -> None:
    path = _state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(state, indent=1, sort_keys=True))  # owner-only


def load_last(ref: str) -> dict[str, str] | None:
    environments = _read_state().get("environments") or {}
    last = environments.get(ref) if isinstance(environments, dict) else None
    return dict(last) if isinstance(last, dict) else None


def save_last(ref: str, prints: Mapping[str, str]) -> None:
    _hmac_key()  # make sure the key the prints were made with is the one stored
    state = _read_state()
    environments = state.setdefault("environments", {})
    environments[ref] = dict(prints)
    _write_state(state)
