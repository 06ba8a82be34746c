"""Registered secrets never leave a server: text, structures, encodings, and every part of a log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest

from sophia_shared.logs import configure_logging
from sophia_shared.redaction import (
    DISPLAY_MASK,
    MASK,
    REDACTOR,
    mask,
    mask_url,
    redact,
    redact_obj,
    register_secret,
    register_url_secrets,
    too_short_to_redact,
    url_secrets,
)

SECRET = "sk-live-4f9a8b7c6d5e"


@pytest.fixture(autouse=True)
def clean_redactor() -> Iterator[None]:
    REDACTOR.clear()
    yield
    REDACTOR.clear()


@pytest.fixture
def clean_root_logger() -> Iterator[None]:
    """A root logger without handlers for the test; the previous handlers come back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    for handler in saved_handlers:
        root.removeHandler(handler)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def sophia_logger() -> logging.Logger:
    # Called inside the test: the handler binds sys.stderr, which must be capsys's live one.
    configure_logging("INFO")
    return logging.getLogger("sophia_test.redaction")


def test_registered_secret_is_masked_in_text() -> None:
    register_secret(SECRET)
    assert redact(f"auth failed for key {SECRET} (twice: {SECRET})") == f"auth failed for key {MASK} (twice: {MASK})"


def test_nothing_registered_leaves_text_untouched() -> None:
    assert redact(f"key {SECRET}") == f"key {SECRET}"
    assert redact_obj({"k": SECRET}) == {"k": SECRET}


def test_secrets_masked_in_nested_structures_including_keys() -> None:
    register_secret(SECRET)
    data = {
        "rows": [[1, f"token={SECRET}"], (SECRET, 2.5)],
        SECRET: {"inner": [None, True, f"x{SECRET}y"]},
    }
    assert redact_obj(data) == {
        "rows": [[1, f"token={MASK}"], [MASK, 2.5]],
        MASK: {"inner": [None, True, f"x{MASK}y"]},
    }
    assert SECRET not in json.dumps(redact_obj(data))


def test_numeric_secrets_are_masked_in_structures() -> None:
    register_secret("987654321")
    register_secret("3.14159")
    data = {"pin": 987654321, "rate": 3.14159, "rows": [[987654321, 42]], "other": 9876543210, "ok": True}
    assert redact_obj(data) == {"pin": MASK, "rate": MASK, "rows": [[MASK, 42]], "other": 9876543210, "ok": True}
    assert "987654321" not in json.dumps(redact_obj(data)).replace("9876543210", "")


def test_booleans_are_never_masked_even_when_they_print_like_a_secret() -> None:
    register_secret("True")
    register_secret("1234")
    assert redact_obj({"flag": True, "n": 1234, "s": "True"}) == {"flag": True, "n": MASK, "s": MASK}


def test_url_encoded_variants_are_masked() -> None:
    secret = "p@ss w0rd/with+signs&more"
    register_secret(secret)
    for encoded in (quote(secret, safe=""), quote_plus(secret)):
        assert encoded != secret
        assert redact(f"https://x.test/?key={encoded}&a=1") == f"https://x.test/?key={MASK}&a=1"


@pytest.mark.parametrize(
    "secret",
    ['quote"inside-token', "back\\slash\\token", "tab\tand\nnewline", "unicodé-pässword"],
)
def test_json_escaped_variants_are_masked(secret: str) -> None:
    register_secret(secret)
    for echoed in (json.dumps({"password": secret}), json.dumps({"password": secret}, ensure_ascii=False)):
        assert redact(echoed) == json.dumps({"password": MASK})


def test_short_values_are_ignored() -> None:
    for value in ("", None, "a", "ab", "abc"):
        register_secret(value)
    assert redact("a cab abc ab") == "a cab abc ab"
    register_secret("abcd")
    assert redact("xabcdx") == f"x{MASK}x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("a", True), ("abc", True), ("abcd", False), ("a-long-secret", False)],
)
def test_too_short_to_redact_flags_values_the_redactor_ignores(value: str | None, expected: bool) -> None:
    assert too_short_to_redact(value) is expected
    if value:
        register_secret(value)
        assert (redact(f"x {value} x") == f"x {value} x") is expected


def test_longest_secret_wins_when_one_contains_another() -> None:
    register_secret("abcd")
    register_secret("abcdefgh-long")
    assert redact("abcdefgh-long") == MASK


def test_clear_forgets_every_secret() -> None:
    register_secret(SECRET)
    REDACTOR.clear()
    assert redact(SECRET) == SECRET


@pytest.mark.parametrize("value", ["a", "abcd", "abcdefgh", SECRET, "x" * 200])
def test_mask_shows_neither_a_prefix_nor_the_length(value: str) -> None:
    # The same mask for every value: a prefix or a length would narrow a password guess.
    assert mask(value) == DISPLAY_MASK
    assert mask(value) == mask("a different secret of another length")


def test_mask_of_empty_is_empty() -> None:
    assert mask("") == ""
    assert mask(None) == ""


def test_log_messages_and_args_are_masked(clean_root_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    log = sophia_logger()
    register_secret(SECRET)
    log.warning(f"message holds {SECRET}")
    log.warning("args hold %s and %r", SECRET, {"key": SECRET})
    err = capsys.readouterr().err
    assert SECRET not in err
    assert f"message holds {MASK}" in err
    assert f"args hold {MASK} and {{'key': '{MASK}'}}" in err


def test_exception_tracebacks_in_logs_are_masked(clean_root_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    log = sophia_logger()
    register_secret(SECRET)
    try:
        raise RuntimeError(f"vendor echoed {SECRET}")
    except RuntimeError:
        log.exception("call failed")
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert f"RuntimeError: vendor echoed {MASK}" in err
    assert SECRET not in err


def test_stack_info_in_logs_is_masked(clean_root_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    log = sophia_logger()

    def frame_whose_source_line_holds_the_secret() -> None:
        log.info("where am I", stack_info=True)  # sk-live-4f9a8b7c6d5e

    register_secret(SECRET)
    frame_whose_source_line_holds_the_secret()
    err = capsys.readouterr().err
    assert "Stack (most recent call last)" in err
    assert SECRET not in err


def test_logs_go_to_stderr_only(clean_root_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    sophia_logger().info("hello from a server")
    captured = capsys.readouterr()
    assert "hello from a server" in captured.err
    assert captured.out == ""


def test_configure_logging_is_idempotent(clean_root_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    configure_logging("INFO")
    sophia_logger().info("once")
    assert capsys.readouterr().err.count("once") == 1


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:pw@x.example", "https://********@x.example"),
        ("https://u:p%40ss@x.example:8443/v1", "https://********@x.example:8443/v1"),
        ("https://ghp-token-0123456789abcdef@x.example/", "https://********@x.example/"),
        (
            "https://x.example/v1?region=eu&api_key=k-123456&Token=t-9&X-Amz-Signature=abc&sig=ff&q=hello#top",
            "https://x.example/v1?region=eu&api_key=********&Token=********&X-Amz-Signature=********&sig=********"
            "&q=hello#top",
        ),
        ("https://x.example/v1?region=eu", "https://x.example/v1?region=eu"),
        ("https://x.example?", "https://x.example?"),  # nothing to hide: shown exactly as set
        ("postgres://admin:db-pass@db:5432/app", "postgres://********@db:5432/app"),
        ("not a url: user:pw@host", "not a url: user:pw@host"),
        ("http://[::1", "********"),  # unparsable but URL-shaped: shown as nothing rather than guessed at
    ],
)
def test_mask_url_hides_userinfo_and_secret_query_values(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_url_secrets_are_the_password_the_bare_token_and_secret_query_values() -> None:
    assert url_secrets("https://user:s3cret-pw@x.example/?api_key=k-123456&q=hello") == ["s3cret-pw", "k-123456"]
    assert url_secrets("https://u:p%40ss-word@x.example") == ["p%40ss-word", "p@ss-word"]
    assert url_secrets("https://ghp-token-0123456789abcdef@x.example") == ["ghp-token-0123456789abcdef"]
    # A short bare user is a name, not a token: registering it would mask the word everywhere.
    assert url_secrets("https://admin@x.example") == []
    assert url_secrets("plain text") == url_secrets(None) == url_secrets("https://x.example/?q=1") == []


def test_registered_url_secrets_are_masked_in_logs(clean_root_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    register_url_secrets("https://u:url-pw-canary@x.example/?token=tok-canary-1")
    configure_logging()
    logging.getLogger("sophia_shared.test").warning(
        "calling %s", "https://u:url-pw-canary@x.example/?token=tok-canary-1"
    )
    err = capsys.readouterr().err
    assert "url-pw-canary" not in err and "tok-canary-1" not in err
    assert f"https://u:{MASK}@x.example/?token={MASK}" in err
