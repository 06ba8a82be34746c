"""Settings: environment → Pulumi ESC → local ESC-format file → .env, with source labels, the ESC
cache, key rotation and redaction. Most tests inject an ESC opener; the last ones go through the
real SDK against the fake ESC server."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sophia_shared.errors import AuthError, BackendError, ConfigError
from sophia_shared.redaction import MASK, redact
from sophia_shared.registry import all_setting_specs
from sophia_shared.setting_specs import SettingSpec
from sophia_shared.settings import Settings, call_with_auth_refresh
from sophia_shared.sources import SourceValues, read_dotenv
from tests.fakes.esc_server import VALID_TOKEN, FakeEscServer, Secret, run_fake_esc

REF = "acme/sophia/dev"
TOKEN = "pul-settings-token-abcdef123"
ESC_ON = {"SOPHIA_ESC_ENV": REF, "PULUMI_ACCESS_TOKEN": TOKEN}


@dataclass
class StubEsc:
    """An injected ESC opener that records its calls; change `values` to rotate."""

    values: dict[str, str] = field(default_factory=dict)
    secrets: frozenset[str] = frozenset()
    ttl: float = 3600.0
    error: ConfigError | None = None
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)

    def __call__(self, ref: str, token: str, backend_url: str | None) -> SourceValues:
        self.calls.append((ref, token, backend_url))
        if self.error is not None:
            raise self.error
        return SourceValues(f"esc:{ref}", dict(self.values), self.secrets, time.time() + self.ttl)


def make_settings(
    tmp_path: Path,
    environ: dict[str, str] | None = None,
    *,
    esc: StubEsc | None = None,
    esc_file: str | None = None,
    dotenv: str | None = None,
    specs: tuple[SettingSpec, ...] | None = None,
) -> Settings:
    if esc_file is not None:
        (tmp_path / "esc.yaml").write_text(esc_file, encoding="utf-8")
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    env = {"SOPHIA_ESC_FILE": str(tmp_path / "esc.yaml"), "SOPHIA_DOTENV": str(tmp_path / ".env")}
    # Every registered server's settings by default, as `sophia doctor` sees them.
    declared = all_setting_specs() if specs is None else specs
    return Settings({**env, **(environ or {})}, cwd=tmp_path, esc_opener=esc, specs=declared)


def dotenv_pairs(path: Path) -> dict[str, str]:
    return dict(read_dotenv(path).values)


def source_of(settings: Settings, name: str) -> tuple[str, str] | None:
    found = settings.resolve(name)
    return (found.value, found.source) if found is not None else None


@pytest.fixture(autouse=True)
def _hermetic(no_esc_cli_or_proxy: None) -> None:
    """Every test here runs without a developer's `esc` CLI or proxy (see conftest)."""


FILE_YAML = """\
values:
  environmentVariables:
    SNOWFLAKE_ACCOUNT: file-account
  business_intelligence:
    snowflake-user: file-user
    snowflake-role: file-role
    snowflake-schema: {fn::secret: "file-secret-schema"}
"""
DOTENV = (
    "SNOWFLAKE_ACCOUNT=dotenv-account\nSNOWFLAKE_USER=dotenv-user\nSNOWFLAKE_ROLE=dotenv-role\n"
    "SNOWFLAKE_WAREHOUSE=dotenv-wh\nPINECONE_API_KEY=pc-dotenv-key\n"
)


# -- order and labels -----------------------------------------------------------------------------


def test_each_setting_comes_from_the_first_source_that_has_it(tmp_path: Path) -> None:
    esc = StubEsc({"SNOWFLAKE_ACCOUNT": "esc-account", "SNOWFLAKE_USER": "esc-user"})
    settings = make_settings(
        tmp_path, {**ESC_ON, "SNOWFLAKE_ACCOUNT": "env-account"}, esc=esc, esc_file=FILE_YAML, dotenv=DOTENV
    )

    assert source_of(settings, "SNOWFLAKE_ACCOUNT") == ("env-account", "env")
    assert source_of(settings, "SNOWFLAKE_USER") == ("esc-user", f"esc:{REF}")
    assert source_of(settings, "SNOWFLAKE_ROLE") == ("file-role", "file")
    assert source_of(settings, "SNOWFLAKE_WAREHOUSE") == ("dotenv-wh", "dotenv")
    assert source_of(settings, "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS") == ("120", "default")
    assert settings.resolve("SNOWFLAKE_DATABASE") is None


def test_an_empty_value_falls_through_to_the_next_source(tmp_path: Path) -> None:
    esc = StubEsc({"SNOWFLAKE_USER": ""})
    settings = make_settings(tmp_path, {**ESC_ON, "SNOWFLAKE_USER": ""}, esc=esc, esc_file=FILE_YAML)

    assert source_of(settings, "SNOWFLAKE_USER") == ("file-user", "file")


# -- secrets --------------------------------------------------------------------------------------


def test_secrets_from_every_source_are_registered_with_the_redactor(tmp_path: Path) -> None:
    esc = StubEsc(
        {"DATABASE_URL": "postgres://u:esc-pw@db/x", "SNOWFLAKE_ACCOUNT": "esc-account", "UNUSED_FLAG": "never-read"},
        secrets=frozenset({"DATABASE_URL", "UNUSED_FLAG"}),
    )
    settings = make_settings(
        tmp_path,
        {**ESC_ON, "OPENROUTER_API_KEY": "sk-or-env-key"},
        esc=esc,
        esc_file=FILE_YAML,
        dotenv=DOTENV,
    )

    database = settings.resolve("DATABASE_URL")
    assert database is not None and database.secret  # ESC's flag, although the name is harmless
    assert database.display() != database.value
    settings.resolve("SNOWFLAKE_SCHEMA")  # a fn::secret literal in the file
    settings.resolve("PINECONE_API_KEY")  # a secret by name, from .env

    text = "postgres://u:esc-pw@db/x file-secret-schema pc-dotenv-key sk-or-env-key never-read esc-account"
    # Every secret the opened source flagged is masked, even one nobody resolved; plain values are not.
    assert redact(text) == " ".join([MASK] * 5 + ["esc-account"])
    assert redact(TOKEN) == MASK


URL_PASSWORD = "url-pw-canary-5e1d"
URL_KEY = "url-key-canary-8c2b"


@pytest.mark.parametrize("where", ["env", "file", "dotenv"])
def test_a_url_setting_shows_its_credentials_masked_and_registers_them(tmp_path: Path, where: str) -> None:
    url = f"https://u:{URL_PASSWORD}@proxy.example/v1?region=eu&api_key={URL_KEY}"
    environ = {"SOPHIA_TAVILY_BASE_URL": url} if where == "env" else {}
    settings = make_settings(
        tmp_path,
        environ,
        esc_file=f"values:\n  environmentVariables:\n    SOPHIA_TAVILY_BASE_URL: '{url}'\n"
        if where == "file"
        else None,
        dotenv=f"SOPHIA_TAVILY_BASE_URL={url}\n" if where == "dotenv" else None,
    )

    found = settings.resolve("SOPHIA_TAVILY_BASE_URL")
    assert found is not None and not found.secret and found.value == url  # the client still gets it whole
    assert found.display() == "https://********@proxy.example/v1?region=eu&api_key=********"
    # Logs and errors mask them too: the redactor knows both once the source is read.
    assert redact(f"GET {url} failed") == f"GET https://u:{MASK}@proxy.example/v1?region=eu&api_key={MASK} failed"


def test_a_plain_url_or_value_is_displayed_as_set(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, {"SOPHIA_TAVILY_BASE_URL": "https://api.example/v1?region=eu", "SNOWFLAKE_ACCOUNT": "acct-1"}
    )
    tavily, account = settings.resolve("SOPHIA_TAVILY_BASE_URL"), settings.resolve("SNOWFLAKE_ACCOUNT")
    assert tavily is not None and tavily.display() == "https://api.example/v1?region=eu"
    assert account is not None and account.display() == "acct-1"


def test_sophia_doctor_never_prints_a_url_settings_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sophia_cli.doctor import run_doctor

    monkeypatch.setenv("SOPHIA_TAVILY_BASE_URL", f"https://u:{URL_PASSWORD}@127.0.0.1:9/?token={URL_KEY}")
    run_doctor(timeout=0.5)
    out = capsys.readouterr()

    assert "https://********@127.0.0.1:9/?token=********" in out.out
    assert URL_PASSWORD not in out.out + out.err and URL_KEY not in out.out + out.err


# -- bootstrap ------------------------------------------------------------------------------------


def test_bootstrap_settings_never_come_from_esc_or_the_file(tmp_path: Path) -> None:
    esc = StubEsc(
        {
            "PULUMI_BACKEND_URL": "https://evil.example",
            "PULUMI_ACCESS_TOKEN": "pul-token-inside-esc",
            "SOPHIA_ESC_ENV": "other/project/env",
            "SNOWFLAKE_USER": "esc-user",
        }
    )
    settings = make_settings(
        tmp_path,
        ESC_ON,
        esc=esc,
        esc_file="values:\n  environmentVariables:\n    PULUMI_BACKEND_URL: https://file.example\n",
        dotenv="PULUMI_BACKEND_URL=https://api.example.test\n",
    )

    assert source_of(settings, "SNOWFLAKE_USER") == ("esc-user", f"esc:{REF}")
    assert source_of(settings, "PULUMI_BACKEND_URL") == ("https://api.example.test", "dotenv")
    assert source_of(settings, "PULUMI_ACCESS_TOKEN") == (TOKEN, "env")
    assert source_of(settings, "SOPHIA_ESC_ENV") == (REF, "env")
    settings.refresh_esc()
    assert esc.calls == [(REF, TOKEN, "https://api.example.test")] * 2
    # A token found inside ESC is not used, but it is still a secret.
    assert redact("pul-token-inside-esc") == MASK


@pytest.mark.parametrize("missing", ["SOPHIA_ESC_ENV", "PULUMI_ACCESS_TOKEN"])
def test_esc_is_not_opened_without_ref_and_token(tmp_path: Path, missing: str) -> None:
    esc = StubEsc({"SNOWFLAKE_USER": "esc-user"})
    environ = {k: v for k, v in ESC_ON.items() if k != missing}
    settings = make_settings(tmp_path, environ, esc=esc, esc_file=FILE_YAML)

    assert source_of(settings, "SNOWFLAKE_USER") == ("file-user", "file")
    assert settings.refresh_esc() is False
    assert esc.calls == []


def test_esc_ref_and_token_may_come_from_dotenv(tmp_path: Path) -> None:
    esc = StubEsc({"SNOWFLAKE_USER": "esc-user"})
    settings = make_settings(tmp_path, esc=esc, dotenv=f"SOPHIA_ESC_ENV={REF}\nPULUMI_ACCESS_TOKEN={TOKEN}\n")

    assert source_of(settings, "SNOWFLAKE_USER") == ("esc-user", f"esc:{REF}")
    assert esc.calls == [(REF, TOKEN, None)]


# -- local-only resolution ------------------------------------------------------------------------


def test_get_local_skips_remote_esc_but_reads_env_file_and_dotenv(tmp_path: Path) -> None:
    esc = StubEsc({"SNOWFLAKE_USER": "esc-user", "SNOWFLAKE_DATABASE": "esc-db", "SOPHIA_X_ALLOW_WRITE": "1"})
    settings = make_settings(
        tmp_path, {**ESC_ON, "SNOWFLAKE_ACCOUNT": "env-account"}, esc=esc, esc_file=FILE_YAML, dotenv=DOTENV
    )

    assert settings.get_local("SNOWFLAKE_ACCOUNT") == "env-account"
    assert settings.get_local("SNOWFLAKE_USER") == "file-user"
    assert settings.get_local("SNOWFLAKE_WAREHOUSE") == "dotenv-wh"
    assert settings.get_local("SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS") == "120"
    assert settings.get_local("SNOWFLAKE_DATABASE") is None
    assert settings.get_local("SNOWFLAKE_DATABASE", "fallback") == "fallback"
    assert settings.flag_local("SOPHIA_X_ALLOW_WRITE") is False
    assert esc.calls == []
    assert settings.flag("SOPHIA_X_ALLOW_WRITE") is True  # the full chain still sees ESC


@pytest.mark.parametrize(
    ("dotenv", "expected"),
    [
        ("SOPHIA_X_ALLOW_WRITE=true\n", True),
        ("SOPHIA_X_ALLOW_WRITE=On # writes on\n", True),
        ("SOPHIA_X_ALLOW_WRITE=0\n", False),
        ("SOPHIA_X_ALLOW_WRITE=\n", False),
        ("", False),
    ],
)
def test_flag_local_reads_the_usual_truthy_words(tmp_path: Path, dotenv: str, expected: bool) -> None:
    settings = make_settings(tmp_path, dotenv=dotenv)
    assert settings.flag_local("SOPHIA_X_ALLOW_WRITE") is expected


# -- .env parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("A=plain", "plain"),
        ("A = spaced ", "spaced"),
        ("export A=exported", "exported"),
        ("export\tA=tabbed", "tabbed"),
        ('A="abc123xyz" # prod key', "abc123xyz"),
        ('A="abc123xyz"# prod key', "abc123xyz"),
        ("A='abc123xyz'   # prod key", "abc123xyz"),
        ('A="päss\\\\word"', "päss\\word"),
        ('A="line\\nnext\\ttab\\rcr"', "line\nnext\ttab\rcr"),
        ('A="say \\"hi\\" # not a comment"', 'say "hi" # not a comment'),
        ('A="keep \\w and \\u00e9 as written"', "keep \\w and \\u00e9 as written"),
        ("A='literal \\n and \"double\" and # hash'", 'literal \\n and "double" and # hash'),
        ("A=unquoted # comment", "unquoted"),
        ("A=unquoted\t# comment", "unquoted"),
        ("A=pass#word", "pass#word"),
        ("A=#not-a-comment", "#not-a-comment"),
        ("A=", ""),
        ("A= # only a comment", ""),
        ('A=""', ""),
        ("A=ünïcödé-välüé", "ünïcödé-välüé"),
        ("A=x=y=z", "x=y=z"),
        ("A=pa$word${HOME}", "pa$word${HOME}"),
        ('A="pa$word${HOME}"', "pa$word${HOME}"),
    ],
)
def test_dotenv_values_are_read_as_written(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "values.env"
    path.write_text(line + "\n", encoding="utf-8")
    assert dotenv_pairs(path) == {"A": expected}


def test_dotenv_skips_comments_blank_lines_and_lines_without_equals(tmp_path: Path) -> None:
    path = tmp_path / "values.env"
    path.write_text("# a comment\n\n   \nNOT A SETTING\nexport\nBARE\n=orphan\nB=2\n  # indented comment\n", "utf-8")
    assert dotenv_pairs(path) == {"B": "2"}


@pytest.mark.parametrize("line", ['A="sk-half-quoted"tail', 'A="sk-half-quoted', "A='sk-half-quoted"])
def test_dotenv_line_that_cannot_be_parsed_is_skipped_naming_its_line_not_its_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, line: str
) -> None:
    path = tmp_path / "values.env"
    path.write_text(f"B=2\n{line}\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert dotenv_pairs(path) == {"B": "2"}
    assert any("line 2" in r.getMessage() for r in caplog.records)
    assert not any("sk-half-quoted" in r.getMessage() for r in caplog.records)


def test_dotenv_double_quoted_value_may_span_lines(tmp_path: Path) -> None:
    path = tmp_path / "values.env"
    path.write_text('KEY="-----BEGIN KEY-----\nabc\n-----END KEY-----"\nB=2\n', encoding="utf-8")
    assert dotenv_pairs(path) == {"KEY": "-----BEGIN KEY-----\nabc\n-----END KEY-----", "B": "2"}


def test_dotenv_byte_order_mark_is_not_part_of_the_first_key(tmp_path: Path) -> None:
    path = tmp_path / "values.env"
    path.write_bytes("A=1\nB=2\n".encode("utf-8-sig"))
    assert dotenv_pairs(path) == {"A": "1", "B": "2"}


def test_missing_or_undecodable_dotenv_offers_nothing(tmp_path: Path) -> None:
    assert dotenv_pairs(tmp_path / "absent.env") == {}
    undecodable = tmp_path / "latin1.env"
    undecodable.write_bytes(b"A=caf\xe9\n")
    assert dotenv_pairs(undecodable) == {}


def test_dotenv_with_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "values.env"
    path.write_bytes(b"A=\"abc\" # c\r\nB=plain\r\nC=\r\nexport D='d'\r\n")
    assert dotenv_pairs(path) == {"A": "abc", "B": "plain", "C": "", "D": "d"}


def test_quoted_dotenv_secret_is_resolved_and_redacted_without_quotes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, dotenv='PINECONE_API_KEY="pc-quoted-key-123" # prod key\n')
    assert settings.get("PINECONE_API_KEY") == "pc-quoted-key-123"
    assert redact("key pc-quoted-key-123") == f"key {MASK}"


# -- where the .env file is ----------------------------------------------------------------------


def test_dotenv_path_defaults_to_dot_env_in_the_working_directory(tmp_path: Path) -> None:
    settings = Settings({}, cwd=tmp_path)
    assert settings.dotenv_path == (tmp_path / ".env").resolve()
    assert not settings.dotenv_path.exists()


def test_dotenv_path_follows_sophia_dotenv_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "team.env").write_text("SNOWFLAKE_USER=from-team-env\n", encoding="utf-8")
    settings = Settings({"SOPHIA_DOTENV": "conf/team.env"}, cwd=tmp_path)

    assert settings.dotenv_path == (tmp_path / "conf" / "team.env").resolve()
    assert settings.dotenv_path.is_file()
    assert source_of(settings, "SNOWFLAKE_USER") == ("from-team-env", "dotenv")


# -- failures of ESC and the file -----------------------------------------------------------------


def test_unreachable_esc_leaves_the_other_sources_working(tmp_path: Path) -> None:
    esc = StubEsc({"SNOWFLAKE_USER": "esc-user"})
    esc.error = ConfigError("Pulumi ESC unreachable at https://api.pulumi.com: timed out.", hint="Check the network.")
    settings = make_settings(tmp_path, ESC_ON, esc=esc, esc_file=FILE_YAML, dotenv=DOTENV)

    assert source_of(settings, "SNOWFLAKE_USER") == ("file-user", "file")
    assert source_of(settings, "SNOWFLAKE_WAREHOUSE") == ("dotenv-wh", "dotenv")
    assert settings.esc_error is not None and "unreachable" in settings.esc_error
    assert "Check the network." in settings.esc_error
    assert len(esc.calls) == 1  # the failure is remembered for a while, not retried per setting

    esc.error = None
    assert settings.refresh_esc() is True
    assert source_of(settings, "SNOWFLAKE_USER") == ("esc-user", f"esc:{REF}")
    assert settings.esc_error is None


def test_refresh_esc_is_false_when_the_reopen_fails(tmp_path: Path) -> None:
    esc = StubEsc({"TAVILY_API_KEY": "tvly-old-key"})
    settings = make_settings(tmp_path, ESC_ON, esc=esc)
    assert settings.get("TAVILY_API_KEY") == "tvly-old-key"

    esc.error = ConfigError("Pulumi ESC unreachable at https://api.pulumi.com: timed out.")
    assert settings.refresh_esc() is False
    assert settings.esc_error is not None
    assert len(esc.calls) == 2

    esc.error = None
    assert settings.refresh_esc() is True
    assert settings.esc_error is None


def test_broken_esc_file_is_reported_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = "values:\n  environmentVariables:\n    SNOWFLAKE_USER: [unclosed\n"
    with caplog.at_level(logging.WARNING):
        settings = make_settings(tmp_path, esc_file=broken, dotenv=DOTENV)
        assert source_of(settings, "SNOWFLAKE_USER") == ("dotenv-user", "dotenv")

    assert any("not valid YAML" in r.getMessage() and "line" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("token", [None, ""], ids=["missing", "empty"])
def test_esc_configured_without_a_token_is_reported_like_an_outage(tmp_path: Path, token: str | None) -> None:
    esc = StubEsc({"SNOWFLAKE_USER": "esc-user"})
    environ = {"SOPHIA_ESC_ENV": REF} if token is None else {"SOPHIA_ESC_ENV": REF, "PULUMI_ACCESS_TOKEN": token}
    settings = make_settings(tmp_path, environ, esc=esc, esc_file=FILE_YAML, dotenv=DOTENV)

    assert source_of(settings, "SNOWFLAKE_USER") == ("file-user", "file")
    assert settings.esc_error is not None
    assert f"PULUMI_ACCESS_TOKEN is not set, so Pulumi ESC environment {REF}" in settings.esc_error
    assert "unset SOPHIA_ESC_ENV" in settings.esc_error
    assert settings.esc_problem() == settings.esc_error
    assert settings.esc_value_count() == 0
    assert settings.refresh_esc() is False
    assert esc.calls == []


def test_esc_problem_opens_esc_to_find_out(tmp_path: Path) -> None:
    esc = StubEsc(error=ConfigError("Pulumi ESC unreachable at https://api.pulumi.com: timed out."))
    settings = make_settings(tmp_path, ESC_ON, esc=esc)
    assert settings.esc_error is None  # nothing was asked for yet

    problem = settings.esc_problem()

    assert problem is not None and "unreachable" in problem
    assert len(esc.calls) == 1


@pytest.mark.parametrize("environ", [{}, ESC_ON], ids=["not-configured", "opens"])
def test_esc_problem_is_none_when_esc_is_unused_or_opens(tmp_path: Path, environ: dict[str, str]) -> None:
    settings = make_settings(tmp_path, environ, esc=StubEsc({"SNOWFLAKE_USER": "esc-user"}))
    assert settings.esc_problem() is None


# -- cache and rotation ---------------------------------------------------------------------------


def test_esc_values_are_cached_until_expires_at(tmp_path: Path) -> None:
    esc = StubEsc({"SNOWFLAKE_USER": "esc-user", "SNOWFLAKE_ROLE": "esc-role"}, ttl=3600)
    settings = make_settings(tmp_path, ESC_ON, esc=esc)

    for _ in range(3):
        assert settings.get("SNOWFLAKE_USER") == "esc-user"
        assert settings.get("SNOWFLAKE_ROLE") == "esc-role"
    assert len(esc.calls) == 1


def test_expired_esc_values_are_reopened(tmp_path: Path) -> None:
    esc = StubEsc({"SNOWFLAKE_USER": "esc-user-1"}, ttl=-1)  # already past its session
    settings = make_settings(tmp_path, ESC_ON, esc=esc)

    assert settings.get("SNOWFLAKE_USER") == "esc-user-1"
    esc.values["SNOWFLAKE_USER"] = "esc-user-2"
    assert settings.get("SNOWFLAKE_USER") == "esc-user-2"
    assert len(esc.calls) == 2


def test_refresh_esc_reopens_and_picks_up_a_rotated_secret(tmp_path: Path) -> None:
    esc = StubEsc({"TAVILY_API_KEY": "tvly-old-key"})
    settings = make_settings(tmp_path, ESC_ON, esc=esc)
    assert settings.get("TAVILY_API_KEY") == "tvly-old-key"
    esc.values["TAVILY_API_KEY"] = "tvly-new-key"
    assert settings.get("TAVILY_API_KEY") == "tvly-old-key"  # cached: no re-open on its own

    assert settings.refresh_esc() is True

    assert settings.get("TAVILY_API_KEY") == "tvly-new-key"
    assert len(esc.calls) == 2
    assert redact("tvly-old-key tvly-new-key") == f"{MASK} {MASK}"


def is_auth(exc: Exception) -> bool:
    return isinstance(exc, AuthError)


def test_call_with_auth_refresh_retries_once_with_the_rotated_key(tmp_path: Path) -> None:
    esc = StubEsc({"TAVILY_API_KEY": "tvly-old-key"})
    settings = make_settings(tmp_path, ESC_ON, esc=esc)
    settings.get("TAVILY_API_KEY")
    esc.values["TAVILY_API_KEY"] = "tvly-new-key"  # rotated in ESC; the vendor now rejects the old one
    used: list[str | None] = []

    def search() -> str:
        used.append(settings.get("TAVILY_API_KEY"))
        if used[-1] != "tvly-new-key":
            raise AuthError("Tavily rejected the API key (HTTP 401).")
        return "results"

    assert call_with_auth_refresh(settings, search, is_auth) == "results"
    assert used == ["tvly-old-key", "tvly-new-key"]
    assert len(esc.calls) == 2


def test_call_with_auth_refresh_gives_up_after_one_retry(tmp_path: Path) -> None:
    esc = StubEsc({"TAVILY_API_KEY": "tvly-old-key"})
    settings = make_settings(tmp_path, ESC_ON, esc=esc)
    attempts: list[int] = []

    def search() -> str:
        attempts.append(1)
        raise AuthError("Tavily rejected the API key (HTTP 401).")

    with pytest.raises(AuthError):
        call_with_auth_refresh(settings, search, is_auth)
    assert len(attempts) == 2


def test_auth_error_is_not_retried_when_esc_cannot_be_reopened(tmp_path: Path) -> None:
    esc = StubEsc({"TAVILY_API_KEY": "tvly-old-key"})
    settings = make_settings(tmp_path, ESC_ON, esc=esc)
    settings.get("TAVILY_API_KEY")
    esc.error = ConfigError("Pulumi ESC unreachable at https://api.pulumi.com: timed out.")
    attempts: list[int] = []

    def search() -> str:
        attempts.append(1)
        raise AuthError("Tavily rejected the API key (HTTP 401).")

    with pytest.raises(AuthError):
        call_with_auth_refresh(settings, search, is_auth)
    assert len(attempts) == 1


@pytest.mark.parametrize("esc_configured", [True, False])
def test_call_with_auth_refresh_does_not_retry_other_failures(tmp_path: Path, esc_configured: bool) -> None:
    esc = StubEsc({"TAVILY_API_KEY": "tvly-key"})
    settings = make_settings(tmp_path, ESC_ON if esc_configured else {}, esc=esc)
    attempts: list[int] = []

    def failing(error: Exception) -> Callable[[], str]:
        def action() -> str:
            attempts.append(1)
            raise error

        return action

    with pytest.raises(BackendError):
        call_with_auth_refresh(settings, failing(BackendError("Tavily answered HTTP 500.")), is_auth)
    # An auth error without ESC cannot be fixed by re-opening it either.
    if not esc_configured:
        with pytest.raises(AuthError):
            call_with_auth_refresh(settings, failing(AuthError("rejected")), is_auth)
    assert len(attempts) == (1 if esc_configured else 2)
    assert esc.calls == []


# -- numbers -------------------------------------------------------------------------------------


def test_get_int_and_get_float_apply_the_declared_default(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert settings.get_int("SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS", minimum=0) == 120
    assert settings.get_float("SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS") == 120.0


@pytest.mark.parametrize(("text", "expected"), [("8443", 8443), (" 0 ", 0), ("+7", 7), ("-3", -3)])
def test_get_int_parses_whole_numbers(tmp_path: Path, text: str, expected: int) -> None:
    settings = make_settings(tmp_path, {"SNOWFLAKE_PORT": text})
    assert settings.get_int("SNOWFLAKE_PORT") == expected


@pytest.mark.parametrize(("text", "expected"), [("2.5", 2.5), ("1e2", 100.0), (" 3 ", 3.0), ("0", 0.0)])
def test_get_float_parses_finite_numbers(tmp_path: Path, text: str, expected: float) -> None:
    settings = make_settings(tmp_path, {"SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS": text})
    assert settings.get_float("SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS", minimum=0) == expected


@pytest.mark.parametrize("text", ["abc", "1.5", "12s", "1e3"])
def test_get_int_rejects_other_text_naming_the_variable_its_file_and_the_form(tmp_path: Path, text: str) -> None:
    settings = make_settings(tmp_path, dotenv=f"SNOWFLAKE_PORT={text}\n")

    with pytest.raises(ConfigError) as caught:
        settings.get_int("SNOWFLAKE_PORT", minimum=1)

    message = caught.value.agent_message()
    assert f"SNOWFLAKE_PORT is {text!r}" in message
    assert f"the .env file {tmp_path / '.env'}" in message
    assert "a whole number of at least 1" in message


def test_get_int_of_an_unset_setting_without_default_says_so(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, {"SNOWFLAKE_PORT": ""})  # empty counts as unset
    with pytest.raises(ConfigError, match="SNOWFLAKE_PORT is not set and has no default") as caught:
        settings.get_int("SNOWFLAKE_PORT")
    assert "a whole number" in caught.value.hint


@pytest.mark.parametrize("text", ["nan", "inf", "-1", "fast"])
def test_get_float_rejects_non_finite_or_too_small_values(tmp_path: Path, text: str) -> None:
    settings = make_settings(tmp_path, {"SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS": text})
    with pytest.raises(ConfigError, match=r"from the process environment\), which is not a number of at least 0"):
        settings.get_float("SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS", minimum=0)


def test_get_int_below_minimum_names_the_esc_environment(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ESC_ON, esc=StubEsc({"SNOWFLAKE_PORT": "0"}))
    with pytest.raises(ConfigError) as caught:
        settings.get_int("SNOWFLAKE_PORT", minimum=1)
    assert f"(from Pulumi ESC environment {REF})" in caught.value.message
    assert f"Set SNOWFLAKE_PORT to a whole number of at least 1 in Pulumi ESC environment {REF}" in caught.value.hint


def test_bad_number_in_a_secret_setting_does_not_show_the_value(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, {"SNOWFLAKE_PASSWORD": "hunter2-but-long"})
    with pytest.raises(ConfigError) as caught:
        settings.get_int("SNOWFLAKE_PASSWORD")
    assert "hunter2" not in caught.value.agent_message()
    assert "SNOWFLAKE_PASSWORD is a hidden value" in caught.value.message


# -- which ESC groups map to settings --------------------------------------------------------------


BI_ONLY = tuple(s for s in all_setting_specs() if s.group == "business_intelligence")


def test_esc_groups_are_the_groups_of_the_declared_settings(tmp_path: Path) -> None:
    assert make_settings(tmp_path, specs=BI_ONLY).esc_groups == ("business_intelligence",)
    assert make_settings(tmp_path, specs=()).esc_groups == ()
    assert set(make_settings(tmp_path).esc_groups) >= {"business_intelligence", "data_intelligence"}


def test_local_esc_file_maps_only_the_declared_groups(tmp_path: Path) -> None:
    file = (
        "values:\n  business_intelligence: {snowflake-user: file-user}\n  data_intelligence: {tavily-api-key: tv-1}\n"
    )
    settings = make_settings(tmp_path, esc_file=file, specs=BI_ONLY)

    assert source_of(settings, "SNOWFLAKE_USER") == ("file-user", "file")
    assert settings.resolve("TAVILY_API_KEY") is None


# -- end to end through the SDK and the fake ESC server -------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeEscServer]:
    with run_fake_esc() as server:
        server.put_environment(
            REF,
            {
                "business_intelligence": {
                    "snowflake-account": "esc-account",
                    "snowflake-user": "esc-user",
                    "snowflake-password": Secret("esc-pw-0001"),
                },
                "data_intelligence": {"tavily-api-key": Secret("tvly-esc-key-1")},
                "environmentVariables": {"DATABASE_URL": Secret("postgres://u:esc-db@db/x")},
            },
        )
        yield server


def test_settings_read_esc_through_the_sdk(tmp_path: Path, fake: FakeEscServer) -> None:
    environ = {**ESC_ON, "PULUMI_ACCESS_TOKEN": VALID_TOKEN, "PULUMI_BACKEND_URL": fake.url}
    settings = make_settings(
        tmp_path, {**environ, "SNOWFLAKE_ACCOUNT": "env-account"}, esc_file=FILE_YAML, dotenv=DOTENV
    )

    assert source_of(settings, "SNOWFLAKE_ACCOUNT") == ("env-account", "env")
    assert source_of(settings, "SNOWFLAKE_USER") == ("esc-user", f"esc:{REF}")
    assert source_of(settings, "SNOWFLAKE_ROLE") == ("file-role", "file")
    assert source_of(settings, "SNOWFLAKE_WAREHOUSE") == ("dotenv-wh", "dotenv")
    password = settings.resolve("SNOWFLAKE_PASSWORD")
    assert password is not None and password.secret and password.display() != "esc-pw-0001"
    assert redact("postgres://u:esc-db@db/x esc-pw-0001 esc-user") == f"{MASK} {MASK} esc-user"
    assert fake.open_count(REF) == 1
    assert settings.esc_error is None


def test_rotated_secret_is_picked_up_through_the_sdk(tmp_path: Path, fake: FakeEscServer) -> None:
    settings = make_settings(tmp_path, {**ESC_ON, "PULUMI_ACCESS_TOKEN": VALID_TOKEN, "PULUMI_BACKEND_URL": fake.url})
    assert settings.get("TAVILY_API_KEY") == "tvly-esc-key-1"
    fake.put_environment(REF, {"data_intelligence": {"tavily-api-key": Secret("tvly-esc-key-2")}})
    assert settings.get("TAVILY_API_KEY") == "tvly-esc-key-1"  # cached for the session
    assert fake.open_count(REF) == 1

    def search() -> str:
        key = settings.get("TAVILY_API_KEY")
        if key != "tvly-esc-key-2":
            raise AuthError("Tavily rejected the API key (HTTP 401).")
        return "results"

    assert call_with_auth_refresh(settings, search, is_auth) == "results"
    assert fake.open_count(REF) == 2
    assert redact("tvly-esc-key-1 tvly-esc-key-2") == f"{MASK} {MASK}"


def test_unreachable_esc_end_to_end_keeps_file_and_dotenv(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = make_settings(tmp_path, {**ESC_ON, "PULUMI_BACKEND_URL": closed}, esc_file=FILE_YAML, dotenv=DOTENV)

    assert source_of(settings, "SNOWFLAKE_USER") == ("file-user", "file")
    assert source_of(settings, "SNOWFLAKE_WAREHOUSE") == ("dotenv-wh", "dotenv")
    assert settings.esc_error is not None
    assert "unreachable" in settings.esc_error and closed in settings.esc_error
    assert TOKEN not in settings.esc_error


def test_rejected_token_end_to_end_is_reported_without_the_token(tmp_path: Path, fake: FakeEscServer) -> None:
    settings = make_settings(tmp_path, {**ESC_ON, "PULUMI_BACKEND_URL": fake.url}, dotenv=DOTENV)

    assert source_of(settings, "SNOWFLAKE_USER") == ("dotenv-user", "dotenv")
    assert settings.esc_error is not None and "PULUMI_ACCESS_TOKEN" in settings.esc_error
    assert TOKEN not in settings.esc_error


def test_settings_map_only_their_declared_groups_through_the_sdk(tmp_path: Path, fake: FakeEscServer) -> None:
    environ = {**ESC_ON, "PULUMI_ACCESS_TOKEN": VALID_TOKEN, "PULUMI_BACKEND_URL": fake.url}
    settings = make_settings(tmp_path, environ, specs=BI_ONLY)

    assert source_of(settings, "SNOWFLAKE_USER") == ("esc-user", f"esc:{REF}")
    assert settings.resolve("TAVILY_API_KEY") is None  # data_intelligence is not this server's group
    assert source_of(settings, "DATABASE_URL") == ("postgres://u:esc-db@db/x", f"esc:{REF}")
