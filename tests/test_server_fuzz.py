"""A bounded schemathesis run over the OpenAPI document of a real server on 127.0.0.1: never a 500.

The server is the main test server (remote media off, one readable folder), so generated URLs and
paths are refused or missing, never fetched."""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from server_fixtures import API_KEY  # noqa: E402

pytestmark = pytest.mark.slow  # schemathesis over every endpoint
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def api_schema(main_server):
    return schemathesis.openapi.from_dict(main_server.app.openapi())


@pytest.fixture(scope="module")
def session():
    import requests

    s = requests.Session()
    s.trust_env = False  # loopback only, whatever the environment's proxies
    yield s
    s.close()


ERROR_KEYS = {"/v1/rerank": {"error", "message"}, "/v2/rerank": {"error", "message"}, "/rerank": {"error", "message"},
              "/v2/embed": {"message"}, "/v1/embed": {"message"}, "/embed": {"error", "error_type"}}


@pytest.mark.parametrize("method,path", [("POST", "/v1/embeddings"), ("POST", "/v1/rerank"), ("POST", "/v1/search"),
                                         ("GET", "/v1/models"), ("GET", "/health"), ("POST", "/v2/rerank"),
                                         ("POST", "/rerank"), ("POST", "/score"), ("POST", "/v2/embed"),
                                         ("POST", "/v1/embed"), ("POST", "/embed"), ("GET", "/info")])
def test_no_request_makes_a_500(method, path, api_schema, main_server, session):
    from hypothesis import given

    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(base_url=main_server.url, headers=AUTH, session=session, timeout=30)
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == ERROR_KEYS.get(path, {"error"}), body
            if isinstance(body.get("error"), dict):
                assert set(body["error"]) == {"message", "type", "param", "code"}

    check()
    assert main_server.thread.is_alive()
