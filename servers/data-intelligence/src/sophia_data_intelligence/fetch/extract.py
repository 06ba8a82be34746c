"""Fetched bodies as readable text: HTML through trafilatura (main content as markdown, metadata),
JSON pretty-printed, plain text as it is, PDF through pypdf. Other types are refused with the reason."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any

from sophia_shared.errors import InputError

MAX_LINKS = 100
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset(
    {
        "text/plain",
        "text/markdown",
        "text/csv",
        "text/tab-separated-values",
        "text/xml",
        "application/xml",
        "text/x-markdown",
    }
)
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]{0,300})\]\((https?://[^)\s]+)\)")
_HTML_LANG = re.compile(rb"<html[^>]*?\slang\s*=\s*[\"']?([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)", re.IGNORECASE)
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Link:
    url: str
    text: str


@dataclass(frozen=True)
class Extracted:
    kind: str  # html, json, text or pdf
    text: str
    title: str = ""
    author: str = ""
    date: str = ""
    language: str = ""
    links: tuple[Link, ...] = ()


def kind_of(content_type: str, body: bytes) -> str | None:
    """html, json, text or pdf from the media type (or the body's first bytes when it says nothing useful)."""
    if content_type in _HTML_TYPES:
        return "html"
    if content_type == "application/json" or content_type.endswith("+json"):
        return "json"
    if content_type == "application/pdf":
        return "pdf"
    if content_type in _TEXT_TYPES or content_type.endswith("+xml"):
        return "text"
    if content_type in ("", "application/octet-stream", "binary/octet-stream"):
        head = body[:512].lstrip().lower()
        if head.startswith(b"%pdf-"):
            return "pdf"
        if head.startswith((b"<!doctype html", b"<html")):
            return "html"
        if head[:1] in (b"{", b"["):
            return "json"
    return None


def extract(
    body: bytes, content_type: str, charset: str | None, url: str, *, raw: bool = False, cut: bool = False
) -> Extracted:
    """Readable text of a body; `raw` returns text bodies undecorated; `cut` says the body is incomplete."""
    kind = kind_of(content_type, body)
    if kind is None:
        raise InputError(
            f"{url} is {content_type or 'of no stated type'}, which the built-in fetch cannot read as text.",
            hint="It reads HTML, JSON, plain text (and other text types) and PDF.",
        )
    if kind == "pdf":
        if cut:
            raise InputError(
                f"The PDF at {url} is larger than the fetch byte cap, and a partial PDF cannot be read.",
                hint="SOPHIA_FETCH_MAX_BYTES sets the cap.",
            )
        return _pdf(body, url)
    text = _decode(body, charset)
    if raw:
        return Extracted(kind, text)
    if kind == "html":
        return _html(body, url)
    if kind == "json":
        return Extracted(kind, _pretty_json(text))
    return Extracted(kind, text)


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text  # cut at the byte cap, or not JSON after all: shown as it came


def _html(body: bytes, url: str) -> Extracted:
    import trafilatura  # ~0.2 s: loaded by the first page, not by the server's start

    found = trafilatura.bare_extraction(
        body,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_formatting=True,  # markdown headings, lists, emphasis, code
        include_links=True,
        output_format="python",
    )
    doc: dict[str, Any] = {}
    if isinstance(found, dict):
        doc = found
    elif found is not None:
        doc = found.as_dict()
    text = str(doc.get("text") or "").strip()
    return Extracted(
        kind="html",
        text=text,
        title=str(doc.get("title") or _title(body)),
        author=str(doc.get("author") or ""),
        date=str(doc.get("date") or ""),
        language=str(doc.get("language") or _language(body)),
        links=_links(text),
    )


def _title(body: bytes) -> str:
    match = _TITLE.search(body[:200_000])
    return " ".join(match.group(1).decode("utf-8", errors="replace").split()) if match else ""


def _language(body: bytes) -> str:
    match = _HTML_LANG.search(body[:20_000])
    return match.group(1).decode("ascii").lower() if match else ""


def _links(markdown: str) -> tuple[Link, ...]:
    """The links of the main content (navigation and footers are already gone), first seen first."""
    seen: dict[str, Link] = {}
    for text, href in _MARKDOWN_LINK.findall(markdown):
        if href not in seen:
            seen[href] = Link(url=href, text=" ".join(text.split()))
        if len(seen) >= MAX_LINKS:
            break
    return tuple(seen.values())


def _pdf(body: bytes, url: str) -> Extracted:
    from pypdf import PdfReader  # ~0.3 s: loaded by the first PDF
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(body))
        if reader.is_encrypted:
            raise InputError(f"The PDF at {url} is encrypted, so its text cannot be read.")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = reader.metadata
    except (PdfReadError, ValueError, KeyError) as exc:
        raise InputError(f"The PDF at {url} could not be read ({exc}).") from None
    title = author = date = ""
    if meta is not None:
        title = str(meta.title or "")
        author = str(meta.author or "")
        created = meta.creation_date if "/CreationDate" in meta else None
        date = created.date().isoformat() if created is not None else ""
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    return Extracted("pdf", text, title=title, author=author, date=date)
