"""`sophia bundle`: a .mcpb the official MCPB CLI validates, packs and reads, and that runs as Claude runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from sophia_cli.bundle import Bundle, build_bundle, manifest
from sophia_cli.servers import all_servers, find_server
from tests.conftest import REPO_ROOT

MCPB = REPO_ROOT / "node_modules" / ".bin" / "mcpb"
# Read before the suite's fixtures move HOME: the bundle's environment comes from the developer's uv cache.
UV = shutil.which("uv")
UV_CACHE = (
    subprocess.run([UV, "cache", "dir"], capture_output=True, text=True, check=False).stdout.strip() if UV else ""
)
SCHEMA = REPO_ROOT / "node_modules" / "@anthropic-ai" / "mcpb" / "schemas" / "mcpb-manifest-v0.4.schema.json"


@pytest.fixture(scope="module")
def mcpb() -> Path:
    if not MCPB.exists() or shutil.which("node") is None:
        message = "the MCPB CLI is not installed: run `npm install --no-package-lock` in the repo root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return MCPB


def run_mcpb(mcpb: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(mcpb), *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("entry", all_servers(), ids=lambda e: e.key)
def test_manifest_marks_secrets_sensitive_and_maps_every_field_to_the_env(entry: Any) -> None:
    data = manifest(entry, "0.1.0")
    assert data["manifest_version"] == "0.4" and data["name"] == entry.mcp_name
    assert data["server"]["type"] == "uv"
    fields, env = data["user_config"], data["server"]["mcp_config"]["env"]
    assert env == {key.upper(): "${user_config." + key + "}" for key in fields}
    secrets = {s.name for s in entry.spec.all_settings() if s.secret} | {"PULUMI_ACCESS_TOKEN"}
    assert {k.upper() for k, f in fields.items() if f.get("sensitive")} == secrets
    assert fields[entry.spec.write_gate.lower()]["type"] == "boolean"
    assert fields["sophia_data_dir"]["type"] == "directory"
    assert not any("base_url" in key for key in fields), "endpoint overrides are not install questions"
    assert all(f["required"] is False for f in fields.values()), "every server starts with zero keys"
    assert [t["name"] for t in data["tools"]] == [t.name for t in entry.spec.tools]


def test_manifest_matches_the_official_v04_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.exists():
        pytest.skip("the MCPB schemas come with `npm install --no-package-lock`")
    schema = json.loads(SCHEMA.read_text())
    for entry in all_servers():
        jsonschema.validate(manifest(entry, "0.1.0"), schema)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return build_bundle("data", tmp_path_factory.mktemp("dist"))


def test_bundle_holds_manifest_pinned_pyproject_wheels_and_entry_point(bundle: Bundle) -> None:
    with zipfile.ZipFile(bundle.archive) as zf:
        names = set(zf.namelist())
        pyproject = zf.read("pyproject.toml").decode()
        main = zf.read("server/main.py").decode()
    assert {"manifest.json", "pyproject.toml", "server/main.py"} <= names
    assert any(n.startswith("wheels/sophia_shared-") for n in names)
    assert any(n.startswith("wheels/sophia_data_intelligence-") for n in names)
    assert '"mcp==2.3.0",' in pyproject, "dependencies are pinned as in uv.lock"
    assert "from sophia_data_intelligence.server import main" in main


def test_official_cli_validates_packs_and_reads_the_bundle(mcpb: Path, bundle: Bundle, tmp_path: Path) -> None:
    validated = run_mcpb(mcpb, "validate", str(bundle.directory / "manifest.json"))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    packed = tmp_path / "packed.mcpb"
    done = run_mcpb(mcpb, "pack", str(bundle.directory), str(packed))
    assert done.returncode == 0 and packed.exists(), done.stdout + done.stderr
    info = run_mcpb(mcpb, "info", str(bundle.archive))
    assert info.returncode == 0 and "sophia-data-intelligence" in info.stdout, info.stdout + info.stderr
    unpacked = tmp_path / "unpacked"
    assert run_mcpb(mcpb, "unpack", str(bundle.archive), str(unpacked)).returncode == 0
    assert json.loads((unpacked / "manifest.json").read_text()) == bundle.manifest


def test_official_cli_rejects_a_manifest_we_break(mcpb: Path, bundle: Bundle, tmp_path: Path) -> None:
    broken = json.loads((bundle.directory / "manifest.json").read_text())
    broken["user_config"]["tavily_api_key"]["sensitive"] = "yes"
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(broken))
    refused = run_mcpb(mcpb, "validate", str(path))
    assert refused.returncode != 0, "the validation must be able to fail"


def blank_fields(config: dict[str, Any], left_as: str) -> dict[str, str]:
    """The env Claude Desktop hands the server when the install dialog's fields were all left blank:
    empty values, or (as reported for optional fields) the unexpanded `${user_config.x}` placeholders."""
    return {k: ("" if left_as == "empty" else v) for k, v in config["env"].items()}


def list_tools(command: str, args: list[str], env: dict[str, str], timeout: float) -> list[str]:
    async def listed() -> list[str]:
        params = StdioServerParameters(command=command, args=args, env=env)
        with anyio.fail_after(timeout):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                return [t.name for t in (await session.list_tools()).tools]

    return anyio.run(listed)


READ_TOOLS = {t.name for t in find_server("data").spec.tools if not t.writes}


@pytest.mark.parametrize("left_as", ["empty", "placeholder"])
def test_entry_point_drops_the_fields_claude_left_unfilled(bundle: Bundle, tmp_path: Path, left_as: str) -> None:
    """The bundle's server/main.py (here on this checkout's Python) starts with every field unfilled:
    a literal `${user_config.sophia_data_intelligence_tools}` allow-list would otherwise stop it."""
    config = bundle.manifest["server"]["mcp_config"]
    env = blank_fields(config, left_as)
    assert env["SOPHIA_DATA_INTELLIGENCE_TOOLS"] == (
        "" if left_as == "empty" else "${user_config.sophia_data_intelligence_tools}"
    )
    env.update(PATH=os.environ.get("PATH", ""), HOME=str(tmp_path))
    names = list_tools(sys.executable, [str(bundle.directory / "server" / "main.py")], env, 60)
    assert set(names) == READ_TOOLS


def test_entry_point_keeps_filled_fields_and_unsets_unfilled_ones(bundle: Bundle, tmp_path: Path) -> None:
    """The values the server sees: a filled field as given, a placeholder or an empty field not at all."""
    probe = tmp_path / "probe.py"
    main = (bundle.directory / "server" / "main.py").read_text()
    probe.write_text(
        main.split('if __name__ == "__main__":')[0]
        + ("import json, sys\ndrop_unfilled_settings(os.environ)\njson.dump(dict(os.environ), sys.stdout)\n")
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TAVILY_API_KEY": "${user_config.tavily_api_key}",
        "SOPHIA_DATA_DIR": " ${user_config.sophia_data_dir} ",
        "SOPHIA_DATA_INTELLIGENCE_TOOLS": "",
        "SOPHIA_ESC_ENV": "acme/sophia/prod",
        "OTHER": "",
    }
    done = subprocess.run([sys.executable, str(probe)], env=env, capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    seen.pop("PATH")
    seen.pop("LC_CTYPE", None)  # some Pythons set it at startup
    assert seen == {"SOPHIA_ESC_ENV": "acme/sophia/prod", "OTHER": ""}, "only offered fields are dropped when empty"


@pytest.mark.slow
@pytest.mark.parametrize("left_as", ["empty", "placeholder"])
def test_unpacked_bundle_runs_as_claude_desktop_launches_it(bundle: Bundle, tmp_path: Path, left_as: str) -> None:
    """`uv run --directory <bundle> server/main.py` (offline, from uv's cache) answers tools/list, with
    the install dialog's fields left blank (empty, or as unexpanded placeholders)."""
    uv = UV
    if uv is None:
        pytest.skip("uv is not on PATH")
    unpacked = tmp_path / "installed"
    with zipfile.ZipFile(bundle.archive) as zf:
        zf.extractall(unpacked)
    config = bundle.manifest["server"]["mcp_config"]
    args = [a.replace("${__dirname}", str(unpacked)) for a in config["args"]]
    env = blank_fields(config, left_as)
    env.update(PATH=os.environ.get("PATH", ""), HOME=str(tmp_path), UV_PYTHON=sys.executable, UV_CACHE_DIR=UV_CACHE)
    env.update({k: v for k, v in os.environ.items() if k.startswith(("UV_", "SSL_CERT_")) and k != "UV_CACHE_DIR"})
    assert set(list_tools(uv, args, env, 240)) == READ_TOOLS
