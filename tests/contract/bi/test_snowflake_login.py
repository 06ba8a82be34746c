"""SnowflakeWarehouse logins and configuration: the real connector against fakesnow's server.

What fakesnow cannot do, and how it is covered here:
- it accepts any credentials: the recorder in front of it rejects wrong passwords with Snowflake's
  own 390100 answer, and tests read the login bodies (authenticator, token, JWT) off the wire;
- it ignores login session parameters: tests check what the connector sends at login.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from sophia_business_intelligence.backends.snowflake import SnowflakeWarehouse, snowflake_configured
from sophia_business_intelligence.backends.snowflake_config import SnowflakeConfig
from sophia_business_intelligence.settings import SETTINGS
from sophia_shared.errors import AuthError, BackendError, ConfigError
from sophia_shared.settings import Settings, SourceValues
from tests.fakes.snowflake_server import FakeSnowflakeServer, free_port

pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")


def settings(environ: dict[str, str], **kwargs: Any) -> Settings:
    return Settings(environ=environ, specs=SETTINGS, **kwargs)


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


# -- lazy import and connection ----------------------------------------------------------------


def test_constructing_neither_imports_the_connector_nor_connects(snowflake_server: FakeSnowflakeServer) -> None:
    env = snowflake_server.settings_env()
    result = run_python(
        f"""
        import sys
        from sophia_shared.settings import Settings
        from sophia_business_intelligence.backends.snowflake import SnowflakeWarehouse, snowflake_configured
        from sophia_business_intelligence.settings import SETTINGS
        settings = Settings(environ={env!r}, specs=SETTINGS)
        wh = SnowflakeWarehouse(settings)
        assert snowflake_configured(settings)
        print(wh.describe())
        print(sorted(m for m in ("snowflake.connector", "cryptography") if m in sys.modules))
        """,
        {},
    )
    assert result.returncode == 0, result.stderr
    description, modules = result.stdout.strip().splitlines()
    assert modules == "[]"
    assert description.startswith("Snowflake account fakesnow as fake")
    assert "snow-password" not in description
    assert snowflake_server.logins() == []


def test_first_use_logs_in_once_with_the_session_settings(snowflake_server: FakeSnowflakeServer) -> None:
    env = snowflake_server.settings_env(
        SNOWFLAKE_QUERY_TAG="sophia-contract-test",
        SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS="45",
        SNOWFLAKE_ROLE="ANALYST",
        SNOWFLAKE_WAREHOUSE="COMPUTE_WH",
    )
    wh = SnowflakeWarehouse(settings(env))
    try:
        assert wh.ping() == "Snowflake 10.0.0"
        assert wh.ping() == "Snowflake 10.0.0"
    finally:
        wh.close()

    (login,) = snowflake_server.logins()
    assert login["LOGIN_NAME"] == "fake"
    assert login["PASSWORD"] == "snow-password"
    assert login["SESSION_PARAMETERS"]["QUERY_TAG"] == "sophia-contract-test"
    assert login["SESSION_PARAMETERS"]["MULTI_STATEMENT_COUNT"] == 1
    assert login["SESSION_PARAMETERS"]["STATEMENT_TIMEOUT_IN_SECONDS"] == 45
    assert login["SESSION_PARAMETERS"]["CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED"] is False
    assert login["CLIENT_ENVIRONMENT"]["APPLICATION"] == "sophia-mcp"
    assert login["CLIENT_ENVIRONMENT"]["LOGIN_TIMEOUT"] == 30
    assert login["CLIENT_ENVIRONMENT"]["NETWORK_TIMEOUT"] == 45 + 15
    login_request = next(r for r in snowflake_server.requests if r.path.endswith("login-request"))
    assert parse_qs(login_request.query)["roleName"] == ["ANALYST"]
    assert parse_qs(login_request.query)["warehouse"] == ["COMPUTE_WH"]


def test_unset_timeout_and_query_tag_take_the_declared_defaults(snowflake_server: FakeSnowflakeServer) -> None:
    defaults = {spec.name: spec.default for spec in SETTINGS}
    wh = SnowflakeWarehouse(settings(snowflake_server.settings_env()))
    wh.ping()
    wh.close()
    (login,) = snowflake_server.logins()
    timeout = int(defaults["SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS"])
    assert login["SESSION_PARAMETERS"]["STATEMENT_TIMEOUT_IN_SECONDS"] == timeout
    assert login["SESSION_PARAMETERS"]["QUERY_TAG"] == defaults["SNOWFLAKE_QUERY_TAG"]


def test_concurrent_first_calls_share_one_login(snowflake_server: FakeSnowflakeServer) -> None:
    wh = SnowflakeWarehouse(settings(snowflake_server.settings_env()))
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(wh.ping())) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wh.close()
    assert results == ["Snowflake 10.0.0"] * 6
    assert len(snowflake_server.logins()) == 1


def test_close_then_use_reconnects(snowflake_server: FakeSnowflakeServer) -> None:
    wh = SnowflakeWarehouse(settings(snowflake_server.settings_env()))
    wh.ping()
    wh.close()
    wh.ping()
    wh.close()
    assert len(snowflake_server.logins()) == 2


# -- authentication ----------------------------------------------------------------------------


def rotating_esc(passwords: list[str], opened: list[str]) -> Any:
    def opener(ref: str, token: str, backend_url: str | None) -> SourceValues:
        value = passwords[min(len(opened), len(passwords) - 1)]
        opened.append(value)
        return SourceValues(f"esc:{ref}", {"SNOWFLAKE_PASSWORD": value}, frozenset({"SNOWFLAKE_PASSWORD"}))

    return opener


def esc_settings(server: FakeSnowflakeServer, passwords: list[str], opened: list[str]) -> Settings:
    env = server.settings_env(SNOWFLAKE_PASSWORD="", SOPHIA_ESC_ENV="acme/sophia/prod", PULUMI_ACCESS_TOKEN="pul-x")
    return settings(env, esc_opener=rotating_esc(passwords, opened))


def test_a_rotated_password_is_picked_up_by_reopening_esc_once(snowflake_server: FakeSnowflakeServer) -> None:
    opened: list[str] = []
    wh = SnowflakeWarehouse(esc_settings(snowflake_server, ["stale-password", "rotated-password"], opened))
    with snowflake_server.only_password("rotated-password"):
        assert wh.ping() == "Snowflake 10.0.0"
    wh.close()
    assert opened == ["stale-password", "rotated-password"]
    assert [login["PASSWORD"] for login in snowflake_server.logins()] == ["stale-password", "rotated-password"]


def test_rejected_credentials_raise_an_auth_error_without_the_secret(snowflake_server: FakeSnowflakeServer) -> None:
    opened: list[str] = []
    wh = SnowflakeWarehouse(esc_settings(snowflake_server, ["still-wrong-password"], opened))
    with snowflake_server.only_password("the-real-password"), pytest.raises(AuthError) as caught:
        wh.ping()
    assert len(snowflake_server.logins()) == 2  # the first try, then one retry after re-opening ESC
    text = caught.value.agent_message()
    assert "still-wrong-password" not in text
    assert "Incorrect username or password" in text
    assert "SNOWFLAKE_PASSWORD" in caught.value.hint


def test_without_esc_a_rejected_password_is_not_retried(snowflake_server: FakeSnowflakeServer) -> None:
    wh = SnowflakeWarehouse(settings(snowflake_server.settings_env()))
    with snowflake_server.only_password("something-else"), pytest.raises(AuthError):
        wh.ping()
    assert len(snowflake_server.logins()) == 1


def test_programmatic_access_token_is_sent_with_its_authenticator(snowflake_server: FakeSnowflakeServer) -> None:
    env = snowflake_server.settings_env(SNOWFLAKE_PASSWORD="", SNOWFLAKE_TOKEN="pat-secret-value")
    wh = SnowflakeWarehouse(settings(env))
    wh.ping()
    wh.close()
    (login,) = snowflake_server.logins()
    assert login["AUTHENTICATOR"] == "PROGRAMMATIC_ACCESS_TOKEN"
    assert login["TOKEN"] == "pat-secret-value"
    assert "PASSWORD" not in login
    assert "programmatic access token" in wh.describe()


def encrypted_key(tmp_path: Path, passphrase: bytes) -> tuple[Path, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    path = tmp_path / "rsa_key.p8"
    path.write_bytes(pem)
    return path, key.public_key()


def b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_key_pair_auth_signs_the_login_jwt_with_the_decrypted_key(
    snowflake_server: FakeSnowflakeServer, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    path, public_key = encrypted_key(tmp_path, b"correct horse")
    env = snowflake_server.settings_env(
        SNOWFLAKE_PASSWORD="", SNOWFLAKE_PRIVATE_KEY_FILE=str(path), SNOWFLAKE_PRIVATE_KEY_PASSPHRASE="correct horse"
    )
    wh = SnowflakeWarehouse(settings(env))
    wh.ping()
    wh.close()

    (login,) = snowflake_server.logins()
    assert login["AUTHENTICATOR"] == "SNOWFLAKE_JWT"
    header, payload, signature = login["TOKEN"].split(".")
    public_key.verify(b64url(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert json.loads(b64url(payload))["sub"] == "FAKESNOW.FAKE"


def test_a_wrong_passphrase_is_a_config_error_that_hides_the_passphrase(
    snowflake_server: FakeSnowflakeServer, tmp_path: Path
) -> None:
    path, _ = encrypted_key(tmp_path, b"correct horse")
    env = snowflake_server.settings_env(
        SNOWFLAKE_PASSWORD="", SNOWFLAKE_PRIVATE_KEY_FILE=str(path), SNOWFLAKE_PRIVATE_KEY_PASSPHRASE="battery staple"
    )
    with pytest.raises(ConfigError) as caught:
        SnowflakeWarehouse(settings(env)).ping()
    assert "battery staple" not in caught.value.agent_message()
    assert "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE" in caught.value.hint

    without = {k: v for k, v in env.items() if k != "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"}
    with pytest.raises(ConfigError, match="private key") as caught:
        SnowflakeWarehouse(settings(without)).ping()
    assert "set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE" in caught.value.hint

    missing = {**env, "SNOWFLAKE_PRIVATE_KEY_FILE": str(tmp_path / "nope.p8")}
    with pytest.raises(ConfigError) as caught:
        SnowflakeWarehouse(settings(missing)).ping()
    assert "SNOWFLAKE_PRIVATE_KEY_FILE" in caught.value.hint
    assert snowflake_server.logins() == []


# -- configuration -----------------------------------------------------------------------------

VALID = {"SNOWFLAKE_ACCOUNT": "acme-prod", "SNOWFLAKE_USER": "u", "SNOWFLAKE_PASSWORD": "pw-1234"}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SNOWFLAKE_USER": "u", "SNOWFLAKE_PASSWORD": "pw-1234"}, "SNOWFLAKE_ACCOUNT"),
        ({"SNOWFLAKE_ACCOUNT": "acme-prod", "SNOWFLAKE_USER": "u"}, "SNOWFLAKE_PASSWORD"),
        ({"SNOWFLAKE_ACCOUNT": "acme-prod", "SNOWFLAKE_PASSWORD": "pw-1234"}, "SNOWFLAKE_USER"),
        ({**VALID, "SNOWFLAKE_PORT": "http"}, "SNOWFLAKE_PORT"),
        ({**VALID, "SNOWFLAKE_PORT": "70000"}, "SNOWFLAKE_PORT"),
        ({**VALID, "SNOWFLAKE_PROTOCOL": "ftp"}, "SNOWFLAKE_PROTOCOL"),
        ({**VALID, "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS": "two minutes"}, "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS"),
        ({**VALID, "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS": "-5"}, "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS"),
    ],
)
def test_missing_or_invalid_settings_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SnowflakeWarehouse(settings(environ)).ping()
    assert named in caught.value.agent_message()
    assert "pw-1234" not in caught.value.agent_message()


def test_a_bad_statement_timeout_is_a_config_error_before_any_login(snowflake_server: FakeSnowflakeServer) -> None:
    env = snowflake_server.settings_env(SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS="2m")
    wh = SnowflakeWarehouse(settings(env))
    with pytest.raises(ConfigError, match="SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS is not valid \\('2m'\\)") as caught:
        wh.ping()
    assert "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS" in caught.value.hint
    assert snowflake_server.logins() == []


def test_config_reads_only_declared_settings_and_hides_secrets() -> None:
    assert set(SnowflakeConfig.variables()) <= {spec.name for spec in SETTINGS}
    env = {**VALID, "SNOWFLAKE_TOKEN": "pat-9876", "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "phrase-5555"}
    config = SnowflakeConfig.from_settings(settings(env))
    shown = f"{config!r} {config} {config.model_dump()} {config.describe()}"
    for secret in ("pw-1234", "pat-9876", "phrase-5555"):
        assert secret not in shown


def test_secrets_are_kept_exactly_and_numbers_may_be_padded() -> None:
    env = {**VALID, "SNOWFLAKE_PASSWORD": " pw ends in space ", "SNOWFLAKE_PORT": " 8443 "}
    config = SnowflakeConfig.from_settings(settings(env))
    assert config.password is not None and config.password.get_secret_value() == " pw ends in space "
    assert config.port == 8443


def test_snowflake_is_chosen_by_account_or_connection_name() -> None:
    assert not snowflake_configured(settings({"SNOWFLAKE_USER": "u"}))
    assert snowflake_configured(settings({"SNOWFLAKE_ACCOUNT": "acme-prod"}))
    assert snowflake_configured(settings({"SNOWFLAKE_CONNECTION_NAME": "dev"}))


def test_connections_toml_connection_is_used_by_name(snowflake_server: FakeSnowflakeServer, tmp_path: Path) -> None:
    toml = tmp_path / "connections.toml"
    toml.write_text(
        textwrap.dedent(
            f"""
            [dev]
            account = "fakesnow"
            user = "toml-user"
            password = "toml-password"
            host = "{snowflake_server.host}"
            port = {snowflake_server.port}
            protocol = "http"
            """
        )
    )
    toml.chmod(0o600)
    result = run_python(
        """
        from sophia_shared.errors import ConfigError
        from sophia_shared.settings import Settings
        from sophia_business_intelligence.backends.snowflake import SnowflakeWarehouse
        from sophia_business_intelligence.settings import SETTINGS
        def settings(name):
            return Settings(environ={"SNOWFLAKE_CONNECTION_NAME": name}, specs=SETTINGS)
        print(SnowflakeWarehouse(settings("dev")).ping())
        try:
            SnowflakeWarehouse(settings("nope")).ping()
        except ConfigError as exc:
            print(exc.hint)
        """,
        {"SNOWFLAKE_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    version, hint = result.stdout.strip().splitlines()
    assert version == "Snowflake 10.0.0"
    assert "SNOWFLAKE_CONNECTION_NAME" in hint
    (login,) = snowflake_server.logins()
    assert login["LOGIN_NAME"] == "toml-user"
    assert login["SESSION_PARAMETERS"]["MULTI_STATEMENT_COUNT"] == 1


def test_an_unreachable_account_is_a_backend_error_that_says_what_to_check() -> None:
    env = {
        **VALID,
        "SNOWFLAKE_PASSWORD": "pw-unreachable",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(free_port()),
        "SNOWFLAKE_PROTOCOL": "http",
    }
    with pytest.raises(BackendError) as caught:
        SnowflakeWarehouse(settings(env)).ping()
    assert type(caught.value) is BackendError
    assert "SNOWFLAKE_ACCOUNT" in caught.value.hint
    assert "pw-unreachable" not in caught.value.agent_message()
