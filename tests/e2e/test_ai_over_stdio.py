"""The AI server spawned over stdio as a client runs it: tools listed, offline tools answer, an LLM call
without a reachable gateway fails clearly, and no key leaks into results or logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sophia_cli.client import connect, result_text
from sophia_cli.servers import find_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
KEY = "sk-live-openai-7f3a9c2e4b1d8f6a0c5e"


async def test_ai_server_over_stdio_answers_offline_and_never_leaks_a_key(tmp_path: Path) -> None:
    env = {
        "SOPHIA_DATA_DIR": str(tmp_path),
        "OPENAI_API_KEY": KEY,
        "SOPHIA_PORTKEY_BASE_URL": "http://127.0.0.1:9/v1",  # nothing listens there
        "SOPHIA_LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "server.log"
    with log_path.open("w", encoding="utf-8") as errlog:
        async with connect(find_server("ai"), env, quiet=False, errlog=errlog) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            estimate = await client.call_tool("llm_estimate", {"prompt": "hello there", "models": ["gpt-4o-mini"]})
            chat = await client.call_tool("llm_chat", {"prompt": f"repeat {KEY}", "model": "gpt-4o-mini"})
            routing = await client.call_tool("llm_routing", {})
    assert {"llm_chat", "llm_compare", "llm_usage", "llm_routing"} <= names
    assert not estimate.is_error
    assert chat.is_error and "SOPHIA_PORTKEY_BASE_URL" in result_text(chat)
    assert not routing.is_error
    for text in (result_text(estimate), result_text(chat), result_text(routing), str(routing.structured_content)):
        assert KEY not in text
    log = log_path.read_text(encoding="utf-8")
    assert "llm_chat" in log  # the server did log the failure, just never the key
    assert KEY not in log
