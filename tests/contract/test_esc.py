"""Pulumi ESC through the real pulumi-esc-sdk against a swagger-built fake, the `esc` CLI fallback,
and the local ESC-format file."""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from sophia_shared import esc_remote
from sophia_shared.errors import ConfigError
from sophia_shared.esc_file import read_esc_file
from sophia_shared.esc_remote import open_environment, open_esc_environment, parse_ref
from tests.fakes.esc_server import (
    UNKNOWN,
    VALID_TOKEN,
    FakeEscServer,
    Secret,
    cli_calls,
    eval_fixtures,
    iter_values,
    run_fake_esc,
    write_fake_esc_cli,
)
from tests.fakes.specs import spec_path

REF = "acme/sophia/dev"
# The groups whose keys map to settings; Settings passes the groups of its declared settings.
GROUPS = ("ai_intelligence", "business_intelligence", "data_intelligence", "infrastructure")
FIXTURES = eval_fixtures()

DEV_VALUES: dict[str, Any] = {
    "business_intelligence": {
        "snowflake-account": "acme-xy12345",
        "snowflake-password": Secret("pw-from-esc-123"),
        "snowflake-port": 8443,
        "snowflake-structured": {"not": "a setting"},
        "snowflake-pending": UNKNOWN,
        "snowflake-nothing": None,
    },
    "ai_intelligence": {"openrouter-api-key": Secret("sk-or-esc-456"), "arize-enabled": True},
    "environmentVariables": {
        "SNOWFLAKE_ACCOUNT": "from-environment-variables",
        "DATABASE_URL": Secret("postgres://u:p@db/x"),
    },
    "pulumiConfig": {"aws:region": "us-east-1"},  # neither a group nor environmentVariables
}


def all_text(exc: BaseException) -> str:
    """Everything an error could show: str, message, hint, agent message."""
    if isinstance(exc, ConfigError):
        return "\n".join([str(exc), exc.message, exc.hint, exc.agent_message()])
    return str(exc)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _hermetic(no_esc_cli_or_proxy: None) -> None:
    """Every test here runs without a developer's `esc` CLI or proxy (see conftest)."""


@pytest.fixture
def fake() -> Iterator[FakeEscServer]:
    with run_fake_esc() as server:
        server.put_environment(REF, DEV_VALUES)
        yield server


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on PATH for a fake `esc` command."""
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", str(path))
    return path


# -- the fake follows the swagger ------------------------------------------------------------------


def _swagger_validator(schema_name: str) -> jsonschema.protocols.Validator:
    swagger = yaml.safe_load(spec_path("pulumi-esc", "swagger.yaml").read_text(encoding="utf-8"))
    schema = {"allOf": [{"$ref": f"#/components/schemas/{schema_name}"}], "components": swagger["components"]}
    return jsonschema.Draft4Validator(schema)


def _call(url: str, method: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"token {token}"} if token else {}
    response = httpx.request(method, url, headers=headers, timeout=5)
    return response.status_code, response.json()


def test_fake_answers_match_swagger_schemas(fake: FakeEscServer) -> None:
    api = f"{fake.url}/api/esc/environments"
    status, opened = _call(f"{api}/{REF}/open?duration=2h", "POST", VALID_TOKEN)
    assert status == 200
    _swagger_validator("OpenEnvironment").validate(opened)

    status, environment = _call(f"{api}/{REF}/open/{opened['id']}", "GET", VALID_TOKEN)
    assert status == 200
    _swagger_validator("Environment").validate(environment)
    values = [v for prop in environment["properties"].values() for _, v in iter_values(prop)]
    assert len(values) > 10 and all("trace" in v and "value" in v for v in values)

    error = _swagger_validator("Error")
    for url, method, token, expected in [
        (f"{api}/{REF}/open", "POST", "wrong-token", 401),
        (f"{api}/{REF}/open", "POST", None, 401),
        (f"{api}/acme/sophia/missing/open", "POST", VALID_TOKEN, 404),
        (f"{api}/{REF}/open/no-such-session", "GET", VALID_TOKEN, 404),
    ]:
        status, body = _call(url, method, token)
        assert status == expected
        error.validate(body)
        assert body["code"] == expected

    status, body = _call(f"{api}/{REF}/open?duration=forever", "POST", VALID_TOKEN)
    assert status == 400
    _swagger_validator("EnvironmentDiagnostics").validate(body)


def test_fake_session_is_a_snapshot_taken_at_open(fake: FakeEscServer) -> None:
    api = f"{fake.url}/api/esc/environments/{REF}"
    _, opened = _call(f"{api}/open", "POST", VALID_TOKEN)
    fake.put_environment(REF, {"environmentVariables": {"ROTATED": "new"}})
    _, environment = _call(f"{api}/open/{opened['id']}", "GET", VALID_TOKEN)
    assert "ROTATED" not in json.dumps(environment)
    assert fake.open_count(REF) == 1


# -- opening through the SDK ----------------------------------------------------------------------


def test_open_maps_groups_and_environment_variables(fake: FakeEscServer) -> None:
    source = open_esc_environment(REF, token=VALID_TOKEN, backend_url=fake.url, groups=GROUPS)

    assert source.label == f"esc:{REF}"
    assert source.values == {
        "SNOWFLAKE_ACCOUNT": "from-environment-variables",  # environmentVariables wins
        "DATABASE_URL": "postgres://u:p@db/x",
        "SNOWFLAKE_PASSWORD": "pw-from-esc-123",
        "SNOWFLAKE_PORT": "8443",
        "OPENROUTER_API_KEY": "sk-or-esc-456",
        "ARIZE_ENABLED": "true",
    }
    # Secrets come from ESC's flags, not from names: DATABASE_URL has no secret-sounding name.
    assert source.secrets == {"DATABASE_URL", "SNOWFLAKE_PASSWORD", "OPENROUTER_API_KEY"}


def test_open_sends_the_token_and_asks_for_a_two_hour_session(fake: FakeEscServer) -> None:
    before = time.time()
    source = open_esc_environment(REF, token=VALID_TOKEN, backend_url=fake.url, groups=GROUPS)

    opens = [r for r in fake.requests if r.method == "POST"]
    assert [r.query["duration"] for r in opens] == [["2h"]]
    assert {r.authorization for r in fake.requests} == {f"token {VALID_TOKEN}"}
    # Cached until shortly before the session ends, never past it.
    assert before + 2 * 3600 - 600 < source.expires_at < before + 2 * 3600


def test_legacy_org_env_ref_opens_project_default(fake: FakeEscServer) -> None:
    fake.put_environment("acme/default/dev", {"environmentVariables": {"FROM_DEFAULT": "yes"}})

    source = open_esc_environment("acme/dev", token=VALID_TOKEN, backend_url=fake.url, groups=GROUPS)

    assert source.values == {"FROM_DEFAULT": "yes"}
    assert source.label == "esc:acme/dev"
    assert fake.requests[0].path == "/api/esc/environments/acme/default/dev/open"


@pytest.mark.parametrize("ref", ["acme", "acme/a/b/c", "ab/proj/env", "acme//env", "acme/proj/..", "acme/p/e@v1", ""])
def test_malformed_ref_is_a_config_error(ref: str) -> None:
    with pytest.raises(ConfigError, match="SOPHIA_ESC_ENV") as caught:
        parse_ref(ref)
    assert "org/project/env" in caught.value.hint


def test_backend_url_path_prefix_is_kept(fake: FakeEscServer) -> None:
    # The SDK alone would drop "/pulumi" and call <host>/api/esc.
    open_esc_environment(REF, token=VALID_TOKEN, backend_url=fake.url + "/pulumi/", groups=GROUPS)

    assert fake.requests[0].path == f"/pulumi/api/esc/environments/{REF}/open"


def test_self_managed_backend_has_no_esc() -> None:
    with pytest.raises(ConfigError, match="PULUMI_BACKEND_URL") as caught:
        open_esc_environment(REF, token=VALID_TOKEN, backend_url="file://~", groups=GROUPS)
    assert "SOPHIA_ESC_FILE" in caught.value.hint


@pytest.mark.parametrize("forbidden", [False, True], ids=["401", "403"])
def test_rejected_token_says_to_set_pulumi_access_token(fake: FakeEscServer, forbidden: bool) -> None:
    token = "pul-rejected-token-0000"
    if forbidden:
        fake.forbidden_tokens.add(token)

    with pytest.raises(ConfigError, match="rejected the access token") as caught:
        open_esc_environment(REF, token=token, backend_url=fake.url, groups=GROUPS)

    assert "PULUMI_ACCESS_TOKEN" in caught.value.hint
    assert ("HTTP 403" if forbidden else "HTTP 401") in caught.value.message
    assert token not in all_text(caught.value)


def test_unknown_environment_is_not_found(fake: FakeEscServer) -> None:
    with pytest.raises(ConfigError, match="acme/sophia/prod was not found") as caught:
        open_esc_environment("acme/sophia/prod", token=VALID_TOKEN, backend_url=fake.url, groups=GROUPS)
    assert VALID_TOKEN not in all_text(caught.value)


def test_unreachable_backend_fails_fast_without_the_token() -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match="unreachable") as caught:
        open_esc_environment(REF, token=VALID_TOKEN, backend_url=closed_port_url(), groups=GROUPS)

    assert time.monotonic() - started < 5
    assert "Connection refused" in caught.value.message
    assert VALID_TOKEN not in all_text(caught.value)


def test_slow_backend_times_out(fake: FakeEscServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(esc_remote, "TIMEOUT_SECONDS", 0.5)
    fake.delay_seconds = 5

    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"unreachable.*no answer within 0\.5 s"):
        open_esc_environment(REF, token=VALID_TOKEN, backend_url=fake.url, groups=GROUPS)
    assert time.monotonic() - started < 3


def test_server_error_without_cli_is_unreachable(fake: FakeEscServer) -> None:
    fake.fail_status = 500
    with pytest.raises(ConfigError, match=r"unreachable.*HTTP 500"):
        open_esc_environment(REF, token=VALID_TOKEN, backend_url=fake.url, groups=GROUPS)


# -- Pulumi's own evaluation fixtures -------------------------------------------------------------


def test_fixtures_are_present() -> None:
    # If the specs folder moved, the parametrized test below would silently run zero cases.
    assert len(FIXTURES) >= 40
    assert "nested-unknowns-secrets" in FIXTURES and "secret-objects" in FIXTURES


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_pulumi_fixture_reads_as_esc_open_prints_it(fake: FakeEscServer, name: str) -> None:
    fixture = FIXTURES[name]
    fake.put_raw_environment(f"fixtures/eval/{name}", fixture["eval"])

    opened = open_environment(f"fixtures/eval/{name}", token=VALID_TOKEN, backend_url=fake.url)

    assert opened.document.reveal() == fixture["evalJSONRevealed"]
    # The redacted form proves every secret ESC marked (nested, inherited, unknown) was detected.
    assert opened.document.reveal(redact=True) == fixture["evalJsonRedacted"]


def test_pulumi_fixture_secrets_reach_settings(fake: FakeEscServer) -> None:
    fake.put_raw_environment("fixtures/eval/nested", FIXTURES["nested-unknowns-secrets"]["eval"])

    source = open_esc_environment("fixtures/eval/nested", token=VALID_TOKEN, backend_url=fake.url, groups=GROUPS)

    assert source.values == {"CLOUDFLARE_API_TOKEN": "apiTokenSecret"}
    assert source.secrets == {"CLOUDFLARE_API_TOKEN"}


# -- `esc` CLI fallback ---------------------------------------------------------------------------

CLI_OUTPUT = json.dumps(
    {
        "business_intelligence": {"snowflake-account": "cli-account", "snowflake-password": "cli-pw-789"},
        "environmentVariables": {"PINECONE_API_KEY": "pc-cli-000", "PENDING_TOKEN": "[unknown]"},
    }
)


def test_cli_fallback_when_esc_is_unreachable(bin_dir: Path) -> None:
    log = write_fake_esc_cli(bin_dir, stdout=CLI_OUTPUT)
    backend = closed_port_url()
    before = time.time()

    source = open_esc_environment(REF, token=VALID_TOKEN, backend_url=backend, groups=GROUPS)

    assert source.label == f"esc:{REF}"
    assert source.values == {
        "SNOWFLAKE_ACCOUNT": "cli-account",
        "SNOWFLAKE_PASSWORD": "cli-pw-789",
        "PINECONE_API_KEY": "pc-cli-000",
    }
    # No secret flags from the CLI: the name decides.
    assert source.secrets == {"SNOWFLAKE_PASSWORD", "PINECONE_API_KEY"}
    assert before + 2 * 3600 - 600 < source.expires_at < before + 2 * 3600
    assert cli_calls(log) == [
        {"argv": ["open", REF, "--format", "json", "--lifetime", "2h"], "token": VALID_TOKEN, "backend": backend}
    ]


def test_cli_fallback_when_sdk_is_not_importable(
    fake: FakeEscServer, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = write_fake_esc_cli(bin_dir, stdout=CLI_OUTPUT)
    monkeypatch.setitem(sys.modules, "pulumi_esc_sdk", None)  # makes `import pulumi_esc_sdk` fail

    source = open_esc_environment(REF, token=VALID_TOKEN, backend_url=fake.url, groups=GROUPS)

    assert source.values["SNOWFLAKE_ACCOUNT"] == "cli-account"
    assert len(cli_calls(log)) == 1
    assert fake.requests == []


def test_cli_is_not_tried_when_esc_rejects_the_token(fake: FakeEscServer, bin_dir: Path) -> None:
    log = write_fake_esc_cli(bin_dir, stdout=CLI_OUTPUT)

    with pytest.raises(ConfigError, match="rejected the access token"):
        open_esc_environment(REF, token="pul-wrong-token-1111", backend_url=fake.url, groups=GROUPS)
    assert cli_calls(log) == []


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("error: [401] Unauthorized: token {token} is not valid\n", "rejected the access token"),
        ("error: environment not found\n", "was not found"),
        ("panic: something broke near {token}\n", r"unreachable.*`esc open` failed: panic: something broke"),
    ],
)
def test_cli_failure_is_explained_without_the_token(bin_dir: Path, stderr: str, expected: str) -> None:
    write_fake_esc_cli(bin_dir, stderr=stderr.format(token=VALID_TOKEN), exit_code=1)

    with pytest.raises(ConfigError, match=expected) as caught:
        open_esc_environment(REF, token=VALID_TOKEN, backend_url=closed_port_url(), groups=GROUPS)
    assert VALID_TOKEN not in all_text(caught.value)


def test_cli_that_hangs_is_stopped(bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(esc_remote, "TIMEOUT_SECONDS", 0.5)
    write_fake_esc_cli(bin_dir, stdout=CLI_OUTPUT, sleep_seconds=5)

    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"`esc open` gave no answer within 0\.5 s"):
        open_esc_environment(REF, token=VALID_TOKEN, backend_url=closed_port_url(), groups=GROUPS)
    assert time.monotonic() - started < 3


def test_cli_output_that_is_not_json_is_an_error(bin_dir: Path) -> None:
    write_fake_esc_cli(bin_dir, stdout="FOO=bar\n")
    with pytest.raises(ConfigError, match="did not print a JSON object"):
        open_esc_environment(REF, token=VALID_TOKEN, backend_url=closed_port_url(), groups=GROUPS)


# -- local ESC-format file ------------------------------------------------------------------------

ESC_FILE = """\
values:
  environmentVariables:
    SNOWFLAKE_ACCOUNT: file-account
    SNOWFLAKE_WAREHOUSE: {fn::secret: "wh-is-secret"}
  business_intelligence:
    snowflake-user: analyst
    snowflake-password:
      fn::secret: file-pw-321
    snowflake-port: 443
    snowflake-account: loses-to-environmentVariables
  infrastructure:
    docker-token:
      fn::secret:
        ciphertext: ZXNjeAAAAAHo9e705fKyKo30VQ==
    lambda-api-key:
      fn::open::aws-secrets: {region: us-east-1}
  data_intelligence:
    tavily-api-key: tvly-plain
"""


def test_file_reads_literals_and_secret_literals(tmp_path: Path) -> None:
    path = tmp_path / "esc.yaml"
    path.write_text(ESC_FILE, encoding="utf-8")

    source = read_esc_file(path, groups=GROUPS)

    assert source.label == "file"
    assert source.values == {
        "SNOWFLAKE_ACCOUNT": "file-account",
        "SNOWFLAKE_WAREHOUSE": "wh-is-secret",
        "SNOWFLAKE_USER": "analyst",
        "SNOWFLAKE_PASSWORD": "file-pw-321",
        "SNOWFLAKE_PORT": "443",
        "TAVILY_API_KEY": "tvly-plain",
    }
    assert source.secrets == {"SNOWFLAKE_WAREHOUSE", "SNOWFLAKE_PASSWORD"}


def test_file_ciphertext_and_functions_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "esc.yaml"
    path.write_text(ESC_FILE, encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(path, groups=GROUPS)

    assert "DOCKER_TOKEN" not in source.values and "LAMBDA_API_KEY" not in source.values
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "line 13" in w and "infrastructure.docker-token" in w and "only Pulumi ESC can decrypt" in w for w in warnings
    ), warnings
    assert any("infrastructure.lambda-api-key" in w and "fn::open::aws-secrets" in w for w in warnings)
    assert all("ZXNjeA" not in w for w in warnings)


def test_malformed_file_names_file_and_line_but_not_its_text(tmp_path: Path) -> None:
    path = tmp_path / "esc.yaml"
    path.write_text("values:\n  environmentVariables:\n    A: ok\n   B: [pw-in-broken-line\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        read_esc_file(path, groups=GROUPS)

    assert f"{path}, line 4" in caught.value.message
    assert "pw-in-broken-line" not in all_text(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", {}), ("imports: [base]\n", {}), ("values:\n", {}), ("values:\n  environmentVariables: {A: b}\n", {"A": "b"})],
)
def test_file_without_values_is_empty(tmp_path: Path, text: str, expected: dict[str, str]) -> None:
    path = tmp_path / "esc.yaml"
    path.write_text(text, encoding="utf-8")
    assert dict(read_esc_file(path, groups=GROUPS).values) == expected


@pytest.mark.parametrize("text", ["- just\n- a list\n", "values: [1, 2]\n"])
def test_file_with_the_wrong_shape_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "esc.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        read_esc_file(path, groups=GROUPS)


# -- which groups map to settings ------------------------------------------------------------------


def test_open_maps_only_the_groups_it_is_given(fake: FakeEscServer) -> None:
    source = open_esc_environment(REF, token=VALID_TOKEN, backend_url=fake.url, groups=["ai_intelligence"])

    assert source.values == {
        "SNOWFLAKE_ACCOUNT": "from-environment-variables",
        "DATABASE_URL": "postgres://u:p@db/x",
        "OPENROUTER_API_KEY": "sk-or-esc-456",
        "ARIZE_ENABLED": "true",
    }


def test_file_maps_only_the_groups_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "esc.yaml"
    path.write_text(ESC_FILE, encoding="utf-8")

    source = read_esc_file(path, groups=())

    assert source.values == {"SNOWFLAKE_ACCOUNT": "file-account", "SNOWFLAKE_WAREHOUSE": "wh-is-secret"}
