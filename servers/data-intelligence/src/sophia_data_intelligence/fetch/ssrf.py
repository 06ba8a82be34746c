"""The built-in fetch's one SSRF policy: which URLs may be fetched, and the addresses to connect to.

`check_url` is the only maker of `CheckedTarget`; the fetcher connects only to a target's addresses,
so a name that resolves inside, an odd IP spelling or a redirect cannot reach an internal service.
Hosts in SOPHIA_FETCH_ALLOW_HOSTS skip the address rules (private deployments, tests), nothing else.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

import anyio.to_thread
import httpx

from sophia_shared.errors import InputError, PolicyError

ALLOW_HOSTS_SETTING = "SOPHIA_FETCH_ALLOW_HOSTS"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = frozenset({"http", "https"})

# Cloud instance-metadata services: credentials live behind these.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "169.254.169.253",  # AWS VPC DNS
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS DNS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.packet.net",
    }
)
# Suffixes that only ever name machines on a local network.
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain", ".lan", ".intranet", ".corp")

_CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
_BENCHMARKING = ipaddress.ip_network("198.18.0.0/15")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
# What inet_aton accepts: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x).
_INET_ATON = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.IGNORECASE)
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")  # "_" occurs in real host names


@dataclass(frozen=True)
class CheckedTarget:
    """A URL the policy accepted, with the addresses it resolved to and checked: connect only to these."""

    url: httpx.URL
    host: str  # lower case, IDNA, no trailing dot, IPv6 without brackets
    port: int
    addresses: tuple[str, ...]
    allow_listed: bool


@dataclass(frozen=True)
class AllowList:
    """Hosts (any port) and host:port pairs opened by SOPHIA_FETCH_ALLOW_HOSTS."""

    hosts: frozenset[str] = frozenset()
    host_ports: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        hosts: set[str] = set()
        pairs: set[tuple[str, int]] = set()
        for raw in (text or "").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            host, port = _split_entry(entry)
            if port is None:
                hosts.add(host)
            else:
                pairs.add((host, port))
        return cls(frozenset(hosts), frozenset(pairs))

    def allows(self, host: str, port: int) -> bool:
        return host in self.hosts or (host, port) in self.host_ports

    def __bool__(self) -> bool:
        return bool(self.hosts or self.host_ports)


def _split_entry(entry: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address; hosts normalised like URLs."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":") or None
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, None
    if port is not None and not port.isdigit():
        raise InputError(
            f"{ALLOW_HOSTS_SETTING} entry {entry!r} has a port that is not a number.",
            hint="Write entries as host or host:port, comma-separated, e.g. 127.0.0.1:8080,intranet.example.",
        )
    return _canonical_name(host), int(port) if port is not None else None


def canonical_host(host: str) -> str:
    """A host as the policy compares it: lower case, no trailing dot, IP addresses in standard form."""
    return _canonical_name(host)


def _canonical_name(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def refuse(url: str, reason: str) -> PolicyError:
    """The refusal every check raises: what was refused and why, and how a deployment can open it."""
    return PolicyError(
        f"Refused to fetch {url}: {reason}.",
        hint="The built-in fetch only reaches public http(s) addresses. An operator can open a specific "
        f"internal host with {ALLOW_HOSTS_SETTING} (host or host:port, comma-separated).",
    )


# --- addresses ---------------------------------------------------------------------------------------


def address_problem(ip: IPAddress) -> str | None:
    """Why an address must not be reached, or None for a public unicast address."""
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud instance-metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return f"{ip} carries an IPv6 zone id"
        if ip.is_loopback or ip.is_unspecified:
            return _plain_problem(ip)  # ::1 and :: also sit in the IPv4-compatible range
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = address_problem(embedded)
            if inner is not None:
                return f"{ip} embeds the IPv4 address {embedded}, and {inner}"
            if ip in _IPV4_COMPATIBLE:
                return f"{ip} is a deprecated IPv4-compatible IPv6 address"
            return None  # mapped, 6to4 or NAT64 form of a public IPv4 address: reaches that address
        if ip.teredo is not None:
            return f"{ip} is a Teredo tunnel address"
        if ip in _UNIQUE_LOCAL:
            return f"{ip} is an IPv6 unique-local (private) address"
        if ip in _SITE_LOCAL:
            return f"{ip} is an IPv6 site-local address"
    return _plain_problem(ip)


def _plain_problem(ip: IPAddress) -> str | None:
    if ip.is_unspecified:
        return f"{ip} is the unspecified address (it reaches this machine)"
    if ip.is_loopback:
        return f"{ip} is a loopback address (this machine)"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CARRIER_GRADE_NAT:
        return f"{ip} is a carrier-grade NAT (shared) address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _BENCHMARKING:
        return f"{ip} is a benchmarking-network address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_private:
        return f"{ip} is a private-network address"
    if ip.is_reserved:
        return f"{ip} is a reserved address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries: mapped, compatible, 6to4 or NAT64."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _IPV4_COMPATIBLE or any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _inet_aton_value(text: str) -> ipaddress.IPv4Address | None:
    """What the C resolver would make of a numeric host (`127.1`, `2130706433`, `0x7f.1`), or None."""
    parts = text.rstrip(".").split(".")
    try:
        numbers = [_aton_part(p) for p in parts]
    except ValueError:
        return None  # "0x" alone: not an address, and not a valid name either
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _aton_part(part: str) -> int:
    if part.lower().startswith("0x"):
        return int(part, 16)
    return int(part, 8) if part.startswith("0") and part != "0" else int(part)


# --- URLs and names ------------------------------------------------------------------------------------


def _parse(url: str, shown: str) -> httpx.URL:
    # httpx parses here because httpx sends the request: one parser, so the host checked is the host reached.
    if any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in url):
        raise refuse(repr(shown), "it contains whitespace, control characters or a backslash")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        if "IPv4" in str(exc):  # httpx rejects dotted quads with leading zeros, which C reads as octal
            raise refuse(shown, "its host is a non-standard (octal or zero-padded) IP spelling") from None
        raise refuse(shown, f"it is not a valid URL ({exc})") from None
    if not parsed.scheme:
        raise InputError(f"{url!r} has no scheme.", hint="Give a full URL, e.g. https://example.com/page.")
    if parsed.scheme not in SCHEMES:
        raise refuse(shown, f"the {parsed.scheme}: scheme is not allowed; only http and https are")
    if not parsed.host:
        raise refuse(shown, "it names no host")
    return parsed


def _port_of(url: str, parsed: httpx.URL) -> int:
    try:
        port = parsed.port
    except ValueError:
        raise refuse(url, "its port is not a number") from None
    if port is None:
        return 443 if parsed.scheme == "https" else 80
    if not 0 < port < 65536:
        raise refuse(url, f"port {port} is outside 1-65535")
    return port


def literal_address(url: str, host: str) -> IPAddress | None:
    """The host as an IP address if it is written as one; refuses every spelling but the standard one."""
    if "%" in host:
        raise refuse(url, f"the host {host!r} carries an IPv6 zone id or percent-encoding")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise refuse(url, f"the host {host!r} is not a valid IPv6 address") from None
    if _INET_ATON.fullmatch(host):
        decoded = _inet_aton_value(host)
        try:
            standard = ipaddress.IPv4Address(host)
        except ValueError:
            standard = None
        if standard is None or str(standard) != host:
            meaning = f" (the system resolver reads it as {decoded})" if decoded is not None else ""
            raise refuse(url, f"the host {host!r} is a non-standard (decimal, octal or hex) IP spelling{meaning}")
        return standard
    return None


def _name_problem(host: str) -> str | None:
    if host in METADATA_NAMES:
        return f"{host} is a cloud instance-metadata name"
    if host == "localhost" or host.endswith(INTERNAL_SUFFIXES):
        return f"{host} names a local or internal machine"
    if "." not in host:
        return f"{host} is a single-label name, resolved on the local network"
    labels = host.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return f"the host {host!r} is not a valid DNS name"
    if labels[-1].isdigit():
        return f"the host {host!r} ends in a numeric label, like an IP spelling"
    return None


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (the seam tests replace)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _resolve(url: str, host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        found = await anyio.to_thread.run_sync(resolve_addresses, host, port)
    except (socket.gaierror, UnicodeError) as exc:
        raise refuse(url, f"{host} does not resolve ({exc})") from None
    addresses: list[IPAddress] = []
    for text in found:
        # getaddrinfo may hand back a scoped IPv6 address ("fe80::1%eth0"); keep the scope so it is refused.
        addresses.append(ipaddress.ip_address(text))
    if not addresses:
        raise refuse(url, f"{host} resolves to no address")
    return tuple(dict.fromkeys(addresses))


async def check_url(url: str, allow: AllowList, *, hop: str = "") -> CheckedTarget:
    """Parse, classify and resolve `url`; a `CheckedTarget` or a `PolicyError` saying why not.

    Every resolved address must pass, so a name with one public and one private address is refused.
    """
    shown = f"{url} ({hop})" if hop else url
    parsed = _parse(url, shown)
    port = _port_of(shown, parsed)
    host = parsed.host.lower()
    ip = literal_address(shown, host)
    if ip is None:
        host = host.rstrip(".")
    canonical = str(ip) if ip is not None else host
    allowed = allow.allows(canonical, port)
    if not allowed:
        problem = address_problem(ip) if ip is not None else _name_problem(host)
        if problem is not None:
            raise refuse(shown, problem)
    if parsed.userinfo:
        raise refuse(shown, "it contains user info (user@host), a way of disguising the real host")
    addresses = (ip,) if ip is not None else await _resolve(shown, host, port)
    if not allowed:
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                raise refuse(shown, f"{host} resolves to {address}, and {problem}")
    return CheckedTarget(parsed, canonical, port, tuple(str(a) for a in addresses), allowed)
