"""No test reaches the network: for the whole session, Python sockets may connect only to loopback
(127.0.0.0/8, ::1) or to a unix socket, and only `localhost` and numeric hosts may be looked up.

Anything else raises `NetworkRefused` (an OSError, as a failed connection or lookup would be) naming
the address, before any packet leaves. Refusals are also listed at the end of the run, in case some
library swallowed the error. Connections made below Python (Ray's and Milvus Lite's gRPC in C++,
libuv) and those of child processes are outside this guard; those tests bind their servers to
127.0.0.1 or unix sockets themselves.
"""
from __future__ import annotations

import ipaddress
import socket

import pytest

refused: list[str] = []  # what was refused this session, in order
_saved: dict[str, object] = {}


class NetworkRefused(OSError):
    """A connection or lookup the test guard does not allow."""


class ConnectionRefusedByGuard(NetworkRefused, ConnectionError):
    pass


class LookupRefusedByGuard(NetworkRefused, socket.gaierror):
    pass


def numeric_address(host) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `host` spells without a DNS query (any notation the C library reads), else None."""
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    if not isinstance(host, str):
        return None
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))  # 127.1, 0x7f000001, 2130706433, 0177.0.0.1
    except (OSError, ValueError):
        return None


def is_loopback(address) -> bool:
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def is_local_name(host) -> bool:
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    return isinstance(host, str) and host.lower().rstrip(".") in ("localhost", "")


def _refuse(kind: type[NetworkRefused], what: str):
    refused.append(what)
    return kind(f"test network guard: {what} refused (tests may use loopback and unix sockets only)")


def _check_connect(sock, address) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # unix sockets, netlink: not the network
    host = address[0] if isinstance(address, tuple) and address else address
    ip = numeric_address(host)
    if ip is not None and is_loopback(ip):
        return
    if ip is None and is_local_name(host):
        return
    raise _refuse(ConnectionRefusedByGuard, f"connection to {address!r}")


def _check_lookup(host, flags: int = 0) -> None:
    if host is None or flags & socket.AI_NUMERICHOST or is_local_name(host) or numeric_address(host) is not None:
        return  # none of these asks a DNS server
    raise _refuse(LookupRefusedByGuard, f"name lookup of {host!r}")


def install() -> None:
    """Patch the socket module (idempotent)."""
    if _saved:
        return
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo, real_gethostbyname = socket.getaddrinfo, socket.gethostbyname
    real_gethostbyname_ex, real_gethostbyaddr = socket.gethostbyname_ex, socket.gethostbyaddr
    real_getnameinfo = socket.getnameinfo

    def connect(self, address):
        _check_connect(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        _check_connect(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's names
        _check_lookup(host, flags)
        return real_getaddrinfo(host, port, family, type, proto, flags)

    def gethostbyname(host):
        _check_lookup(host)
        return real_gethostbyname(host)

    def gethostbyname_ex(host):
        _check_lookup(host)
        return real_gethostbyname_ex(host)

    def gethostbyaddr(host):  # a reverse lookup asks DNS unless it is about this machine's loopback
        ip = numeric_address(host)
        if not (is_local_name(host) or (ip is not None and is_loopback(ip))):
            raise _refuse(LookupRefusedByGuard, f"reverse lookup of {host!r}")
        return real_gethostbyaddr(host)

    def getnameinfo(sockaddr, flags):
        ip = numeric_address(sockaddr[0])
        if not (flags & socket.NI_NUMERICHOST or (ip is not None and is_loopback(ip))):
            raise _refuse(LookupRefusedByGuard, f"reverse lookup of {sockaddr[0]!r}")
        return real_getnameinfo(sockaddr, flags)

    _saved.update(connect=real_connect, connect_ex=real_connect_ex, getaddrinfo=real_getaddrinfo,
                  gethostbyname=real_gethostbyname, gethostbyname_ex=real_gethostbyname_ex,
                  gethostbyaddr=real_gethostbyaddr, getnameinfo=real_getnameinfo)
    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo, socket.gethostbyname, socket.gethostbyname_ex = getaddrinfo, gethostbyname, gethostbyname_ex
    socket.gethostbyaddr, socket.getnameinfo = gethostbyaddr, getnameinfo
    installed.update(connect=connect, connect_ex=connect_ex, getaddrinfo=getaddrinfo, gethostbyname=gethostbyname)


installed: dict[str, object] = {}  # the wrappers in place, so a test can check before relying on them


def uninstall() -> None:
    if not _saved:
        return
    socket.socket.connect, socket.socket.connect_ex = _saved["connect"], _saved["connect_ex"]
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"):
        setattr(socket, name, _saved[name])
    _saved.clear()
    installed.clear()


@pytest.fixture(scope="session", autouse=True)
def network_guard():
    """Every test runs with the guard in place (see the module docstring)."""
    install()
    yield refused
    uninstall()


def pytest_terminal_summary(terminalreporter):
    if refused:
        terminalreporter.write_sep("-", f"test network guard: {len(refused)} refused")
        for what in dict.fromkeys(refused):
            terminalreporter.write_line(what)
