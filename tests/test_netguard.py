"""Remote-media guard: address classification as a pure function, fetching through injected parts only.

No test here contacts any address but loopback: resolution is injected, and real requests go only to
a trap server on 127.0.0.1."""
from __future__ import annotations

import pytest

from qwen3_vl_embedding.errors import LimitError, MediaError, MediaPolicyError
from qwen3_vl_embedding.media import MediaPolicy
from qwen3_vl_embedding.netguard import forbidden_reason, guarded_get


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "0.0.0.0", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "169.254.10.10", "100.64.0.1", "100.100.100.200", "224.0.0.1", "239.255.255.250", "255.255.255.255",
    "192.0.0.8", "198.18.0.1", "240.0.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "::127.0.0.1", "2001:db8::1",
])
def test_forbidden_addresses(address):
    assert forbidden_reason(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111",
                                     "::ffff:8.8.8.8"])
def test_public_addresses(address):
    assert forbidden_reason(address) is None


def recorder(mapping):
    """An injected resolver: returns the given addresses and records what was asked."""
    asked = []

    def resolve(host, port):
        asked.append((host, port))
        return mapping[host]
    resolve.asked = asked
    return resolve


@pytest.mark.parametrize("url,resolved", [
    ("http://internal.example/x.png", ["10.1.2.3"]),
    ("http://2130706433/x.png", ["127.0.0.1"]),  # decimal notation, as the system resolver reads it
    ("http://0x7f000001/x.png", ["127.0.0.1"]),  # hex notation
    ("http://[::ffff:7f00:1]/x.png", ["::ffff:127.0.0.1"]),
    ("http://metadata.example/latest", ["169.254.169.254"]),
    ("http://mixed.example/x", ["93.184.216.34", "10.0.0.5"]),  # any bad answer refuses
])
def test_private_hosts_are_refused_before_any_connection(url, resolved):
    from urllib.parse import urlsplit

    import httpx

    host = urlsplit(url).hostname
    resolve = recorder({host: resolved})
    contacted = []
    transport = httpx.MockTransport(lambda request: contacted.append(request.url) or httpx.Response(200))
    policy = MediaPolicy(block_private=True, resolver=resolve, transport=transport)
    with pytest.raises(MediaPolicyError, match="refused"):
        guarded_get(url, policy, 1000)
    assert contacted == [] and resolve.asked


def test_redirect_to_a_private_address_is_refused():
    import httpx

    resolve = recorder({"public.example": ["93.184.216.34"], "evil.example": ["127.0.0.1"]})
    contacted = []

    def handler(request):
        contacted.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://evil.example/secret"})

    policy = MediaPolicy(block_private=True, resolver=resolve, transport=httpx.MockTransport(handler))
    with pytest.raises(MediaPolicyError, match="refused"):
        guarded_get("http://public.example/a.png", policy, 1000)
    assert contacted == ["http://93.184.216.34/a.png"]  # connected to the checked address only


def test_pinned_request_carries_the_host_header_and_limits():
    import httpx

    seen = {}

    def handler(request):
        seen["host"] = request.headers["host"]
        return httpx.Response(200, content=b"x" * 5000)

    resolve = recorder({"cdn.example": ["93.184.216.34"]})
    policy = MediaPolicy(block_private=True, resolver=resolve, transport=httpx.MockTransport(handler))
    body = guarded_get("http://cdn.example/a.png", policy, 10_000)
    assert body == b"x" * 5000 and seen["host"] == "cdn.example"
    with pytest.raises(LimitError):
        guarded_get("http://cdn.example/a.png", policy, 100)


def test_too_many_redirects_and_bad_schemes():
    import httpx

    resolve = recorder({"loop.example": ["93.184.216.34"]})
    transport = httpx.MockTransport(lambda r: httpx.Response(302, headers={"location": "/again"}))
    with pytest.raises(MediaPolicyError, match="redirects"):
        guarded_get("http://loop.example/", MediaPolicy(block_private=True, max_redirects=3, resolver=resolve,
                                                        transport=transport), 10)
    with pytest.raises(MediaPolicyError, match="http"):
        guarded_get("ftp://x.example/a", MediaPolicy(block_private=True, resolver=resolve), 10)
    with pytest.raises(MediaPolicyError, match="credentials"):
        guarded_get("http://user:pw@x.example/a", MediaPolicy(block_private=True, resolver=resolve), 10)


def test_http_errors_are_media_errors():
    import httpx

    resolve = recorder({"x.example": ["93.184.216.34"]})
    with pytest.raises(MediaError, match="404"):
        guarded_get("http://x.example/a", MediaPolicy(block_private=True, resolver=resolve,
                                                      transport=httpx.MockTransport(lambda r: httpx.Response(404))), 10)


# one way out: the policy's resolver and transport ----------------------------------------------------------
def test_every_fetch_resolves_and_connects_through_the_policy_even_without_block_private():
    """httpx never resolves a name itself: the request goes to the address the policy's resolver gave."""
    import httpx

    resolve = recorder({"cdn.example": ["93.184.216.34"]})
    seen = []
    transport = httpx.MockTransport(lambda r: seen.append((r.url.host, r.headers["host"])) or
                                    httpx.Response(200, content=b"png"))
    policy = MediaPolicy(block_private=False, resolver=resolve, transport=transport)
    assert guarded_get("http://cdn.example:8080/a.png", policy, 100) == b"png"
    assert resolve.asked == [("cdn.example", 8080)] and seen == [("93.184.216.34", "cdn.example:8080")]


def test_without_injected_parts_the_one_resolver_is_netguard_system_resolver(monkeypatch):
    """The library's default policy reaches names only through `netguard.system_resolver` (the suite can
    replace that one function), and fetch_url goes through guarded_get."""
    from qwen3_vl_embedding import netguard
    from qwen3_vl_embedding.media import DEFAULT_POLICY, fetch_url

    asked = []

    def refuse(host, port):
        asked.append((host, port))
        raise OSError("no resolution in this test")

    monkeypatch.setattr(netguard, "system_resolver", refuse)
    assert netguard.endpoints(DEFAULT_POLICY) == (refuse, None)
    with pytest.raises(MediaError, match="cannot resolve host 'media.example'"):
        fetch_url("https://media.example/cat.png", DEFAULT_POLICY, 1000)
    assert asked == [("media.example", 443)]


def test_the_embedder_fetches_urls_through_its_policys_parts(tiny_model_dir, media):
    import httpx

    from qwen3_vl_embedding import Qwen3VLEmbedder

    with open(media["noise.png"], "rb") as f:
        image = f.read()
    resolve = recorder({"img.example": ["93.184.216.34"]})
    seen = []
    transport = httpx.MockTransport(lambda r: seen.append(str(r.url)) or httpx.Response(200, content=image))
    embedder = Qwen3VLEmbedder(tiny_model_dir, media_policy=MediaPolicy(resolver=resolve, transport=transport),
                               workers=1)
    fetched = embedder.embed([{"image": "http://img.example/noise.png"}])
    assert seen and all(url == "http://93.184.216.34/noise.png" for url in seen)
    assert abs(fetched - embedder.embed([{"image": media["noise.png"]}])).max() < 1e-5
