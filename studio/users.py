"""Accounts for a shared studio: a users file in the workspace with slow, salted password hashes.

Passwords are hashed with scrypt (hashlib, memory-hard) and a random salt per user; the file is
written atomically with owner-only permissions. Roles: ``admin`` (manage users, settings, the
queue, any run) and ``member`` (own runs; read-only view of the team's).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from studio.errors import StudioError

Role = Literal["admin", "member"]
ROLES: tuple[str, ...] = ("admin", "member")
USERS_FILE = "users.json"
MIN_PASSWORD_LENGTH = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# scrypt cost: 2^15 x 8 x 1 needs 32 MiB and ~0.1 s a check, slow enough against guessing.
_N, _R, _P = 2**15, 8, 1


class UserError(StudioError):
    kind = "users"


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _hash(password: str, salt: bytes, n: int = _N, r: int = _R, p: int = _P) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def _encode(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _hash(password, salt)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${_N}${_R}${_P}${b64(salt)}${b64(digest)}"


def _matches(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _hash(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash of a random password: checking unknown names costs the same time as known ones.
_DUMMY = None


class UserStore:
    def __init__(self, workspace_root: str | Path):
        self.path = Path(workspace_root) / USERS_FILE

    def _load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            raise UserError(f"the users file {self.path.name} is damaged (not JSON); restore it from a backup") from None
        return data.get("users", {})

    def _save(self, users: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".users-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"users": users}, f, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self) -> bool:
        return bool(self._load())

    def list(self) -> list[User]:
        return [User(name, entry["role"]) for name, entry in sorted(self._load().items())]

    def get(self, name: str) -> User | None:
        entry = self._load().get(name)
        return User(name, entry["role"]) if entry else None

    def stamps(self) -> dict[str, str]:
        """Each user's stamp: a digest of the name, role and password hash. A sign-in remembers
        its user's stamp, so removing a user or changing a password or role ends every sign-in
        of that user at once (in a running server too, which reads the file again)."""
        return {name: _stamp(name, entry) for name, entry in self._load().items()}

    def add(self, name: str, password: str, role: str = "member") -> User:
        if not _NAME.match(name):
            raise UserError(f"user name {name!r} is not allowed: use letters, digits, '.', '_' or '-' (at most 64)")
        if role not in ROLES:
            raise UserError(f"role {role!r} does not exist; choose one of: {', '.join(ROLES)}")
        _check_password(password)
        users = self._load()
        if name in users:
            raise UserError(f"user {name!r} already exists; use 'studio users passwd {name}' to change the password")
        users[name] = {"role": role, "password": _encode(password), "created": int(time.time())}
        self._save(users)
        return User(name, role)  # type: ignore[arg-type]

    def remove(self, name: str) -> None:
        users = self._load()
        if name not in users:
            raise UserError(f"no user {name!r}")
        if users[name]["role"] == "admin" and sum(u["role"] == "admin" for u in users.values()) == 1 and len(users) > 1:
            raise UserError(f"{name!r} is the last admin; make another user admin first")
        del users[name]
        self._save(users)

    def set_password(self, name: str, password: str) -> None:
        _check_password(password)
        users = self._load()
        if name not in users:
            raise UserError(f"no user {name!r}")
        users[name]["password"] = _encode(password)
        self._save(users)

    def set_role(self, name: str, role: str) -> None:
        if role not in ROLES:
            raise UserError(f"role {role!r} does not exist; choose one of: {', '.join(ROLES)}")
        users = self._load()
        if name not in users:
            raise UserError(f"no user {name!r}")
        users[name]["role"] = role
        self._save(users)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the password is right, else None (in the same time either way)."""
        global _DUMMY
        entry = self._load().get(name)
        if entry is None:
            _DUMMY = _DUMMY or _encode(secrets.token_urlsafe(16))
            _matches(password, _DUMMY)
            return None
        return User(name, entry["role"]) if _matches(password, entry["password"]) else None


def _stamp(name: str, entry: dict) -> str:
    text = "\0".join((name, str(entry.get("role")), str(entry.get("password"))))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
