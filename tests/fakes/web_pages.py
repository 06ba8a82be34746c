"""Realistic pages and a local HTTP server for the built-in fetch's tests and bench.

The server runs in a thread on 127.0.0.1, records what it was asked (path and headers), tracks how
many requests were in flight at once, and serves routes: fixed bodies, slow bodies, endless bodies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARTICLE_HTML = """<!DOCTYPE html>
<html lang="en-GB">
<head>
  <meta charset="utf-8">
  <title>Why Small Batches Win | The Field Notes</title>
  <meta name="author" content="Priya Raman">
  <meta property="article:published_time" content="2024-05-14T09:30:00Z">
  <meta name="description" content="Shipping in small batches lowers risk and speeds up learning.">
</head>
<body>
  <header class="site-header">
    <nav class="main-nav">
      <ul>
        <li><a href="/">Home</a></li>
        <li><a href="/topics">Browse every topic in the navigation menu</a></li>
        <li><a href="/subscribe">Subscribe to the newsletter navigation link</a></li>
      </ul>
    </nav>
  </header>
  <aside class="ad-banner advertisement" id="ad-top">
    <p>SPONSORED: Buy MegaCloud credits today and save forty percent on your first invoice!</p>
  </aside>
  <main>
    <article class="post">
      <h1>Why Small Batches Win</h1>
      <p class="byline">By Priya Raman, 14 May 2024</p>
      <p>Teams that ship in small batches find their mistakes while they are still cheap. A change of
      fifty lines can be reviewed in minutes, reasoned about completely, and reverted without drama
      when it misbehaves in production.</p>
      <p>Large releases hide their defects among each other. When a release bundles three months of work,
      the first incident report starts an archaeology project instead of a fix, and the people who wrote
      the code have long since moved on to other problems.</p>
      <h2>Feedback arrives sooner</h2>
      <p>Every deployment is an experiment with real users. Small batches mean more experiments per week,
      and each one teaches the team something about the product. The
      <a href="https://research.example.org/batch-size-study">batch size study</a> found that teams
      deploying daily recovered from failures twenty times faster than teams deploying monthly.</p>
      <ul>
        <li>Reviews are faster and more thorough.</li>
        <li>Rollbacks are routine rather than heroic.</li>
        <li>Product questions get answered by data instead of debate.</li>
      </ul>
      <p>The discipline is not free: it takes feature flags, a fast pipeline and the habit of slicing work
      thinly. But the teams that build those habits rarely go back.</p>
    </article>
  </main>
  <div class="ad sidebar-ad">
    <p>ADVERTISEMENT: Try ShinyWidgets Pro free for thirty days, no card required.</p>
  </div>
  <footer class="site-footer">
    <p>Copyright 2024 The Field Notes Ltd. All rights reserved. Footer contact address: 1 Example Street.</p>
    <nav><a href="/privacy">Privacy policy footer link</a> <a href="/terms">Terms of service</a></nav>
  </footer>
</body>
</html>
"""

ARTICLE_BODY_PHRASES = (
    "Teams that ship in small batches find their mistakes while they are still cheap",
    "Feedback arrives sooner",
    "Rollbacks are routine rather than heroic",
    "the habit of slicing work",
)
ARTICLE_NOISE_PHRASES = (
    "Browse every topic in the navigation menu",
    "Subscribe to the newsletter navigation link",
    "MegaCloud",
    "ShinyWidgets",
    "All rights reserved",
    "Privacy policy footer link",
)

DOCS_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Configuring retries — Acme SDK documentation</title></head>
<body>
  <div class="sidebar">
    <nav aria-label="Documentation sidebar">
      <a href="/docs/install">Installation sidebar entry</a>
      <a href="/docs/auth">Authentication sidebar entry</a>
      <a href="/docs/retries">Retries sidebar entry</a>
    </nav>
  </div>
  <div role="main" class="document">
    <section id="configuring-retries">
      <h1>Configuring retries</h1>
      <p>The Acme client retries requests that fail with a connection error or a 503 response. By default it
      makes three attempts with exponential backoff, starting at half a second and doubling each time.</p>
      <p>To change the policy, pass a <code>RetryPolicy</code> when you create the client:</p>
      <pre><code class="language-python">from acme import Client, RetryPolicy

policy = RetryPolicy(attempts=5, backoff=0.25)
client = Client(api_key="...", retry=policy)
</code></pre>
      <p>Set <code>attempts=1</code> to disable retries entirely. Requests that are not idempotent, such as
      payments, are never retried after the server has received them.</p>
      <h2>Timeouts</h2>
      <p>Each attempt has its own timeout of ten seconds, which you can change with the timeout argument.
      The total time spent on one call is bounded by attempts multiplied by the timeout, plus backoff.</p>
    </section>
  </div>
  <footer><p>Documentation built with a static site generator. Edit this page on the forge.</p></footer>
</body>
</html>
"""

TABLE_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Plans and pricing - Orbit Analytics</title></head>
<body>
  <nav><a href="/">Orbit home</a> <a href="/login">Log in</a></nav>
  <main>
    <article>
      <h1>Plans and pricing</h1>
      <p>Every plan includes unlimited dashboards, single sign-on and email support. Choose the plan that
      fits the number of events you send each month; you can change plans at any time and we prorate the
      difference to the day.</p>
      <table>
        <thead>
          <tr><th>Plan</th><th>Monthly price</th><th>Events per month</th><th>Data retention</th></tr>
        </thead>
        <tbody>
          <tr><td>Starter</td><td>$49</td><td>1 million</td><td>90 days</td></tr>
          <tr><td>Growth</td><td>$199</td><td>10 million</td><td>1 year</td></tr>
          <tr><td>Enterprise</td><td>Contact sales</td><td>Unlimited</td><td>7 years</td></tr>
        </tbody>
      </table>
      <p>Annual billing saves two months on every plan. Non-profit organisations receive a further discount
      on request, and students can use the Starter plan free of charge while enrolled.</p>
    </article>
  </main>
  <footer><p>Orbit Analytics footer: careers, press, status.</p></footer>
</body>
</html>
"""


def long_article(paragraphs: int) -> str:
    """An article page with `paragraphs` numbered paragraphs, for paging."""
    body = "\n".join(
        f"<p>Paragraph {n:03d}: the quarterly review covered revenue, hiring and the roadmap for the next "
        f"release in considerable detail, with questions from every team.</p>"
        for n in range(paragraphs)
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><title>Quarterly review notes</title></head><body>'
        f"<article><h1>Quarterly review notes</h1>{body}</article></body></html>"
    )


def tiny_pdf(lines: list[str], *, title: str = "Sophia test PDF") -> bytes:
    """A valid one-page PDF showing `lines` in Helvetica, with a title in its document information."""
    stream = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({_pdf_escape(line)}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        "/Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        f"<< /Title ({_pdf_escape(title)}) /Author (Sophia Tests) >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    endless: bool = False  # stream chunks until the client hangs up (no Content-Length)
    chunk_delay: float = 0.0  # seconds between chunks of an endless body


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class LocalWeb:
    """A threaded HTTP server on 127.0.0.1 serving `routes`; unknown paths answer 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`, the entry that opens this server in SOPHIA_FETCH_ALLOW_HOSTS."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def paths_seen(self) -> list[str]:
        with self._lock:
            return [s.path for s in self.seen]

    def start(self) -> LocalWeb:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _enter(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.seen.append(Seen(path, headers))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _handler_for(web: LocalWeb) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            web._enter(self.path, {k.lower(): v for k, v in self.headers.items()})
            try:
                self._answer(web.routes.get(self.path) or Route(b"not found", "text/plain", status=404))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: what a byte cap or a timeout does
            finally:
                web._leave()

        def _answer(self, route: Route) -> None:
            if route.delay:
                time.sleep(route.delay)
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            for key, value in route.headers.items():
                self.send_header(key, value)
            if route.endless:
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = route.body or b"x" * 65536
                while True:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    if route.chunk_delay:
                        time.sleep(route.chunk_delay)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

    return Handler


@contextmanager
def local_web() -> Iterator[LocalWeb]:
    """A started `LocalWeb`, stopped afterwards."""
    web = LocalWeb().start()
    try:
        yield web
    finally:
        web.stop()
