"""A third-party MCP client (the MCP Inspector CLI, Node) lists and calls the BI tools over stdio."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sophia_business_intelligence.demo_data import load_demo_dataset
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow
INSPECTOR = REPO_ROOT / "node_modules" / ".bin" / "mcp-inspector"


@pytest.fixture(scope="module")
def inspector() -> Path:
    if not INSPECTOR.exists() or shutil.which("node") is None:
        message = "the MCP Inspector is not installed: run `npm install --no-package-lock` in the repo root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return INSPECTOR


def run_inspector(inspector: Path, warehouse: Path, *args: str) -> Any:
    done = subprocess.run(
        [
            str(inspector),
            "--cli",
            "-e",
            f"SOPHIA_DUCKDB_PATH={warehouse}",
            sys.executable,
            "-m",
            "sophia_business_intelligence.server",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    start = done.stdout.find("{")
    assert start >= 0, done.stdout + done.stderr
    return json.JSONDecoder().raw_decode(done.stdout[start:])[0]


def test_inspector_lists_and_calls_the_bi_tools(inspector: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    load_demo_dataset(warehouse)
    listed = run_inspector(inspector, warehouse, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert {"warehouse_query", "warehouse_list_tables", "warehouse_describe_table"} <= set(tools)
    assert tools["warehouse_query"]["annotations"]["readOnlyHint"] is True
    assert "outputSchema" in tools["warehouse_query"]

    called = run_inspector(
        inspector,
        warehouse,
        "--method",
        "tools/call",
        "--tool-name",
        "warehouse_query",
        "--tool-arg",
        "sql=SELECT OWNER, COUNT(*) AS DEALS FROM CRM.DEALS GROUP BY OWNER ORDER BY OWNER",
    )
    assert called.get("isError") is False
    rows = called["structuredContent"]["rows"]
    assert len(rows) == 5 and sum(int(r[1]) for r in rows) == 60

    refused = run_inspector(
        inspector,
        warehouse,
        "--method",
        "tools/call",
        "--tool-name",
        "warehouse_query",
        "--tool-arg",
        "sql=DROP TABLE CRM.DEALS",
    )
    assert refused.get("isError") is True
