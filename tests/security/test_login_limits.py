"""Guessing passwords against a running server: a few failures lock the account (and the address)
with a growing wait and 429, the server stays fast for everyone else meanwhile, and an admin sees
and clears the lockout from the command line."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.parse

from tests.conftest import REPO
from tests.security.conftest import PASSWORDS, exchange, login, request


def try_login(url: str, name: str, password: str) -> tuple[int, dict]:
    body = urllib.parse.urlencode({"username": name, "password": password}).encode()
    status, headers, _ = exchange(url, "/login", "POST", body, {"Content-Type": "application/x-www-form-urlencoded"})
    return status, {k.lower(): v for k, v in headers}


def users_command(workspace, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "studio", "users", *args, "--workspace", str(workspace)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_guessing_locks_the_account_and_others_stay_fast(secured):
    url, workspace = secured["url"], secured["workspace"]
    cookie = login(url, "bob")
    baseline = []
    for _ in range(5):
        start = time.perf_counter()
        assert request(url, "/config", cookie=cookie)[0] == 200
        baseline.append(time.perf_counter() - start)

    # 12 wrong passwords for alice at once, while bob keeps using the app.
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(try_login(url, "alice", "wrong-password")[0])) for _ in range(12)]
    for thread in threads:
        thread.start()
    during = []
    while any(thread.is_alive() for thread in threads):
        start = time.perf_counter()
        assert request(url, "/config", cookie=cookie)[0] == 200
        during.append(time.perf_counter() - start)
    for thread in threads:
        thread.join()
    assert sorted(set(results)) == [401, 429], results
    assert results.count(401) <= 5, "no more than the account's limit of password checks"
    # Bob's requests stayed fast: none waited behind the password checks (before: 0.94 s).
    assert max(during, default=0) < max(0.5, 5 * max(baseline)), (during, baseline)

    # Locked: even the right password waits, told how long.
    status, headers = try_login(url, "alice", PASSWORDS["alice"])
    assert status == 429 and int(headers["retry-after"]) > 0
    # Unknown names are treated alike (no hint that an account exists).
    statuses = [try_login(url, "nobody-here", "wrong-password")[0] for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429

    listed = users_command(workspace, "lockouts")
    assert "alice" in listed and "locked for" in listed and "nobody-here" in listed
    assert "cleared" in users_command(workspace, "unlock", "alice")
    assert try_login(url, "alice", PASSWORDS["alice"])[0] == 200
    users_command(workspace, "unlock", "nobody-here")
    users_command(workspace, "unlock", "--address", "127.0.0.1")


def test_the_sign_in_form_takes_no_large_body(secured):
    """Anyone may post to /login: a large body is refused before it is read, declared or not."""
    url = secured["url"]
    body = b"username=bob&password=" + b"x" * (2 * 2**20)
    status, _, answer = exchange(url, "/login", "POST", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413 and b"user name and a password only" in answer

    def chunks():
        yield b"username=bob&password="
        for _ in range(64):
            yield b"x" * 65536

    import http.client

    parsed = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    conn.request("POST", "/login", body=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"},
                 encode_chunked=True)
    assert conn.getresponse().status == 413
    conn.close()


def test_the_page_says_what_happened(secured):
    url = secured["url"]
    form = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
    body = urllib.parse.urlencode({"username": "bob", "password": "wrong-password"}).encode()
    status, _, page = exchange(url, "/login?next=//evil.example/", "POST", body, form)
    assert status == 401 and b"do not match" in page and b'name="password"' in page and b'value="bob"' in page
    # Success goes back where the user was going, never to another site.
    body = urllib.parse.urlencode({"username": "bob", "password": PASSWORDS["bob"]}).encode()
    for target, expected in (("//evil.example/", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/"),
                             ("/?tab=runs", "/?tab=runs")):
        status, headers, _ = exchange(url, f"/login?next={urllib.parse.quote(target, safe='')}", "POST", body, form)
        assert status == 303 and dict((k.lower(), v) for k, v in headers)["location"] == expected, target
    users_command(secured["workspace"], "unlock", "bob")
