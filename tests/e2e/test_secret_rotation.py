"""Rotation without restart: the data server runs over stdio on a key from Pulumi ESC; the key is rotated
with `sophia secrets export --apply` while it runs, and the next tool call uses the new key."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import sophia_cli.main as cli_main
from sophia_cli.client import connect, result_text
from sophia_cli.servers import find_server
from tests.fakes.esc_server import VALID_TOKEN, Secret, run_fake_esc
from tests.fakes.tavily import FakeTavily
from tests.fakes.vendor_app import serve

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REF = "acme/sophia/prod"
OLD_KEY = "tvly-old-rotation-canary-01"
NEW_KEY = "tvly-new-rotation-canary-02"


async def test_a_key_rotated_in_esc_is_used_by_the_running_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_esc_cli_or_proxy: None
) -> None:
    tavily = FakeTavily(keys=(OLD_KEY,))
    with run_fake_esc() as esc, serve(tavily) as tavily_url:
        esc.put_environment(REF, {"data_intelligence": {"tavily-api-key": Secret(OLD_KEY)}})
        env = {
            "SOPHIA_DATA_DIR": str(tmp_path),
            "SOPHIA_ESC_ENV": REF,
            "PULUMI_ACCESS_TOKEN": VALID_TOKEN,
            "PULUMI_BACKEND_URL": esc.url,
            "SOPHIA_TAVILY_BASE_URL": tavily_url,
            "SOPHIA_LOG_LEVEL": "INFO",
        }
        log_path = tmp_path / "server.log"
        with log_path.open("w", encoding="utf-8") as errlog:
            async with connect(find_server("data"), env, quiet=False, errlog=errlog) as client:
                before = await client.call_tool("web_search", {"query": "acme pricing"})

                # The weekly sync runs: the new key goes into ESC; the vendor stops taking the old one.
                monkeypatch.setenv("PULUMI_ACCESS_TOKEN", VALID_TOKEN)
                monkeypatch.setenv("PULUMI_BACKEND_URL", esc.url)
                monkeypatch.setattr(
                    cli_main, "COMMAND_MODULES", tuple(dict.fromkeys((*cli_main.COMMAND_MODULES, "secrets")))
                )
                monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"TAVILY_API_KEY": NEW_KEY})))
                exported = cli_main.main(["secrets", "export", "--from-json", "-", "--apply", REF])
                said = capsys.readouterr()
                tavily.keys = {NEW_KEY}
                opens_before_call = esc.open_count(REF)  # the server's first open + export's comparison

                after = await client.call_tool("web_search", {"query": "acme pricing"})
    assert not before.is_error, result_text(before)
    assert exported == 0, said.err
    assert not after.is_error, result_text(after)
    used = [call.headers.get("authorization") for call in tavily.calls if call.path == "/search"]
    assert used == [f"Bearer {OLD_KEY}", f"Bearer {OLD_KEY}", f"Bearer {NEW_KEY}"]  # rejected once, re-opened
    assert esc.open_count(REF) == opens_before_call + 1  # the running server re-opened ESC: no restart
    log = log_path.read_text(encoding="utf-8")
    assert "re-opened Pulumi ESC" in log
    for text in (result_text(before), result_text(after), log, said.out, said.err):
        assert OLD_KEY not in text and NEW_KEY not in text
