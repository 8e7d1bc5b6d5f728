"""'studio serve' defaults: loopback unless told, and no open network port without accounts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.servers import free_port, start_server, stop, wait_until_up


def test_loopback_addresses():
    from studio.web.server import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "studio.example.com"))


def test_check_exposure(capsys):
    from studio.errors import StudioError
    from studio.web.server import check_exposure

    check_exposure("127.0.0.1", has_users=False, insecure=False)
    check_exposure("0.0.0.0", has_users=True, insecure=False)
    with pytest.raises(StudioError, match="studio users add admin --role admin"):
        check_exposure("0.0.0.0", has_users=False, insecure=False)
    check_exposure("0.0.0.0", has_users=False, insecure=True)
    assert "WITHOUT LOGIN" in capsys.readouterr().err


def test_serve_refuses_the_network_without_accounts(tmp_path):
    result = subprocess.run([sys.executable, "-m", "studio", "--workspace", str(tmp_path / "ws"), "serve", "--host", "0.0.0.0",
                             "--port", str(free_port())], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without accounts" in result.stderr


def test_serve_defaults_to_loopback(tmp_path):
    import psutil

    port = free_port()
    log = tmp_path / "server.log"
    process = start_server(tmp_path / "ws", port, log)
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}/", log)
        addresses = {c.laddr.ip for c in psutil.Process(process.pid).net_connections("inet") if c.status == psutil.CONN_LISTEN}
        assert addresses == {"127.0.0.1"}, addresses
    finally:
        stop(process)
