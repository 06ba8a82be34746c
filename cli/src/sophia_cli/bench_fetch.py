"""Throughput of the built-in fetch on a realistic local page: HTTP, the SSRF policy and extraction (part of
`sophia bench`). The page is served on 127.0.0.1, opened through the fetch allow-list like a private host."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio

from sophia_data_intelligence.fetch import AllowList, Fetcher, FetchLimits, extract

_PARAGRAPHS = (
    "Teams that ship in small batches find their mistakes while they are still cheap. A change of fifty lines "
    "can be reviewed in minutes, reasoned about completely, and reverted without drama.",
    "Large releases hide their defects among each other. When a release bundles three months of work, the first "
    "incident report starts an archaeology project instead of a fix.",
    "Every deployment is an experiment with real users. Small batches mean more experiments per week, and each "
    'one teaches the team something. The <a href="https://research.example.org/study">study</a> agrees.',
)


def bench_page(sections: int = 36) -> bytes:
    """A news-style article (about 35 KiB): navigation, ads, sections with lists and a table, a footer."""
    nav = "".join(f'<li><a href="/topic/{n}">Topic {n}</a></li>' for n in range(40))
    body = []
    for n in range(sections):
        paragraphs = "".join(f"<p>{p}</p>" for p in _PARAGRAPHS)
        body.append(
            f"<h2>Section {n}: what we learned</h2>{paragraphs}"
            "<ul><li>Reviews are faster.</li><li>Rollbacks are routine.</li><li>Data settles debates.</li></ul>"
            f"<table><tr><th>Metric</th><th>Before</th><th>After</th></tr><tr><td>Lead time {n}</td>"
            "<td>14 days</td><td>2 days</td></tr><tr><td>Failure rate</td><td>18%</td><td>6%</td></tr></table>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Why Small Batches Win</title>'
        '<meta name="author" content="Priya Raman"><meta property="article:published_time" content="2024-05-14">'
        f'</head><body><header><nav><ul>{nav}</ul></nav></header><aside class="ad">Buy MegaCloud credits</aside>'
        f"<main><article><h1>Why Small Batches Win</h1>{''.join(body)}</article></main>"
        '<div class="advertisement">Try ShinyWidgets Pro</div><footer>Copyright 2024. All rights reserved.</footer>'
        "</body></html>"
    ).encode()


@contextmanager
def _serve(page: bytes) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            found = self.path == "/article"
            body = page if found else b"not found"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8" if found else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def fetch_throughput(pages: int = 200) -> dict[str, float]:
    """Pages per second fetched and extracted one after another through the real fetcher, and where the time goes."""
    if pages < 1:
        raise ValueError("pages must be at least 1")
    page = bench_page()
    with _serve(page) as port:
        return anyio.run(_measure, port, page, pages)


async def _measure(port: int, page: bytes, pages: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/article"
    fetcher = Fetcher(FetchLimits(allow=AllowList.parse(f"127.0.0.1:{port}")))
    try:
        await fetcher.document(url)  # warm-up: robots.txt, the connection, trafilatura's first import
        started = time.perf_counter()
        for _ in range(pages):
            await fetcher.document(url)
        total = time.perf_counter() - started
        extract_ms = []
        for _ in range(min(pages, 20)):
            begun = time.perf_counter()
            extract(page, "text/html", "utf-8", url)
            extract_ms.append((time.perf_counter() - begun) * 1000)
    finally:
        await fetcher.aclose()
    return {
        "pages_per_second": pages / total,
        "ms_per_page": total * 1000 / pages,
        "extract_ms": statistics.median(extract_ms),
        "page_kib": len(page) / 1024,
    }


if __name__ == "__main__":
    figures = fetch_throughput()
    print(
        f"built-in fetch (local {figures['page_kib']:.0f} KiB article)  {figures['pages_per_second']:6.1f} pages/s   "
        f"{figures['ms_per_page']:.1f} ms each   (extraction {figures['extract_ms']:.1f} ms)"
    )
