"""The test session's network guard (tests/plugins/network.py): connections and lookups beyond loopback fail.

Each test first checks that the guard's wrappers are in place, so that a broken guard fails the check
instead of sending anything; the addresses tried are documentation ranges (RFC 5737) that no one serves."""
from __future__ import annotations

import socket
import threading

import pytest

from plugins import network

# 192.0.2.0/24 may be a test machine's own subnet (it is this sandbox's), so TEST-NET-2 and -3.
UNROUTED = ("198.51.100.1", "203.0.113.7")


@pytest.fixture
def guarded():
    assert network.installed, "the network guard is not installed"
    assert socket.socket.connect is network.installed["connect"]
    assert socket.socket.connect_ex is network.installed["connect_ex"]
    assert socket.getaddrinfo is network.installed["getaddrinfo"]
    assert socket.gethostbyname is network.installed["gethostbyname"]
    before = len(network.refused)
    yield
    del network.refused[before:]  # what these tests provoke on purpose is not worth a report


@pytest.mark.parametrize("host", [*UNROUTED, "93.184.216.34", "2001:db8::1", "::ffff:198.51.100.1", "0.0.0.0"])
def test_connections_beyond_loopback_are_refused(guarded, host):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        with pytest.raises(network.NetworkRefused, match=host.replace(".", r"\.")):
            s.connect((host, 80))
        with pytest.raises(OSError, match="test network guard"):
            s.connect_ex((host, 80))
    with pytest.raises(OSError, match=host.replace(".", r"\.")):
        socket.create_connection((host, 80), timeout=0.5)


def test_udp_and_named_hosts_are_refused_too(guarded):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(network.NetworkRefused):
            s.connect((UNROUTED[0], 53))  # a UDP connect sends nothing, but the next send would
    with socket.socket() as s:
        s.settimeout(0.5)
        with pytest.raises(network.NetworkRefused, match="example.com"):
            s.connect(("example.com", 80))  # the C library would resolve the name itself


def test_lookups_of_names_are_refused(guarded):
    for lookup in (lambda: socket.getaddrinfo("example.com", 443), lambda: socket.gethostbyname("example.com"),
                   lambda: socket.gethostbyname_ex("example.com"), lambda: socket.gethostbyaddr(UNROUTED[0])):
        with pytest.raises(socket.gaierror, match="test network guard"):
            lookup()
    assert any("example.com" in what for what in network.refused)


def test_httpx_fails_before_connecting(guarded):
    import httpx

    with pytest.raises(httpx.ConnectError, match="test network guard"):
        httpx.get(f"http://{UNROUTED[1]}/", timeout=0.5, trust_env=False)
    with pytest.raises(httpx.ConnectError, match="test network guard"):
        httpx.get("http://example.com/", timeout=0.5, trust_env=False)


def test_loopback_unix_sockets_and_numeric_lookups_work(guarded, tmp_path):
    refusals = len(network.refused)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        accepted = []
        t = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
        t.start()
        with socket.create_connection(("localhost", port), timeout=30):
            t.join()
        accepted[0].close()
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) == 0
    assert {info[4][0] for info in socket.getaddrinfo("127.1", 80, type=socket.SOCK_STREAM)} == {"127.0.0.1"}
    assert socket.getaddrinfo("2130706433", 80, type=socket.SOCK_STREAM)[0][4][0] == "127.0.0.1"
    assert socket.gethostbyname("localhost").startswith("127.")
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
    assert len(network.refused) == refusals
