"""`sophia inspect`: the Inspector command line it builds, the settings it hands over, secrets kept off argv."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from sophia_cli import inspect as inspect_command
from sophia_cli.inspect import secrets_file, server_environment
from sophia_cli.servers import find_server
from sophia_shared.sources import read_dotenv
from tests.conftest import REPO_ROOT

INSPECTOR = REPO_ROOT / "node_modules" / ".bin" / "mcp-inspector"
SECRET = 'pw-with "quotes" and \\ backslash'


def sophia_inspect(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="sophia")
    inspect_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["inspect", *argv])
    return int(args.handler(args))


def test_server_gets_its_own_settings_split_into_plain_and_secret(tmp_path: Path) -> None:
    environ = {
        "SOPHIA_DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
        "SNOWFLAKE_PASSWORD": SECRET,
        "SNOWFLAKE_ACCOUNT": "acme-xy123",
        "SOPHIA_LOG_LEVEL": "DEBUG",
        "PULUMI_ACCESS_TOKEN": "pul-abc",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "LAMBDA_API_KEY": "another server's key",
        "OPENAI_API_KEY": "another server's key",
        "SOPHIA_DOTENV": str(tmp_path / "mine.env"),
        "PATH": "/usr/bin",
    }
    env = server_environment(find_server("bi"), environ)
    assert env.plain == {
        "SOPHIA_DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
        "SNOWFLAKE_ACCOUNT": "acme-xy123",
        "SOPHIA_LOG_LEVEL": "DEBUG",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }
    assert env.secrets == {"SNOWFLAKE_PASSWORD": SECRET, "PULUMI_ACCESS_TOKEN": "pul-abc"}


def test_print_shows_the_command_and_secret_names_never_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOPHIA_DUCKDB_PATH", str(tmp_path / "wh.duckdb"))
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", SECRET)
    assert sophia_inspect("bi", "--print") == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert "mcp-inspector --web -e " in first
    assert f"-e SOPHIA_DUCKDB_PATH={tmp_path / 'wh.duckdb'}" in first
    assert "-m sophia_business_intelligence.server" in first
    assert "SOPHIA_DOTENV=" in first
    assert "SNOWFLAKE_PASSWORD" in out and "quotes" not in out


def test_print_passes_method_and_tool_arguments_to_the_inspector_cli(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("infra", "--cli", "--print", "--method", "tools/call", "--tool-name", "gpu_types", "--tool-arg", "gpu=A10")
    assert sophia_inspect(*argv) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert " --cli " in first
    assert first.endswith(
        "-m sophia_infrastructure.server --method tools/call --tool-name gpu_types --tool-arg gpu=A10"
    )


def test_method_without_cli_and_a_bad_tool_arg_are_clear_errors() -> None:
    from sophia_shared.errors import InputError

    with pytest.raises(InputError, match="drive the Inspector's command line"):
        sophia_inspect("bi", "--method", "tools/list", "--print")
    with pytest.raises(InputError, match="not KEY=VALUE"):
        sophia_inspect("bi", "--cli", "--method", "tools/call", "--tool-arg", "schema", "--print")


def test_secrets_file_is_private_readable_as_dotenv_and_removed(tmp_path: Path) -> None:
    mine = tmp_path / "mine.env"
    mine.write_text("TAVILY_API_KEY=from-dotenv\nSNOWFLAKE_PASSWORD=overridden\n")
    with secrets_file({"SNOWFLAKE_PASSWORD": SECRET, "MULTI": "a\nb"}, mine) as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        values = read_dotenv(path).values
        assert values["SNOWFLAKE_PASSWORD"] == SECRET, "an exported secret wins over the .env's"
        assert values["TAVILY_API_KEY"] == "from-dotenv"
        assert values["MULTI"] == "a\nb"
    assert not path.exists()


def test_unknown_server_is_a_clear_error() -> None:
    from sophia_shared.errors import InputError

    with pytest.raises(InputError, match="no server called 'nope'"):
        sophia_inspect("nope", "--print")


@pytest.fixture
def inspector() -> Path:
    if not INSPECTOR.exists() or shutil.which("node") is None:
        message = "the MCP Inspector is not installed: run `npm install --no-package-lock` in the repo root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return INSPECTOR


def _json_out(text: str) -> dict[str, object]:
    start = text.find("{")
    assert start >= 0, text
    found: dict[str, object] = json.JSONDecoder().raw_decode(text[start:])[0]
    return found


@pytest.mark.slow
def test_inspector_cli_reaches_the_server_with_its_settings(
    inspector: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from sophia_business_intelligence.demo_data import load_demo_dataset

    warehouse = tmp_path / "wh.duckdb"
    load_demo_dataset(warehouse)
    mine = tmp_path / "mine.env"
    mine.write_text("SOPHIA_MEMORY_ALLOW_WRITE=1\n")  # only in the user's .env: reaches the server via the copy
    monkeypatch.setenv("SOPHIA_DOTENV", str(mine))
    monkeypatch.setenv("SOPHIA_DUCKDB_PATH", str(warehouse))
    monkeypatch.chdir(tmp_path)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))

    assert sophia_inspect("bi", "--cli", "--method", "tools/list") == 0
    names = {t["name"] for t in _json_out(capfd.readouterr().out)["tools"]}  # type: ignore[attr-defined]
    assert "memory_remember" in names, "the user's .env reached the server"
    assert "warehouse_execute" not in names

    args = ["--method", "tools/call", "--tool-name", "warehouse_list_tables", "--tool-arg", "schema=CRM"]
    assert sophia_inspect("bi", "--cli", *args) == 0
    called = _json_out(capfd.readouterr().out)
    assert called.get("isError") is False
    assert "DEALS" in json.dumps(called["structuredContent"]), "the exported SOPHIA_DUCKDB_PATH reached the server"
    assert not list(private_tmp.iterdir()), "the temporary .env is removed when the Inspector exits"


def test_undeclared_vendor_variables_and_url_credentials_go_through_the_file(tmp_path: Path) -> None:
    environ = {
        "APIFY_PAT": "apify-canary",  # the vendor's prefix, not a declared setting: may be a key
        "TAVILY_SOMETHING_NEW": "tavily-canary",
        "SOPHIA_TAVILY_BASE_URL": "https://u:url-canary@proxy.example/v1",
        "SOPHIA_ZENROWS_BASE_URL": "https://proxy.example/v1?apikey=query-canary",
        "SOPHIA_DATA_DIR": str(tmp_path / "data"),
        "SOPHIA_APIFY_BASE_URL": "https://proxy.example/v2",
    }
    env = server_environment(find_server("data"), environ)
    assert env.plain == {
        "SOPHIA_DATA_DIR": str(tmp_path / "data"),
        "SOPHIA_APIFY_BASE_URL": "https://proxy.example/v2",
    }
    assert set(env.secrets) == {
        "APIFY_PAT",
        "TAVILY_SOMETHING_NEW",
        "SOPHIA_TAVILY_BASE_URL",
        "SOPHIA_ZENROWS_BASE_URL",
    }


def test_print_never_shows_a_vendor_variable_or_url_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APIFY_PAT", "apify-canary")
    monkeypatch.setenv("SOPHIA_TAVILY_BASE_URL", "https://u:url-canary@proxy.example/v1")
    monkeypatch.setenv("SOPHIA_DATA_DIR", str(tmp_path / "data"))
    assert sophia_inspect("data", "--print") == 0
    out = capsys.readouterr().out
    assert "canary" not in out
    assert f"-e SOPHIA_DATA_DIR={tmp_path / 'data'}" in out
    assert "APIFY_PAT" in out.splitlines()[1] and "SOPHIA_TAVILY_BASE_URL" in out.splitlines()[1]
