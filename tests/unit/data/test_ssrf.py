"""The built-in fetch's SSRF policy: a battery of internal targets and spellings, all refused with the
reason, through the fetcher itself; redirects from an allowed local host to a forbidden one refused at the hop.

No test reaches real DNS: `ssrf.resolve_addresses` (the policy's resolver seam) is replaced by a table.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sophia_data_intelligence.fetch import AllowList, Fetcher, FetchLimits, check_url, ssrf
from sophia_shared.errors import PolicyError
from tests.fakes.web_pages import LocalWeb, Route, local_web

pytestmark = pytest.mark.anyio

PUBLIC = "93.184.216.34"
# What the fake resolver answers; any other name gets the public address above.
DNS = {
    "innocent-looking.example.com": ["127.0.0.1"],
    "rebind.example.net": [PUBLIC, "10.0.0.5"],
    "v6only.example.org": ["::1"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "metadata-alias.example.com": ["169.254.169.254"],
    "mapped.example.com": ["::ffff:192.168.0.10"],
    "pinned.example.com": ["127.0.0.1"],
}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssrf, "resolve_addresses", lambda host, port: DNS.get(host, [PUBLIC]))


# (url, what the refusal must say)
BATTERY = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.0.0.1:6379/", "loopback"),
    ("http://127.1/", "non-standard"),
    ("http://127.0.1/", "non-standard"),
    ("http://2130706433/", "reads it as 127.0.0.1"),
    ("http://0x7f000001/", "reads it as 127.0.0.1"),
    ("http://0x7f.0x0.0x0.0x1/", "non-standard"),
    ("http://017700000001/", "reads it as 127.0.0.1"),
    ("http://0177.0.0.1/", "non-standard"),
    ("http://127.000.000.001/", "non-standard"),
    ("http://127.0.0.1./", "non-standard"),
    ("http://0/", "reads it as 0.0.0.0"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://[::1]/", "loopback"),
    ("http://[::1]:8080/admin", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "embeds the IPv4 address 127.0.0.1"),
    ("http://[::ffff:7f00:1]/", "embeds the IPv4 address 127.0.0.1"),
    ("http://[::ffff:a9fe:a9fe]/", "metadata"),
    ("http://[::127.0.0.1]/", "embeds the IPv4 address 127.0.0.1"),
    ("http://[64:ff9b::7f00:1]/", "embeds the IPv4 address 127.0.0.1"),
    ("http://[2002:c0a8:101::]/", "embeds the IPv4 address 192.168.1.1"),
    ("http://10.0.0.1/", "private"),
    ("http://10.255.255.255/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.254/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://100.127.255.254/", "carrier-grade NAT"),
    ("http://169.254.0.1/", "link-local"),
    ("http://169.254.169.254/latest/meta-data/iam/", "metadata"),
    ("http://169.254.170.2/v2/credentials", "metadata"),
    ("http://100.100.100.200/latest/meta-data/", "metadata"),
    ("http://192.0.0.192/opc/v2/instance/", "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
    ("http://metadata/computeMetadata/v1/", "metadata"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[fc00::1]/", "unique-local"),
    ("http://[fd12:3456:789a::1]/", "unique-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "zone id"),
    ("http://255.255.255.255/", "private"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://localhost/", "local or internal"),
    ("http://LOCALHOST:8080/", "local or internal"),
    ("http://localhost./", "local or internal"),
    ("http://api.localhost/", "local or internal"),
    ("http://printer.local/", "local or internal"),
    ("http://db.corp.internal/", "local or internal"),
    ("http://intranet/", "single-label"),
    ("http://innocent-looking.example.com/", "resolves to 127.0.0.1"),
    ("http://127.0.0.1.nip.io/", "resolves to 127.0.0.1"),
    ("http://rebind.example.net/", "resolves to 10.0.0.5"),
    ("http://v6only.example.org/", "resolves to ::1"),
    ("http://metadata-alias.example.com/", "metadata"),
    ("http://mapped.example.com/", "192.168.0.10"),
    ("http://127。0。0。1/", "loopback"),
    ("http://example.com@127.0.0.1/", "loopback"),
    ("http://user:secret@example.com/", "user info"),
    ("http://127.0.0.1\\@example.com/", "backslash"),
    ("http://example.com\t.evil/", "whitespace"),
    ("http://example.com:99999/", "outside 1-65535"),
    ("file:///etc/passwd", "file: scheme"),
    ("gopher://127.0.0.1:6379/_INFO", "gopher: scheme"),
    ("ftp://example.com/pub/", "ftp: scheme"),
    ("dict://127.0.0.1:11211/stat", "dict: scheme"),
    ("ldap://127.0.0.1/", "ldap: scheme"),
]


def test_the_battery_has_at_least_forty_targets() -> None:
    assert len(BATTERY) >= 40
    assert len({url for url, _ in BATTERY}) == len(BATTERY)


@pytest.fixture
async def fetcher() -> Fetcher:
    return Fetcher(FetchLimits(allow=AllowList(), timeout=5))


@pytest.mark.parametrize(("url", "why"), BATTERY, ids=[u for u, _ in BATTERY])
async def test_internal_target_is_refused_with_the_reason(url: str, why: str, fetcher: Fetcher) -> None:
    with pytest.raises(PolicyError) as refused:
        await fetcher.fetch(url)
    await fetcher.aclose()
    assert why in refused.value.message, refused.value.message
    assert refused.value.message.startswith("Refused to fetch")
    assert "SOPHIA_FETCH_ALLOW_HOSTS" in refused.value.hint


async def test_a_public_name_with_public_addresses_is_accepted_and_pinned() -> None:
    target = await check_url("https://www.example.com/a?b=1", AllowList())
    assert target.host == "www.example.com" and target.port == 443
    assert target.addresses == (PUBLIC,)
    assert not target.allow_listed


async def test_mapped_and_nat64_forms_of_a_public_address_are_accepted() -> None:
    assert (await check_url("http://[::ffff:93.184.216.34]/", AllowList())).addresses == ("::ffff:5db8:d822",)
    assert (await check_url("http://[64:ff9b::5db8:d822]/", AllowList())).port == 80


async def test_the_allow_list_opens_only_the_named_host_and_port() -> None:
    allow = AllowList.parse("127.0.0.1:8080, Intranet.Example , [::1]")
    assert (await check_url("http://127.0.0.1:8080/x", allow)).allow_listed
    assert (await check_url("http://intranet.example/", allow)).allow_listed
    assert (await check_url("http://[::1]:9/", allow)).allow_listed
    with pytest.raises(PolicyError, match="loopback"):
        await check_url("http://127.0.0.1:8081/x", allow)
    with pytest.raises(PolicyError, match="non-standard"):
        await check_url("http://2130706433:8080/", allow)  # odd spellings stay refused even for allowed hosts
    with pytest.raises(PolicyError, match="file: scheme"):
        await check_url("file:///etc/passwd", allow)


# --- redirects ------------------------------------------------------------------------------------------


@pytest.fixture
def inside() -> Iterator[LocalWeb]:
    """A second local server, not on the allow-list: what a redirect must never reach."""
    with local_web() as web:
        web.routes["/secret"] = Route(b"internal secret", "text/plain")
        yield web


@pytest.fixture
def allowed() -> Iterator[LocalWeb]:
    with local_web() as web:
        yield web


def _redirect_targets(inside: LocalWeb) -> list[tuple[str, str]]:
    return [
        (inside.url("/secret"), "loopback"),
        (f"http://localhost:{inside.port}/secret", "local or internal"),
        (f"http://[::1]:{inside.port}/secret", "loopback"),
        (f"http://2130706433:{inside.port}/secret", "non-standard"),
        (f"http://innocent-looking.example.com:{inside.port}/secret", "resolves to 127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("file:///etc/passwd", "file: scheme"),
        ("http://[::1/secret", "not a valid URL"),
    ]


async def test_redirect_from_an_allowed_host_to_a_forbidden_one_is_refused_at_the_hop(
    allowed: LocalWeb, inside: LocalWeb
) -> None:
    fetcher = Fetcher(FetchLimits(allow=AllowList.parse(allowed.host), timeout=5))
    targets = _redirect_targets(inside)
    try:
        for n, (target, why) in enumerate(targets):
            allowed.routes[f"/go{n}"] = Route(status=302, headers={"Location": target})
            with pytest.raises(PolicyError) as refused:
                await fetcher.fetch(allowed.url(f"/go{n}"))
            message = refused.value.message
            assert why in message and f"redirect 1 from {allowed.url(f'/go{n}')}" in message, message
    finally:
        await fetcher.aclose()
    assert inside.paths_seen() == []
    assert [p for p in allowed.paths_seen() if p.startswith("/go")] == [f"/go{n}" for n in range(len(targets))]


async def test_a_relative_redirect_chain_is_checked_at_every_hop(allowed: LocalWeb, inside: LocalWeb) -> None:
    allowed.routes["/one"] = Route(status=301, headers={"Location": "/two"})
    allowed.routes["/two"] = Route(status=307, headers={"Location": inside.url("/secret")})
    fetcher = Fetcher(FetchLimits(allow=AllowList.parse(allowed.host), timeout=5))
    with pytest.raises(PolicyError, match=r"redirect 2 from .*/two\)"):
        await fetcher.fetch(allowed.url("/one"))
    await fetcher.aclose()
    assert inside.paths_seen() == []


async def test_the_connection_goes_to_the_checked_address_while_host_names_the_site(allowed: LocalWeb) -> None:
    allowed.routes["/hello"] = Route(b"hello", "text/plain")
    fetcher = Fetcher(FetchLimits(allow=AllowList.parse("pinned.example.com"), timeout=5))
    got = await fetcher.fetch(f"http://pinned.example.com:{allowed.port}/hello")
    await fetcher.aclose()
    assert got.body == b"hello"
    assert allowed.seen[-1].headers["host"] == f"pinned.example.com:{allowed.port}"


async def test_a_connection_the_policy_did_not_check_is_never_opened(allowed: LocalWeb) -> None:
    fetcher = Fetcher(FetchLimits(allow=AllowList.parse(allowed.host), timeout=5))
    with pytest.raises(httpx.ConnectError, match="not checked"):
        await fetcher._client.get(allowed.url("/"))  # around `fetch`: the transport itself refuses
    await fetcher.aclose()
    assert allowed.paths_seen() == []
