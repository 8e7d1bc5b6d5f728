"""A run's files against a running server: only its owner and admins download them, through the
one checked route; nothing is left in a folder other users could reach, no file route serves an
export by any spelling, and members are not shown the server's paths."""

from __future__ import annotations

import io
import json
import time
import urllib.parse
import zipfile

import pytest

from tests.security.conftest import SECRETS, login, request


def test_the_owner_and_an_admin_download_each_file_and_nothing_stays(secured):
    url, run = secured["url"], secured["alice_run"]
    exports = secured["workspace"] / "cache" / "exports"
    for name in ("alice", "root"):
        cookie = login(url, name)
        status, body = request(url, f"/download/{run.name}/model", cookie=cookie)
        assert status == 200
        names = zipfile.ZipFile(io.BytesIO(body)).namelist()
        assert "model/model.safetensors" in names and "config.yaml" in names
        status, body = request(url, f"/download/{run.name}/config", cookie=cookie)
        assert status == 200 and b"text_classification" in body
    # Each download was built for its request and deleted once sent (just after its last byte).
    deadline = time.time() + 5
    while (leftovers := [p for p in exports.rglob("*") if p.is_file()]) and time.time() < deadline:
        time.sleep(0.05)
    assert leftovers == []
    status, body = request(url, f"/download/{run.name}/predictions", cookie=login(url, "alice"))
    assert status == 404 and b"no predictions" in body
    status, _ = request(url, f"/download/{run.name}/..%2f..%2fusers.json", cookie=login(url, "alice"))
    assert status in (403, 404)


@pytest.mark.parametrize("run_path", ["20260101-000000-alice-run-0000abcd", "..%2f20260101-000000-alice-run-0000abcd",
                                      "nonexistent-run"])
def test_a_member_gets_nothing_of_another_members_run(secured, run_path):
    url = secured["url"]
    cookie = login(url, "bob")
    for kind in ("model", "config", "predictions"):
        status, body = request(url, f"/download/{run_path}/{kind}", cookie=cookie)
        assert status in (403, 404), (run_path, kind, status)
        assert not any(secret in body for secret in SECRETS) and b"text_classification" not in body


def test_no_file_route_serves_a_run_or_an_export_by_any_spelling(secured):
    """What the review did (old route, '://' in the path, encodings) and more, for a file that exists."""
    url, workspace, run = secured["url"], secured["workspace"], secured["alice_run"]
    # A file sitting where exports used to be kept, and the run's own files.
    stale = workspace / "cache" / "exports" / run.name / f"{run.name}-model.zip"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"SECRET-MODEL zip")
    exports = workspace / "cache" / "exports"
    targets = [stale, run / "model" / "model.safetensors", run / "config.yaml"]
    cookie = login(url, "bob")
    for target in targets:
        absolute = str(target)
        relative = target.relative_to(workspace / "runs") if workspace / "runs" in target.parents else target.relative_to(exports)
        encoded = urllib.parse.quote(absolute, safe="")
        spellings = [
            f"/gradio_api/file/{absolute.lstrip('/')}", f"/gradio_api/file/{absolute}", f"/file/{absolute.lstrip('/')}",
            f"/gradio_api/file={absolute}", f"/file={absolute}", f"/gradio_api/file={encoded}",
            f"/gradio_api/file={encoded.replace('%', '%25')}", f"/gradio_api/file={encoded.replace('%', '%2525')}",
            f"/gradio_api/file={exports}/a://../{relative}", f"/gradio_api/file={exports}/a://../../runs/{relative}",
            f"/gradio_api/file={exports}/a%3a%2f%2f..%2f{urllib.parse.quote(str(relative), safe='')}",
            f"/gradio_api/file=/tmp/../{absolute.lstrip('/')}", f"/gradio_api/file=/tmp/gradio/../../{absolute.lstrip('/')}",
            f"/gradio_api/file=file://{absolute}", f"/gradio_api/file=http://127.0.0.1/{absolute}",
        ]
        for path in spellings:
            status, body = request(url, path, cookie=cookie)
            assert status in (403, 404), (path, status, body[:100])
            assert not any(secret in body for secret in SECRETS), path


def test_members_see_no_server_path(secured):
    url, workspace = secured["url"], str(secured["workspace"]).encode()
    for name in ("bob", "alice"):
        cookie = login(url, name)
        for path in ("/config", "/gradio_api/info"):
            status, body = request(url, path, cookie=cookie)
            assert status == 200 and workspace not in body, (name, path)
    # The footer is filled when the page loads, by role.
    from gradio_client import Client

    from tests.security.conftest import PASSWORDS

    client = Client(url + "/", auth=("bob", PASSWORDS["bob"]), verbose=False, download_files=False)
    assert workspace.decode() not in json.dumps(client.view_api(return_format="dict", print_info=False))


def test_the_footer_names_the_folder_for_admins_only(tmp_path):
    from types import SimpleNamespace

    from studio.ui.app import footer_html

    services = SimpleNamespace(workspace=SimpleNamespace(root=tmp_path / "ws<b>"))
    member = footer_html(services, SimpleNamespace(username="bob<i>"), admin=False)
    assert str(tmp_path) not in member and "bob&lt;i&gt;" in member and 'href="/logout"' in member
    admin = footer_html(services, SimpleNamespace(username="root"), admin=True)
    assert "ws&lt;b&gt;" in admin
