"""Fetch remote media without reaching internal networks (server-side request forgery guard).

`forbidden_reason` classifies one IP address (a pure function). `guarded_get` resolves the URL's
host, refuses it when any resolved address is forbidden (with `MediaPolicy.block_private`), then
connects to the address it resolved (so a second DNS answer cannot swap it) and follows redirects
one hop at a time, checking each hop the same way. Sizes, time and redirects are capped.

Every fetch resolves names with the policy's `resolver` and connects with the policy's `transport`
(`endpoints`: the system resolver and httpx's own transport when the policy names none). That is the
one way out of the process for media, so a test that injects both cannot reach the network, and the
HTTP client never resolves a name itself.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from typing import TYPE_CHECKING, Callable
from urllib.parse import urljoin, urlsplit, urlunsplit

from .errors import LimitError, MediaError, MediaPolicyError

if TYPE_CHECKING:
    from .media import MediaPolicy

Resolver = Callable[[str, int], list[str]]

_METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Special-purpose blocks, listed here as well so that the answer does not depend on the Python version.
_SPECIAL = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23",
    "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8")]


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    packed = ip.packed
    if packed[:12] == bytes(12) and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(packed[12:])
    return None


def forbidden_reason(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a server must not connect to this address, or None when it is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return f"not an IP address: {address!r}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped IPv6 address"
        inner = embedded_ipv4(ip)
        if inner is not None:
            reason = forbidden_reason(inner)
            return f"{reason} (inside {ip})" if reason else None
    if ip in _METADATA:
        return "cloud metadata address"
    for name in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved", "site_local"):
        if getattr(ip, f"is_{name}", False):
            return f"{name.replace('_', '-')} address"
    for net in _SPECIAL:
        if ip.version == net.version and ip in net:
            return f"special-purpose address ({net})"
    if not ip.is_global:
        return "non-public address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_host(host: str, port: int, resolver: Resolver, block_private: bool = True) -> str:
    """Resolve `host` and return the address to connect to; with `block_private`, raise if any resolved
    address is forbidden."""
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as e:
        raise MediaError(f"cannot resolve host {host!r}: {e}") from None
    if not addresses:
        raise MediaError(f"host {host!r} has no address")
    for a in addresses if block_private else ():
        reason = forbidden_reason(a.split("%", 1)[0] if "%" in a else a)
        if reason:
            raise MediaPolicyError(f"refused to fetch from {host!r}: it resolves to a {reason}")
    return addresses[0]


def _pinned(url: str, address: str) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def endpoints(policy: "MediaPolicy") -> tuple[Resolver, object]:
    """The resolver and the httpx transport a fetch under `policy` uses (None: httpx's default transport)."""
    return policy.resolver or system_resolver, policy.transport


def guarded_get(url: str, policy: "MediaPolicy", max_bytes: int) -> bytes:
    """GET `url` under `policy`, resolving and connecting only through `endpoints(policy)`; returns the
    body. Raises MediaError / MediaPolicyError / LimitError."""
    import httpx

    resolver, transport = endpoints(policy)
    deadline = time.monotonic() + policy.timeout
    with httpx.Client(transport=transport, timeout=policy.timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(policy.max_redirects + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise MediaPolicyError(f"only http(s) URLs can be fetched, got {url[:80]!r}")
            if parts.username or parts.password:
                raise MediaPolicyError("URLs with credentials are refused")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = check_host(parts.hostname, port, resolver, policy.block_private)
            target, headers, extensions = _pinned(url, address), {"Host": parts.netloc}, {}
            if parts.scheme == "https":
                extensions["sni_hostname"] = parts.hostname
            try:
                with client.stream("GET", target, headers=headers, extensions=extensions) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise MediaError("redirect without a location")
                        url = urljoin(url, location)
                        continue
                    if response.status_code >= 400:
                        raise MediaError(f"fetching the URL failed with HTTP {response.status_code}")
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > max_bytes:
                        raise LimitError(f"remote media of {declared} bytes exceeds the limit of {max_bytes} bytes",
                                         limit="max_bytes", value=max_bytes)
                    chunks, size = [], 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise LimitError(f"remote media exceeds the limit of {max_bytes} bytes",
                                             limit="max_bytes", value=max_bytes)
                        if time.monotonic() > deadline:
                            raise MediaError(f"fetching the URL took longer than {policy.timeout} s")
                        chunks.append(chunk)
                    return b"".join(chunks)
            except httpx.HTTPError as e:
                raise MediaError(f"cannot fetch URL: {type(e).__name__}: {e}") from None
    raise MediaPolicyError(f"more than {policy.max_redirects} redirects")
