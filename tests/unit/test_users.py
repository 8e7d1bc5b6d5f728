import json
import os
import stat

import pytest

from studio.cli import main
from studio.users import UserError, UserStore


def test_add_authenticate_and_roles(tmp_path):
    store = UserStore(tmp_path)
    assert not store.exists()
    store.add("alice", "correct horse", "admin")
    store.add("bob", "battery staple")
    assert store.authenticate("alice", "correct horse").is_admin
    assert store.authenticate("bob", "battery staple").role == "member"
    assert store.authenticate("bob", "wrong password") is None
    assert store.authenticate("nobody", "battery staple") is None
    assert [u.name for u in store.list()] == ["alice", "bob"]


def test_file_holds_salted_slow_hashes_only(tmp_path):
    store = UserStore(tmp_path)
    store.add("a", "same password")
    store.add("b", "same password")
    text = (tmp_path / "users.json").read_text()
    assert "same password" not in text
    users = json.loads(text)["users"]
    assert users["a"]["password"].startswith("scrypt$") and users["a"]["password"] != users["b"]["password"]
    assert stat.S_IMODE(os.stat(tmp_path / "users.json").st_mode) == 0o600


@pytest.mark.parametrize("action, message", [
    (lambda s: s.add("x", "short"), "too short"),
    (lambda s: s.add("../etc", "long enough"), "not allowed"),
    (lambda s: s.add("x", "long enough", "root"), "role 'root'"),
    (lambda s: s.set_password("ghost", "long enough"), "no user"),
    (lambda s: s.remove("ghost"), "no user"),
])
def test_bad_requests(tmp_path, action, message):
    with pytest.raises(UserError, match=message):
        action(UserStore(tmp_path))


def test_last_admin_cannot_be_removed_while_others_remain(tmp_path):
    store = UserStore(tmp_path)
    store.add("root", "long enough", "admin")
    store.add("m", "long enough")
    with pytest.raises(UserError, match="last admin"):
        store.remove("root")
    store.set_role("m", "admin")
    store.remove("root")


def test_users_cli(tmp_path, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["users", "add", "carol", "--role", "admin", "--password-stdin", "--workspace", str(tmp_path)]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("another password\n"))
    assert main(["users", "passwd", "carol", "--password-stdin", "--workspace", str(tmp_path)]) == 0
    assert UserStore(tmp_path / "").authenticate("carol", "another password")
    assert main(["users", "list", "--workspace", str(tmp_path)]) == 0
    assert "carol" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("tiny\n"))
    assert main(["users", "add", "dan", "--password-stdin", "--workspace", str(tmp_path)]) == 2
    assert "too short" in capsys.readouterr().err
