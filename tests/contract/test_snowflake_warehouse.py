"""SnowflakeWarehouse with the real connector against fakesnow's server (tests/fakes/snowflake_server.py).

What fakesnow cannot do, and how it is covered here:
- it accepts any credentials: the recorder in front of it rejects wrong passwords with Snowflake's
  own 390100 answer, and tests read the login bodies (authenticator, token, JWT) off the wire;
- it ignores login session parameters: tests check what the connector sends at login;
- its abort-request is a no-op and a statement cannot time out: cancellation is checked by the
  abort request reaching the server (matching request id and SQL) and by the call ending in
  CancelledByClient; the timeout message is checked on the connector's own error class.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from sophia_business_intelligence.backends.base import CancelToken
from sophia_business_intelligence.backends.snowflake import (
    SnowflakeWarehouse,
    quote_identifier,
    snowflake_configured,
    stored_name,
    translate_error,
)
from sophia_shared.errors import AuthError, BackendError, CancelledByClient, ConfigError, InputError
from sophia_shared.settings import Settings, SourceValues
from tests.fakes.snowflake_server import QUERY_PATH, FakeSnowflakeServer, free_port, run_fake_snowflake

# A statement fakesnow (DuckDB) needs about a second for: long enough to cancel mid-flight.
SLOW_SQL = "SELECT COUNT(*) FROM range(14000) a, range(14000) b WHERE (a.range * b.range) % 7 = 3"
NASTY = "we\"ird'; DROP TABLE t; --"
# fakesnow itself fails on a single quote inside an identifier (its catalogue bookkeeping formats
# names into SQL), so the round trip through the server uses this one.
NASTY_TABLE = 'we"ird; DROP TABLE t; --'

# fakesnow's own DuckDB result conversion warns on every result; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")


@pytest.fixture(scope="session")
def fake_snowflake() -> Iterator[FakeSnowflakeServer]:
    with run_fake_snowflake() as server:
        yield server


@pytest.fixture
def server(fake_snowflake: FakeSnowflakeServer) -> FakeSnowflakeServer:
    fake_snowflake.clear()
    return fake_snowflake


@pytest.fixture
def warehouse(server: FakeSnowflakeServer) -> Iterator[SnowflakeWarehouse]:
    wh = SnowflakeWarehouse(Settings(environ=server.settings_env()))
    yield wh
    wh.close()


@pytest.fixture
def database(warehouse: SnowflakeWarehouse) -> str:
    """A fresh database with schema S, table T (7 rows) and view V; fakesnow's catalogue is shared."""
    name = f"SOPHIA_{uuid.uuid4().hex[:10].upper()}"
    write(warehouse, f"CREATE DATABASE {name}")
    write(warehouse, f"CREATE SCHEMA {name}.S")
    write(
        warehouse,
        f"CREATE TABLE {name}.S.T (ID INT NOT NULL, NAME VARCHAR, AMOUNT NUMBER(10,2), RATIO FLOAT, "
        "OK BOOLEAN, DAY DATE, SEEN_AT TIMESTAMP_NTZ)",
    )
    write(warehouse, f"CREATE VIEW {name}.S.V AS SELECT ID, NAME FROM {name}.S.T")
    values = ", ".join("(?, ?)" for _ in range(7))
    params = [v for i in range(7) for v in (i, f"name-{i}")]
    outcome = write(warehouse, f"INSERT INTO {name}.S.T (ID, NAME) VALUES {values}", params)
    assert outcome.rows_affected == 7
    return name


def write(wh: SnowflakeWarehouse, sql: str, params: list[Any] | None = None) -> Any:
    return wh.execute_write(sql, params=params or [], cancel=CancelToken())


def page(
    wh: SnowflakeWarehouse, sql: str, *, params: Any = (), offset: int = 0, max_rows: int = 100, handle: str = ""
) -> Any:
    return wh.query(sql, params=list(params), offset=offset, max_rows=max_rows, handle=handle, cancel=CancelToken())


def query_request_ids(server: FakeSnowflakeServer, sql: str) -> list[str]:
    return [
        parse_qs(r.query)["requestId"][0]
        for r in list(server.requests)
        if r.path == QUERY_PATH and r.body.get("sqlText") == sql
    ]


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


def test_constructing_neither_imports_the_connector_nor_connects(server: FakeSnowflakeServer) -> None:
    env = server.settings_env()
    result = run_python(
        f"""
        import sys
        from sophia_shared.settings import Settings
        from sophia_business_intelligence.backends.snowflake import SnowflakeWarehouse, snowflake_configured
        settings = Settings(environ={env!r})
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
    assert server.logins() == []


def test_first_use_logs_in_once_with_the_session_settings(server: FakeSnowflakeServer) -> None:
    env = server.settings_env(
        SNOWFLAKE_QUERY_TAG="sophia-contract-test",
        SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS="45",
        SNOWFLAKE_ROLE="ANALYST",
        SNOWFLAKE_WAREHOUSE="COMPUTE_WH",
    )
    wh = SnowflakeWarehouse(Settings(environ=env))
    try:
        assert wh.ping() == "Snowflake 10.0.0"
        assert wh.ping() == "Snowflake 10.0.0"
    finally:
        wh.close()

    (login,) = server.logins()
    assert login["LOGIN_NAME"] == "fake"
    assert login["PASSWORD"] == "snow-password"
    assert login["SESSION_PARAMETERS"]["QUERY_TAG"] == "sophia-contract-test"
    assert login["SESSION_PARAMETERS"]["MULTI_STATEMENT_COUNT"] == 1
    assert login["SESSION_PARAMETERS"]["STATEMENT_TIMEOUT_IN_SECONDS"] == 45
    assert login["SESSION_PARAMETERS"]["CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED"] is False
    assert login["CLIENT_ENVIRONMENT"]["APPLICATION"] == "sophia-mcp"
    assert login["CLIENT_ENVIRONMENT"]["LOGIN_TIMEOUT"] == 30
    assert login["CLIENT_ENVIRONMENT"]["NETWORK_TIMEOUT"] == 45 + 15
    login_request = next(r for r in server.requests if r.path.endswith("login-request"))
    assert parse_qs(login_request.query)["roleName"] == ["ANALYST"]
    assert parse_qs(login_request.query)["warehouse"] == ["COMPUTE_WH"]


def test_concurrent_first_calls_share_one_login(warehouse: SnowflakeWarehouse, server: FakeSnowflakeServer) -> None:
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(warehouse.ping())) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["Snowflake 10.0.0"] * 6
    assert len(server.logins()) == 1


def test_close_then_use_reconnects(warehouse: SnowflakeWarehouse, server: FakeSnowflakeServer) -> None:
    warehouse.ping()
    warehouse.close()
    warehouse.ping()
    assert len(server.logins()) == 2


def test_an_expired_session_logs_in_again_and_the_call_succeeds(
    warehouse: SnowflakeWarehouse, server: FakeSnowflakeServer, database: str
) -> None:
    server.clear()
    server.expire_sessions()
    assert page(warehouse, f"SELECT COUNT(*) FROM {database}.S.T").rows == [[7]]
    assert len(server.logins()) == 1
    server.expire_sessions()
    assert write(warehouse, f"DELETE FROM {database}.S.T WHERE ID = ?", [6]).rows_affected == 1
    assert len(server.logins()) == 2


# -- queries, writes, paging -------------------------------------------------------------------


def test_query_pages_through_three_pages_resuming_the_stored_result(
    warehouse: SnowflakeWarehouse, server: FakeSnowflakeServer, database: str
) -> None:
    sql = f"SELECT ID, NAME FROM {database}.S.T WHERE ID >= ? ORDER BY ID"
    first = page(warehouse, sql, params=[0], max_rows=3)
    assert [r[0] for r in first.rows] == [0, 1, 2] and first.has_more
    assert first.handle

    server.clear()
    second = page(warehouse, sql, params=[0], offset=3, max_rows=3, handle=first.handle)
    third = page(warehouse, sql, params=[0], offset=6, max_rows=3, handle=first.handle)
    assert [r[0] for r in second.rows] == [3, 4, 5] and second.has_more
    assert third.rows == [[6, "name-6"]] and not third.has_more
    assert [c.name for c in third.columns] == ["ID", "NAME"]
    # Pages 2 and 3 read the stored result: the statement itself never ran again.
    assert sql not in server.sql_texts()
    assert server.sql_texts() == [f"select * from table(result_scan('{first.handle}'))"] * 2


def test_a_handle_issued_for_other_sql_or_a_forged_one_reruns_the_statement(
    warehouse: SnowflakeWarehouse, server: FakeSnowflakeServer, database: str
) -> None:
    sql = f"SELECT ID FROM {database}.S.T ORDER BY ID"
    other = page(warehouse, f"SELECT NAME FROM {database}.S.T ORDER BY ID", max_rows=2)
    for handle in (other.handle, "x')); DROP TABLE t; --", str(uuid.uuid4())):
        server.clear()
        result = page(warehouse, sql, offset=2, max_rows=2, handle=handle)
        assert result.rows == [[2], [3]]
        assert server.sql_texts() == [sql]


def test_bound_values_travel_as_data_never_as_sql(
    warehouse: SnowflakeWarehouse, server: FakeSnowflakeServer, database: str
) -> None:
    evil = "O'Brien'; DROP TABLE T; --"
    outcome = write(warehouse, f"INSERT INTO {database}.S.T (ID, NAME) VALUES (?, ?)", [100, evil])
    assert outcome == type(outcome)(statement_type="INSERT", rows_affected=1)

    result = page(warehouse, f"SELECT ID, NAME FROM {database}.S.T WHERE NAME = ?", params=[evil])
    assert result.rows == [[100, evil]]
    statement = server.statements()[-1]
    assert evil not in statement["sqlText"]
    assert statement["bindings"]["1"] == {"type": "TEXT", "value": evil}
    assert page(warehouse, f"SELECT COUNT(*) FROM {database}.S.T").rows == [[8]]


def test_query_reports_column_types_from_the_result_metadata(warehouse: SnowflakeWarehouse, database: str) -> None:
    result = page(warehouse, f"SELECT ID, NAME, AMOUNT, RATIO, OK, DAY, SEEN_AT FROM {database}.S.T", max_rows=1)
    assert [(c.name, c.type) for c in result.columns] == [
        ("ID", "NUMBER(38,0)"),
        ("NAME", "TEXT"),
        ("AMOUNT", "NUMBER(10,2)"),
        ("RATIO", "FLOAT"),
        ("OK", "BOOLEAN"),
        ("DAY", "DATE"),
        ("SEEN_AT", "TIMESTAMP_NTZ"),
    ]


def test_writes_report_statement_type_and_affected_rows(warehouse: SnowflakeWarehouse, database: str) -> None:
    updated = write(warehouse, f"UPDATE {database}.S.T SET NAME = ? WHERE ID < ?", ["renamed", 3])
    assert (updated.statement_type, updated.rows_affected) == ("UPDATE", 3)
    created = write(warehouse, f"CREATE TABLE {database}.S.EMPTY (X INT)")
    assert (created.statement_type, created.rows_affected) == ("CREATE", None)


def test_sql_errors_come_back_as_input_errors_with_snowflakes_message(
    warehouse: SnowflakeWarehouse, database: str
) -> None:
    with pytest.raises(InputError, match="does not exist") as caught:
        page(warehouse, f"SELECT * FROM {database}.S.MISSING")
    assert "describe_table" in caught.value.hint


# -- metadata ----------------------------------------------------------------------------------


def test_lists_databases_schemas_tables_and_views(warehouse: SnowflakeWarehouse, database: str) -> None:
    assert database in warehouse.list_databases()
    assert warehouse.list_schemas(database.lower()) == ["S"]
    tables = warehouse.list_tables(database.lower(), "s")
    assert [(t.database, t.schema, t.name, t.kind) for t in tables] == [
        (database, "S", "T", "TABLE"),
        (database, "S", "V", "VIEW"),
    ]
    assert tables[0].row_count == 7
    assert tables[1].row_count is None


def test_describe_table_lists_columns_in_order_with_types_and_nullability(
    warehouse: SnowflakeWarehouse, database: str
) -> None:
    columns = warehouse.describe_table(database, "S", "t")
    assert [(c.name, c.type, c.nullable) for c in columns] == [
        ("ID", "NUMBER(38,0)", False),
        ("NAME", "TEXT", True),
        ("AMOUNT", "NUMBER(10,2)", True),
        ("RATIO", "FLOAT", True),
        ("OK", "BOOLEAN", True),
        ("DAY", "DATE", True),
        ("SEEN_AT", "TIMESTAMP_NTZ", True),
    ]
    assert warehouse.describe_table(database, "S", "NO_SUCH_TABLE") == []


def test_identifier_quoting_survives_nasty_names() -> None:
    assert quote_identifier(NASTY) == '"we""ird\'; DROP TABLE t; --"'
    assert quote_identifier("sales") == '"sales"'
    assert stored_name("sales") == "SALES"
    assert stored_name('"sales"') == "sales"
    assert stored_name('"a""b"') == 'a"b'
    assert stored_name("my table") == "my table"
    for bad in ("", "   ", "a\x00b", "x" * 256):
        with pytest.raises(InputError):
            quote_identifier(bad)
    with pytest.raises(InputError, match="unescaped"):
        stored_name('"a"b"')


def test_metadata_calls_treat_nasty_names_as_names(warehouse: SnowflakeWarehouse, database: str) -> None:
    write(warehouse, f'CREATE TABLE {database}.S.{quote_identifier(NASTY_TABLE)} ("Mixed Col" INT)')
    assert NASTY_TABLE in [t.name for t in warehouse.list_tables(database, "S")]
    assert [c.name for c in warehouse.describe_table(database, "S", NASTY_TABLE)] == ["Mixed Col"]
    assert warehouse.list_tables(database, NASTY) == []
    with pytest.raises(InputError, match="does not exist"):
        warehouse.list_schemas(f'{database}" ; DROP DATABASE {database}; --')
    assert warehouse.list_schemas(database) == ["S"]


# -- cancellation and timeouts -----------------------------------------------------------------


def test_cancel_from_another_thread_aborts_the_running_statement(server: FakeSnowflakeServer, database: str) -> None:
    env = server.settings_env(SNOWFLAKE_DATABASE=database, SNOWFLAKE_SCHEMA="S")
    warehouse = SnowflakeWarehouse(Settings(environ=env))
    warehouse.ping()
    token = CancelToken()
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(warehouse.query(SLOW_SQL, params=[], offset=0, max_rows=10, handle="", cancel=token))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not query_request_ids(server, SLOW_SQL):
        assert time.monotonic() < deadline, "the slow statement never reached the server"
        time.sleep(0.01)
    token.cancel()
    worker.join(timeout=30)
    warehouse.close()

    assert isinstance(outcome[0], CancelledByClient)
    (abort,) = server.aborts()
    assert abort["sqlText"] == SLOW_SQL
    assert abort["requestId"] == query_request_ids(server, SLOW_SQL)[0]


def test_a_cancelled_token_stops_the_statement_before_it_is_sent(
    warehouse: SnowflakeWarehouse, server: FakeSnowflakeServer
) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledByClient):
        warehouse.execute_write("CREATE DATABASE NEVER_CREATED", params=[], cancel=token)
    assert "CREATE DATABASE NEVER_CREATED" not in server.sql_texts()


def test_statement_timeout_points_at_the_setting() -> None:
    from snowflake.connector.errors import ProgrammingError

    timeout = ProgrammingError(
        msg="Statement reached its statement or warehouse timeout of 45 second(s) and was canceled.",
        errno=630,
        sqlstate="57014",
    )
    error = translate_error(timeout, timeout_seconds=45)
    assert type(error) is BackendError
    assert "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS (45 s)" in error.hint


# -- authentication ----------------------------------------------------------------------------


def rotating_esc(passwords: list[str], opened: list[str]) -> Any:
    def opener(ref: str, token: str, backend_url: str | None) -> SourceValues:
        value = passwords[min(len(opened), len(passwords) - 1)]
        opened.append(value)
        return SourceValues(f"esc:{ref}", {"SNOWFLAKE_PASSWORD": value}, frozenset({"SNOWFLAKE_PASSWORD"}))

    return opener


def esc_settings(server: FakeSnowflakeServer, passwords: list[str], opened: list[str]) -> Settings:
    env = server.settings_env(SNOWFLAKE_PASSWORD="", SOPHIA_ESC_ENV="acme/sophia/prod", PULUMI_ACCESS_TOKEN="pul-x")
    return Settings(environ=env, esc_opener=rotating_esc(passwords, opened))


def test_a_rotated_password_is_picked_up_by_reopening_esc_once(server: FakeSnowflakeServer) -> None:
    opened: list[str] = []
    wh = SnowflakeWarehouse(esc_settings(server, ["stale-password", "rotated-password"], opened))
    with server.only_password("rotated-password"):
        assert wh.ping() == "Snowflake 10.0.0"
    wh.close()
    assert opened == ["stale-password", "rotated-password"]
    assert [login["PASSWORD"] for login in server.logins()] == ["stale-password", "rotated-password"]


def test_rejected_credentials_raise_an_auth_error_without_the_secret(server: FakeSnowflakeServer) -> None:
    opened: list[str] = []
    wh = SnowflakeWarehouse(esc_settings(server, ["still-wrong-password"], opened))
    with server.only_password("the-real-password"), pytest.raises(AuthError) as caught:
        wh.ping()
    assert len(server.logins()) == 2  # the first try, then one retry after re-opening ESC
    text = caught.value.agent_message()
    assert "still-wrong-password" not in text
    assert "Incorrect username or password" in text
    assert "SNOWFLAKE_PASSWORD" in caught.value.hint


def test_without_esc_a_rejected_password_is_not_retried(server: FakeSnowflakeServer) -> None:
    wh = SnowflakeWarehouse(Settings(environ=server.settings_env()))
    with server.only_password("something-else"), pytest.raises(AuthError):
        wh.ping()
    assert len(server.logins()) == 1


def test_programmatic_access_token_is_sent_with_its_authenticator(server: FakeSnowflakeServer) -> None:
    env = server.settings_env(SNOWFLAKE_PASSWORD="", SNOWFLAKE_TOKEN="pat-secret-value")
    wh = SnowflakeWarehouse(Settings(environ=env))
    wh.ping()
    wh.close()
    (login,) = server.logins()
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


def test_key_pair_auth_signs_the_login_jwt_with_the_decrypted_key(server: FakeSnowflakeServer, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    path, public_key = encrypted_key(tmp_path, b"correct horse")
    env = server.settings_env(
        SNOWFLAKE_PASSWORD="", SNOWFLAKE_PRIVATE_KEY_FILE=str(path), SNOWFLAKE_PRIVATE_KEY_PASSPHRASE="correct horse"
    )
    wh = SnowflakeWarehouse(Settings(environ=env))
    wh.ping()
    wh.close()

    (login,) = server.logins()
    assert login["AUTHENTICATOR"] == "SNOWFLAKE_JWT"
    header, payload, signature = login["TOKEN"].split(".")
    public_key.verify(b64url(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert json.loads(b64url(payload))["sub"] == "FAKESNOW.FAKE"


def test_a_wrong_passphrase_is_a_config_error_that_hides_the_passphrase(
    server: FakeSnowflakeServer, tmp_path: Path
) -> None:
    path, _ = encrypted_key(tmp_path, b"correct horse")
    env = server.settings_env(
        SNOWFLAKE_PASSWORD="", SNOWFLAKE_PRIVATE_KEY_FILE=str(path), SNOWFLAKE_PRIVATE_KEY_PASSPHRASE="battery staple"
    )
    with pytest.raises(ConfigError) as caught:
        SnowflakeWarehouse(Settings(environ=env)).ping()
    assert "battery staple" not in caught.value.agent_message()
    assert "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE" in caught.value.hint

    without = {k: v for k, v in env.items() if k != "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"}
    with pytest.raises(ConfigError, match="private key") as caught:
        SnowflakeWarehouse(Settings(environ=without)).ping()
    assert "set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE" in caught.value.hint

    missing = {**env, "SNOWFLAKE_PRIVATE_KEY_FILE": str(tmp_path / "nope.p8")}
    with pytest.raises(ConfigError) as caught:
        SnowflakeWarehouse(Settings(environ=missing)).ping()
    assert "SNOWFLAKE_PRIVATE_KEY_FILE" in caught.value.hint
    assert server.logins() == []


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SNOWFLAKE_USER": "u", "SNOWFLAKE_PASSWORD": "pw-1234"}, "SNOWFLAKE_ACCOUNT"),
        ({"SNOWFLAKE_ACCOUNT": "acme-prod", "SNOWFLAKE_USER": "u"}, "SNOWFLAKE_PASSWORD"),
        ({"SNOWFLAKE_ACCOUNT": "acme-prod", "SNOWFLAKE_PASSWORD": "pw-1234"}, "SNOWFLAKE_USER"),
        (
            {
                "SNOWFLAKE_ACCOUNT": "acme-prod",
                "SNOWFLAKE_USER": "u",
                "SNOWFLAKE_PASSWORD": "pw-1234",
                "SNOWFLAKE_PORT": "http",
            },
            "SNOWFLAKE_PORT",
        ),
    ],
)
def test_missing_or_invalid_settings_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SnowflakeWarehouse(Settings(environ=environ)).ping()
    assert named in caught.value.agent_message()
    assert "pw-1234" not in caught.value.agent_message()


def test_snowflake_is_chosen_by_account_or_connection_name() -> None:
    assert not snowflake_configured(Settings(environ={"SNOWFLAKE_USER": "u"}))
    assert snowflake_configured(Settings(environ={"SNOWFLAKE_ACCOUNT": "acme-prod"}))
    assert snowflake_configured(Settings(environ={"SNOWFLAKE_CONNECTION_NAME": "dev"}))


def test_connections_toml_connection_is_used_by_name(server: FakeSnowflakeServer, tmp_path: Path) -> None:
    toml = tmp_path / "connections.toml"
    toml.write_text(
        textwrap.dedent(
            f"""
            [dev]
            account = "fakesnow"
            user = "toml-user"
            password = "toml-password"
            host = "{server.host}"
            port = {server.port}
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
        print(SnowflakeWarehouse(Settings(environ={"SNOWFLAKE_CONNECTION_NAME": "dev"})).ping())
        try:
            SnowflakeWarehouse(Settings(environ={"SNOWFLAKE_CONNECTION_NAME": "nope"})).ping()
        except ConfigError as exc:
            print(exc.hint)
        """,
        {"SNOWFLAKE_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    version, hint = result.stdout.strip().splitlines()
    assert version == "Snowflake 10.0.0"
    assert "SNOWFLAKE_CONNECTION_NAME" in hint
    (login,) = server.logins()
    assert login["LOGIN_NAME"] == "toml-user"
    assert login["SESSION_PARAMETERS"]["MULTI_STATEMENT_COUNT"] == 1


def test_an_unreachable_account_is_a_backend_error_that_says_what_to_check() -> None:
    env = {
        "SNOWFLAKE_ACCOUNT": "acme-prod",
        "SNOWFLAKE_USER": "u",
        "SNOWFLAKE_PASSWORD": "pw-unreachable",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(free_port()),
        "SNOWFLAKE_PROTOCOL": "http",
    }
    with pytest.raises(BackendError) as caught:
        SnowflakeWarehouse(Settings(environ=env)).ping()
    assert type(caught.value) is BackendError
    assert "SNOWFLAKE_ACCOUNT" in caught.value.hint
    assert "pw-unreachable" not in caught.value.agent_message()
