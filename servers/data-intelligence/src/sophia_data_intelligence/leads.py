"""Lead lists from whatever sources are configured: candidates from search hits and blog posts, grouped
by registered domain, enriched from their own pages, scored with stated reasons. No MCP types."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Sites that write *about* companies: their hits are signals for the company named, never a company.
DIRECTORY_DOMAINS = frozenset(
    {
        "linkedin.com", "wikipedia.org", "glassdoor.com", "indeed.com", "crunchbase.com", "bloomberg.com",
        "reuters.com", "techcrunch.com", "medium.com", "substack.com", "youtube.com", "x.com", "twitter.com",
        "facebook.com", "instagram.com", "github.com", "reddit.com", "wordpress.com", "blogspot.com",
        "google.com", "apple.com", "stepstone.de", "xing.com", "welcometothejungle.com", "builtin.com",
        "g2.com", "capterra.com", "forbes.com", "ft.com", "wsj.com", "nytimes.com", "theguardian.com",
    }
)  # fmt: skip
HIRING_WORDS = ("hiring", "careers", "jobs", "we're hiring", "join our team", "open positions", "vacancies")
_SIZE = re.compile(
    r"(\d{1,3}(?:[,.]\d{3})*|\d+)\s*(?:\+\s*)?(?:-|–|to)?\s*(\d{1,3}(?:[,.]\d{3})*|\d+)?\s*(employees|people|staff|mitarbeiter)",
    re.I,
)
_WORD = re.compile(r"[a-zA-ZÀ-ÿ][a-zA-ZÀ-ÿ0-9+-]{2,}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "are",
        "our",
        "you",
        "your",
        "their",
        "have",
        "has",
        "was",
        "were",
        "will",
        "into",
        "over",
        "than",
        "more",
        "about",
        "company",
        "companies",
        "business",
        "businesses",
        "looking",
        "find",
        "people",
        "team",
        "teams",
        "based",
    ]
)
COUNTRIES = (
    "Germany", "France", "Spain", "Italy", "Netherlands", "Belgium", "Austria", "Switzerland", "Sweden", "Norway",
    "Denmark", "Finland", "Poland", "Ireland", "Portugal", "United Kingdom", "UK", "United States", "USA", "Canada",
    "India", "Japan", "Singapore", "Australia", "Brazil", "Israel", "Estonia", "Czech Republic", "Romania",
)  # fmt: skip


@dataclass(frozen=True)
class Hit:
    """One thing a source found: a web result, a blog post or a seed page."""

    url: str
    title: str
    text: str
    source: str  # "tavily", "twingly", "seed"
    date: str = ""  # ISO date when the source gives one


@dataclass(frozen=True)
class PageFacts:
    """What a company's own page said about it."""

    url: str
    title: str
    description: str
    language: str = ""


@dataclass
class Signal:
    kind: str  # "search", "blog", "hiring", "seed"
    title: str
    url: str
    date: str
    source: str


@dataclass
class Lead:
    name: str
    domain: str
    description: str = ""
    industry: str = ""
    country: str = ""
    size_hint: str = ""
    signals: list[Signal] = field(default_factory=list)
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)


def registered_domain(url: str) -> str:
    """example.co.uk for https://jobs.example.co.uk/x, from the bundled public-suffix list (no download)."""
    parts = _extractor()(url)
    return f"{parts.domain}.{parts.suffix}".lower() if parts.domain and parts.suffix else ""


@functools.cache
def _extractor() -> Any:
    import tldextract

    # suffix_list_urls=() keeps tldextract on its bundled snapshot: it would otherwise download the list.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def keywords(description: str) -> list[str]:
    """The words of the target description that should appear on a matching company's pages."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(description.lower()):
        if word not in _STOP:
            seen[word] = None
    return list(seen)


def group_by_domain(hits: Iterable[Hit]) -> dict[str, list[Hit]]:
    """Hits per registered domain; hits on directory sites are kept apart under their own key ''."""
    groups: dict[str, list[Hit]] = {}
    for hit in hits:
        domain = registered_domain(hit.url)
        if not domain:
            continue
        key = "" if domain in DIRECTORY_DOMAINS else domain
        groups.setdefault(key, []).append(hit)
    return groups


def size_hint(text: str) -> str:
    match = _SIZE.search(text)
    if match is None:
        return ""
    low, high, unit = match.group(1), match.group(2), match.group(3).lower()
    return f"{low}–{high} {unit}" if high else f"{low} {unit}"


def country_of(text: str, wanted: str) -> str:
    """The wanted country when the text names it, else the first country it names."""
    if wanted and re.search(rf"\b{re.escape(wanted)}\b", text, re.I):
        return wanted
    for country in COUNTRIES:
        if re.search(rf"\b{re.escape(country)}\b", text):
            return country
    return ""


def company_name(domain: str, page: PageFacts | None, hits: Sequence[Hit]) -> str:
    """The page title's brand part ("Acme — Data platform" → "Acme"), else the domain's name."""
    for title in ([page.title] if page and page.title else []) + [h.title for h in hits if h.source == "seed"]:
        brand = re.split(r"\s+[|\-–—:·]\s+", title.strip(), maxsplit=1)[0].strip()
        if 1 < len(brand) <= 60:
            return brand
    return domain.split(".")[0].replace("-", " ").title()


def score_lead(lead: Lead, *, words: Sequence[str], country: str, page: PageFacts | None, hits: Sequence[Hit]) -> None:
    """Fill in the score and the reasons that make it up (each reason says what was seen and where)."""
    corpus = (
        " ".join([page.title, page.description] if page else []) + " " + " ".join(h.title + " " + h.text for h in hits)
    )
    lowered = corpus.lower()
    matched = [w for w in words if w in lowered]
    if words:
        share = len(matched) / len(words)
        lead.score += round(50 * share, 1)
        lead.reasons.append(f"matches {len(matched)}/{len(words)} target terms ({', '.join(matched[:8]) or 'none'})")
    hiring = [h for h in hits if any(w in (h.title + " " + h.text + " " + h.url).lower() for w in HIRING_WORDS)]
    if hiring:
        lead.score += 20
        lead.reasons.append(f"hiring signal: {hiring[0].title[:80] or hiring[0].url}")
    if country and lead.country == country:
        lead.score += 15
        lead.reasons.append(f"mentions {country}")
    sources = sorted({h.source for h in hits})
    if len(sources) > 1:
        lead.score += 10
        lead.reasons.append(f"found by {len(sources)} sources ({', '.join(sources)})")
    if page is not None:
        lead.score += 5
        lead.reasons.append("own site fetched")
    if lead.size_hint:
        lead.reasons.append(f"size hint: {lead.size_hint}")
    lead.score = round(min(lead.score, 100.0), 1)


def build_leads(
    description: str, *, country: str, groups: dict[str, list[Hit]], pages: dict[str, PageFacts]
) -> list[Lead]:
    """One lead per registered domain (directory sites excluded), scored, best first."""
    words = keywords(description)
    leads = []
    for domain, hits in groups.items():
        if not domain:
            continue
        page = pages.get(domain)
        text = " ".join([page.title, page.description] if page else []) + " " + " ".join(h.text for h in hits)
        lead = Lead(
            name=company_name(domain, page, hits),
            domain=domain,
            description=(page.description if page and page.description else (hits[0].text if hits else ""))[:240],
            country=country_of(text, country),
            size_hint=size_hint(text),
            signals=[
                Signal(
                    kind="hiring"
                    if any(w in (h.title + " " + h.url).lower() for w in HIRING_WORDS)
                    else ("blog" if h.source == "twingly" else h.source if h.source == "seed" else "search"),
                    title=h.title[:160],
                    url=h.url,
                    date=h.date,
                    source=h.source,
                )
                for h in hits[:6]
            ],
        )
        score_lead(lead, words=words, country=country, page=page, hits=hits)
        leads.append(lead)
    return sorted(leads, key=lambda lead: (-lead.score, lead.domain))
