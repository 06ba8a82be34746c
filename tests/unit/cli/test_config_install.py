"""`sophia config … --install` merges into the client's real file; the docker variant references secrets."""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from sophia_cli import config as config_command
from sophia_cli.config import client_config
from sophia_cli.install import install, target_path
from sophia_shared.errors import InputError

OURS = {"sophia-business-intelligence", "sophia-ai-intelligence", "sophia-data-intelligence", "sophia-infrastructure"}


def sophia_config(*argv: str) -> int:
    """The `config` command exactly as `sophia` registers it."""
    parser = argparse.ArgumentParser(prog="sophia")
    config_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["config", *argv])
    return int(args.handler(args))


def other_servers_file(path: Path) -> dict[str, Any]:
    existing = {
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "github": {"command": "npx", "args": ["-y", "gh-mcp"], "env": {"GITHUB_TOKEN": "ghp-inlined-by-the-user"}},
            "sophia-infrastructure": {"command": "old-sophia-infrastructure", "args": []},
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(existing, indent=4), encoding="utf-8")
    return existing


def test_install_creates_the_file_with_every_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new" / ".cursor" / "mcp.json"
    assert sophia_config("cursor", "--install", "--config-path", str(target)) == 0
    written = json.loads(target.read_text())
    assert set(written["mcpServers"]) == OURS
    assert written == client_config("cursor")
    assert not list(target.parent.glob("*.bak"))
    assert "added: sophia-business-intelligence" in capsys.readouterr().out


def test_install_merges_keeps_other_servers_backs_up_and_is_idempotent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "claude_desktop_config.json"
    existing = other_servers_file(target)
    original = target.read_bytes()

    assert sophia_config("claude", "--install", "--config-path", str(target)) == 0
    written = json.loads(target.read_text())
    assert written["globalShortcut"] == "Ctrl+Space"
    assert written["mcpServers"]["github"] == existing["mcpServers"]["github"]
    assert (
        written["mcpServers"]["sophia-infrastructure"] == client_config("claude")["mcpServers"]["sophia-infrastructure"]
    )
    assert set(written["mcpServers"]) >= OURS
    backups = list(tmp_path.glob("claude_desktop_config.json.*.bak"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    out = capsys.readouterr().out
    assert "updated: sophia-infrastructure" in out and "other servers left as they were: github" in out

    after_first = target.read_bytes()
    assert sophia_config("claude", "--install", "--config-path", str(target)) == 0
    assert target.read_bytes() == after_first
    assert len(list(tmp_path.glob("*.bak"))) == 1, "an unchanged file is neither written nor backed up"
    assert "already up to date" in capsys.readouterr().out


def test_dry_run_shows_the_diff_writes_nothing_and_masks_inlined_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mcp.json"
    other_servers_file(target)
    before = target.read_bytes()
    assert sophia_config("cursor", "--install", "--dry-run", "--config-path", str(target)) == 0
    out = capsys.readouterr().out
    assert target.read_bytes() == before and not list(tmp_path.glob("*.bak"))
    assert f"+++ {target}" in out
    assert '+    "sophia-business-intelligence": {' in out
    assert '-      "command": "old-sophia-infrastructure",' in out
    assert "ghp-inlined-by-the-user" not in out, "another server's inlined token must not be echoed"
    assert "(dry run:" in out


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"mcpServers": {"github": {}},}', "not valid JSON"),
        ("[1, 2]", "JSON list, not an object"),
        ('{"mcpServers": []}', '"mcpServers" in'),
    ],
)
def test_a_malformed_config_is_refused_and_left_untouched(tmp_path: Path, content: str, problem: str) -> None:
    target = tmp_path / "mcp.json"
    target.write_text(content)
    with pytest.raises(InputError, match="nothing was written") as caught:
        install(target, client_config("cursor"))
    assert problem in caught.value.message
    assert target.read_text() == content
    assert list(tmp_path.iterdir()) == [target]


def test_config_files_are_found_where_each_client_reads_them(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    assert target_path("cursor", home=home) == home / ".cursor" / "mcp.json"
    assert target_path("cursor", scope="project", home=home, cwd=project) == project / ".cursor" / "mcp.json"
    mac = target_path("claude", platform="darwin", home=home, environ={})
    assert mac == home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    windows = target_path("claude", platform="win32", home=home, environ={"APPDATA": str(tmp_path / "Roaming")})
    assert windows == tmp_path / "Roaming" / "Claude" / "claude_desktop_config.json"
    linux = target_path("claude", platform="linux", home=home, environ={})
    assert linux == home / ".config" / "Claude" / "claude_desktop_config.json"
    with pytest.raises(InputError, match="APPDATA"):
        target_path("claude", platform="win32", home=home, environ={})
    with pytest.raises(InputError, match="Cursor only"):
        target_path("claude", scope="project")


def test_project_scope_writes_into_the_current_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sophia_config("cursor", "--install", "--scope", "project", "--docker") == 0
    written = json.loads((tmp_path / ".cursor" / "mcp.json").read_text())
    assert written["mcpServers"]["sophia-infrastructure"]["command"] == "docker"


def test_install_options_without_install_are_refused() -> None:
    with pytest.raises(InputError, match="only apply to --install"):
        sophia_config("cursor", "--dry-run")


SECRETS = {"SNOWFLAKE_PASSWORD": "hunter2-snowflake-pw", "LAMBDA_API_KEY": "secret_lambda_key_value"}


@pytest.mark.parametrize("client", ["cursor", "claude"])
@pytest.mark.parametrize("variant", [[], ["--uv"], ["--docker"]])
def test_installed_configs_never_hold_a_secret_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: str, variant: list[str]
) -> None:
    for name, value in {**SECRETS, "PULUMI_ACCESS_TOKEN": "pul-0123456789abcdef"}.items():
        monkeypatch.setenv(name, value)
    target = tmp_path / "config.json"
    assert sophia_config(client, *variant, "--install", "--config-path", str(target)) == 0
    text = target.read_text()
    assert not [v for v in [*SECRETS.values(), "pul-0123456789abcdef"] if v in text]


def test_docker_variant_passes_secrets_by_reference_in_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_API_KEY", SECRETS["LAMBDA_API_KEY"])
    monkeypatch.setenv("SOPHIA_INFRASTRUCTURE_ALLOW_WRITE", "1")
    server = client_config("cursor", docker=True)["mcpServers"]["sophia-infrastructure"]
    args = server["args"]
    assert server["command"] == "docker" and args[:3] == ["run", "-i", "--rm"]
    assert args[-1] == "sophia/infrastructure:latest"
    passed = {args[i + 1] for i, a in enumerate(args) if a == "-e"}
    assert passed == {"LAMBDA_API_KEY", "PULUMI_ACCESS_TOKEN", "SOPHIA_INFRASTRUCTURE_ALLOW_WRITE"}
    assert server["env"] == {
        "LAMBDA_API_KEY": "${env:LAMBDA_API_KEY}",
        "PULUMI_ACCESS_TOKEN": "${env:PULUMI_ACCESS_TOKEN}",
        "SOPHIA_INFRASTRUCTURE_ALLOW_WRITE": "1",
    }
    assert all("=" not in args[i + 1] for i, a in enumerate(args) if a == "-e"), "values never in args"


def test_docker_variant_reads_secrets_from_an_env_file_in_claude(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / "sophia.env"
    monkeypatch.setenv("SOPHIA_DOTENV", str(dotenv))
    monkeypatch.setenv("LAMBDA_API_KEY", SECRETS["LAMBDA_API_KEY"])
    server = client_config("claude", docker=True)["mcpServers"]["sophia-infrastructure"]
    args = server["args"]
    assert args[args.index("--env-file") + 1] == str(dotenv)
    assert "LAMBDA_API_KEY" not in server["env"] and "LAMBDA_API_KEY" not in args
    assert any("create " + str(dotenv) in note for note in config_command.docker_notes("claude"))
    dotenv.write_text("LAMBDA_API_KEY=x\n")
    assert not any("--env-file" in note for note in config_command.docker_notes("claude"))


def test_docker_variant_mounts_the_data_dir_and_drops_host_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bi = client_config("claude", docker=True)["mcpServers"]["sophia-business-intelligence"]["args"]
    assert bi[bi.index("-v") + 1] == "sophia-data:/data", "a named volume by default"
    monkeypatch.setenv("SOPHIA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SOPHIA_DUCKDB_PATH", str(tmp_path / "wh.duckdb"))
    server = client_config("claude", docker=True)["mcpServers"]["sophia-business-intelligence"]
    args = server["args"]
    assert args[args.index("-v") + 1] == f"{tmp_path / 'data'}:/data"
    assert "SOPHIA_DUCKDB_PATH" not in server["env"] and "SOPHIA_DATA_DIR" not in server["env"]
    notes = config_command.docker_notes("claude")
    assert any("SOPHIA_DUCKDB_PATH" in note for note in notes)
    others = client_config("claude", docker=True)["mcpServers"]["sophia-ai-intelligence"]["args"]
    assert "-v" not in others, "only the BI image has a data volume"


CANARY = "canary-7d1e0b"


def credentials_everywhere_file(path: Path) -> None:
    """Other servers holding credentials in every shape a client config allows, and one of ours edited by hand."""
    existing = {
        "mcpServers": {
            "github": {
                "command": "npx",
                "args": ["-y", "gh-mcp", "--token", f"{CANARY}-arg", f"--api-key={CANARY}-eq"],
                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": f"{CANARY}-gh", "MY_SETTING": f"{CANARY}-plain"},
            },
            "remote": {
                "url": f"https://mcp.example.com/sse?api_key={CANARY}-query",
                "headers": {"Authorization": f"Bearer {CANARY}-hdr", "X-Custom": f"{CANARY}-xhdr"},
            },
            "sophia-data-intelligence": {
                "command": "custom",
                "args": ["--password", f"{CANARY}-ours-arg"],
                "env": {
                    "TAVILY_API_KEY": f"{CANARY}-ours",
                    "SOPHIA_TAVILY_BASE_URL": f"https://u:{CANARY}-userinfo@proxy.example/v1",
                },
                "headers": {"Authorization": f"Bearer {CANARY}-ours-hdr"},
            },
        },
        "otherSetting": {"a": 1},
    }
    path.write_text(json.dumps(existing, indent=2), encoding="utf-8")


def test_dry_run_shows_only_our_entries_and_masks_credentials_in_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mcp.json"
    credentials_everywhere_file(target)
    assert sophia_config("cursor", "--install", "--dry-run", "--config-path", str(target)) == 0
    out = capsys.readouterr().out
    assert CANARY not in out, "no credential of any server, in any shape, is shown"
    assert '"github"' not in out and '"remote"' not in out, "other servers' entries are not in the diff"
    assert "2 other server(s) unchanged" in out
    assert '-      "command": "custom",' in out and '+    "sophia-business-intelligence": {' in out
    assert '"SOPHIA_TAVILY_BASE_URL": "https://********@proxy.example/v1"' in out
    assert '"--password",' in out and out.count("********") >= 4


def test_backup_and_new_file_are_owner_only_and_an_existing_mode_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "mcp.json"
    other_servers_file(target)
    os.chmod(target, 0o600)
    old_umask = os.umask(0o022)
    try:
        outcome = install(target, client_config("cursor"))
        fresh = install(tmp_path / "fresh" / "mcp.json", client_config("cursor"))
    finally:
        os.umask(old_umask)
    assert outcome.backup is not None
    assert stat.S_IMODE(outcome.backup.stat().st_mode) == 0o600, "the backup holds another server's token"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(fresh.path.stat().st_mode) == 0o600

    group_readable = tmp_path / "shared.json"
    other_servers_file(group_readable)
    os.chmod(group_readable, 0o640)
    shared = install(group_readable, client_config("cursor"))
    assert stat.S_IMODE(group_readable.stat().st_mode) == 0o640, "the user's chosen mode is kept"
    assert shared.backup is not None and stat.S_IMODE(shared.backup.stat().st_mode) == 0o600


def test_install_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "mcp.json"
    real.parent.mkdir()
    other_servers_file(real)
    link = tmp_path / ".cursor" / "mcp.json"
    link.parent.mkdir()
    link.symlink_to(os.path.relpath(real, link.parent))
    outcome = install(link, client_config("cursor"))
    assert link.is_symlink(), "the link is left in place"
    assert set(json.loads(real.read_text())["mcpServers"]) >= OURS | {"github"}
    assert outcome.backup is not None and outcome.backup.parent == real.parent
    assert sorted(p.name for p in link.parent.iterdir()) == ["mcp.json"], "nothing written beside the link"


def test_a_read_only_config_is_refused_even_for_root(tmp_path: Path) -> None:
    target = tmp_path / "mcp.json"
    other_servers_file(target)
    os.chmod(target, 0o444)
    before = target.read_bytes()
    with pytest.raises(InputError, match="read-only") as caught:
        install(target, client_config("cursor"))
    assert "nothing was written" in caught.value.message and "chmod u+w" in (caught.value.hint or "")
    assert target.read_bytes() == before and stat.S_IMODE(target.stat().st_mode) == 0o444
    assert list(tmp_path.iterdir()) == [target], "no backup either"


def test_a_url_with_credentials_is_not_inlined_and_a_note_says_where_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOPHIA_TAVILY_BASE_URL", f"https://user:{CANARY}@proxy.example/v1")
    monkeypatch.setenv("SOPHIA_DATA_DIR", str(tmp_path / "data"))
    for variant in ([], ["--docker"]):
        assert sophia_config("claude", *variant) == 0
        captured = capsys.readouterr()
        assert CANARY not in captured.out + captured.err
        data = json.loads(captured.out)["mcpServers"]["sophia-data-intelligence"]
        assert "SOPHIA_TAVILY_BASE_URL" not in data["env"] and "SOPHIA_TAVILY_BASE_URL" not in data["args"]
        assert "the URL holds credentials: SOPHIA_TAVILY_BASE_URL" in captured.err
    assert client_config("cursor")["mcpServers"]["sophia-data-intelligence"]["env"]["SOPHIA_DATA_DIR"]
    monkeypatch.setenv("SOPHIA_TAVILY_BASE_URL", "https://proxy.example/v1?region=eu")
    assert "SOPHIA_TAVILY_BASE_URL" in client_config("cursor")["mcpServers"]["sophia-data-intelligence"]["env"]


def test_docker_variant_warns_about_quoted_and_exported_dotenv_lines_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dotenv = tmp_path / "sophia.env"
    dotenv.write_text(
        f'# comment\nTAVILY_API_KEY="{CANARY}-q"\nexport SNOWFLAKE_PASSWORD={CANARY}-x\n'
        f"PINECONE_API_KEY='{CANARY}-s'\nLAMBDA_API_KEY={CANARY}-plain\n"
    )
    monkeypatch.setenv("SOPHIA_DOTENV", str(dotenv))
    for client in ("cursor", "claude"):
        assert sophia_config(client, "--docker") == 0
        err = capsys.readouterr().err
        assert CANARY not in err
        assert "quoted values (TAVILY_API_KEY, PINECONE_API_KEY)" in err
        assert "`export` lines (SNOWFLAKE_PASSWORD)" in err and "KEY=value" in err
        assert "LAMBDA_API_KEY" not in err
    assert sophia_config("claude") == 0
    assert "docker" not in capsys.readouterr().err, "the uv path reads the .env with python-dotenv: no warning"
    dotenv.write_text(f"TAVILY_API_KEY={CANARY}\n")
    assert sophia_config("claude", "--docker") == 0
    assert "KEY=value" not in capsys.readouterr().err
