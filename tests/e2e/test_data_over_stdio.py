"""The data server spawned over stdio: a lead list against the Tavily fake, a local page read through the
allow-list, an internal address refused, and no key in results or logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sophia_cli.client import connect, result_text
from sophia_cli.servers import find_server
from tests.fakes.tavily import VALID_KEY, FakeTavily
from tests.fakes.vendor_app import serve
from tests.fakes.web_pages import LocalWeb, Route

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_data_server_over_stdio(tmp_path: Path) -> None:
    web = LocalWeb().start()
    web.routes["/about"] = Route(
        b"<html><head><title>About Acme</title></head><body><nav>menu</nav><main><h1>About</h1>"
        b"<p>Acme builds enterprise software for data teams in Berlin, Germany, with 300 employees.</p>"
        b"</main><footer>legal</footer></body></html>"
    )
    try:
        with serve(FakeTavily()) as tavily:
            env = {
                "SOPHIA_DATA_DIR": str(tmp_path),
                "TAVILY_API_KEY": VALID_KEY,
                "SOPHIA_TAVILY_BASE_URL": tavily,
                "SOPHIA_FETCH_ALLOW_HOSTS": web.host,
                "SOPHIA_LOG_LEVEL": "INFO",
            }
            log_path = tmp_path / "server.log"
            with log_path.open("w", encoding="utf-8") as errlog:
                async with connect(find_server("data"), env, quiet=False, errlog=errlog) as client:
                    leads = await client.call_tool(
                        "leads_find", {"description": "enterprise software Germany", "fetch_sites": False}
                    )
                    page = await client.call_tool("web_fetch", {"url": web.url("/about")})
                    refused = await client.call_tool("web_fetch", {"url": "http://169.254.169.254/latest/meta-data/"})
    finally:
        web.stop()
    assert not leads.is_error, result_text(leads)
    domains = [lead["domain"] for lead in leads.structured_content["leads"]]
    assert domains and len(domains) == len(set(domains))
    assert not page.is_error and "enterprise software for data teams" in result_text(page)
    assert refused.is_error and "SOPHIA_FETCH_ALLOW_HOSTS" in result_text(refused)
    log = log_path.read_text(encoding="utf-8")
    for text in (result_text(leads), result_text(page), result_text(refused), log):
        assert VALID_KEY not in text
