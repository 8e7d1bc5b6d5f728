"""Hub tokens and other credentials must never be written where the team can read them.

A run's ``config.yaml``, its events, its log and its model card are shown to every member (and
copied into exports), so a value that looks like an access token is refused where it would enter
one of them, with a message that says where tokens belong: the server's environment
(``HF_TOKEN``), which the worker inherits and nothing prints.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Iterator

# Hugging Face user/organisation access tokens ("hf_" + 30-odd letters and digits, older "api_org_").
_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?:hf_|api_org_)[A-Za-z0-9]{20,}")

TOKEN_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HF_API_TOKEN", "HUGGINGFACEHUB_API_TOKEN")
"""Environment variables that hold a hub token; their values are redacted wherever text is shown."""

REDACTED = "[redacted]"


def looks_like_token(text: Any) -> bool:
    return isinstance(text, str) and _TOKEN.search(text) is not None


def token_keys(data: Any, prefix: str = "") -> Iterator[str]:
    """Dotted keys of ``data`` (nested dicts and lists) whose value holds something token-like."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from token_keys(value, f"{prefix}{key}.")
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            yield from token_keys(value, f"{prefix}{i}.")
    elif looks_like_token(data):
        yield prefix[:-1] or "value"


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of the token variables set in the environment (long enough to be real secrets)."""
    env = os.environ if environ is None else environ
    return [value for name in TOKEN_ENV if len(value := env.get(name, "").strip()) >= 8]


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with token-like strings and the environment's token values replaced."""
    for value in [*secret_values(), *extra]:
        if value:
            text = text.replace(value, REDACTED)
    return _TOKEN.sub(REDACTED, text)
