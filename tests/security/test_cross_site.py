"""Cross-site requests against a running server: another site's page gets nothing with a user's
cookie (no CORS grant, no answer), the site an admin listed does, and the server's own page works."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.security.conftest import ALLOWED_ORIGIN, exchange, login

FOREIGN = ["http://evil.example", "https://studio.example.com.evil.example", "null", "http://127.0.0.1:1",
           "http://localhost.evil.example"]


def header(headers, name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name.lower()), None)


@pytest.mark.parametrize("origin", FOREIGN)
@pytest.mark.parametrize("host", [None, "studio.example.com"])
def test_another_sites_page_gets_no_grant_and_no_answer(secured, origin, host):
    url = secured["url"]
    cookie = login(url, "alice")
    extra = {"Host": host} if host else {}
    # A preflight is not granted...
    status, headers, _ = exchange(url, "/gradio_api/queue/join", "OPTIONS",
                                  headers={"Origin": origin, "Access-Control-Request-Method": "POST", **extra})
    assert header(headers, "access-control-allow-origin") is None, (origin, headers)
    # ...and a request with the cookie gets neither an answer nor a grant.
    for method, path in (("GET", "/config"), ("GET", f"/download/{secured['alice_run'].name}/config"),
                         ("POST", "/gradio_api/queue/join")):
        status, headers, body = exchange(url, path, method, b"{}" if method == "POST" else None,
                                         {"Origin": origin, "Content-Type": "application/json", **extra}, cookie=cookie)
        assert status == 403, (origin, path, status)
        assert header(headers, "access-control-allow-origin") is None
        assert b"text_classification" not in body and b"components" not in body


def test_the_servers_own_page_and_the_allowed_site_work(secured):
    url = secured["url"]
    cookie = login(url, "alice")
    port = urllib.parse.urlparse(url).port
    for origin, host in ((url, None), (f"http://studio.example.com:{port}", f"studio.example.com:{port}")):
        status, _, body = exchange(url, "/config", headers={"Origin": origin, **({"Host": host} if host else {})},
                                   cookie=cookie)
        assert status == 200 and b"components" in body, origin
    status, headers, _ = exchange(url, "/gradio_api/queue/join", "OPTIONS",
                                  headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert status == 200 and header(headers, "access-control-allow-origin") == ALLOWED_ORIGIN
    status, headers, _ = exchange(url, "/config", headers={"Origin": ALLOWED_ORIGIN}, cookie=cookie)
    assert status == 200 and header(headers, "access-control-allow-origin") == ALLOWED_ORIGIN
    assert header(headers, "access-control-allow-credentials") == "true"


def test_secure_cookie_over_https_or_behind_a_proxy(tmp_path):
    from studio.web.gate import Gate

    plain = Gate(tmp_path, tmp_path / "cache", 2**20)
    assert "Secure" not in plain.cookie("t", "http") and "; Secure" in plain.cookie("t", "https")
    proxied = Gate(tmp_path, tmp_path / "cache", 2**20, behind_https=True)
    assert "; Secure" in proxied.cookie("t", "http") and "SameSite=Lax" in proxied.cookie("t", "http")
    # Behind the proxy, the page's origin is the proxy's host.
    assert proxied.foreign_origin({"origin": "https://studio.example.com", "host": "127.0.0.1:7860",
                                   "x-forwarded-host": "studio.example.com"}) is None
    assert proxied.foreign_origin({"origin": "https://evil.example", "host": "127.0.0.1:7860",
                                   "x-forwarded-host": "studio.example.com"}) == "https://evil.example"
