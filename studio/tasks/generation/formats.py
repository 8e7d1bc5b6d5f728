"""The data a text-generation run reads: three input shapes, the column names that identify each,
and one row's chat messages parsed and checked.

Every row becomes one conversation (``{"role", "content"}`` messages, roles system / user /
assistant). This module knows what user files look like and explains what is wrong with them;
it needs no tokenizer or model, so the parsing can be tested (and reused) on its own.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

ROLES = ("system", "user", "assistant")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}

# Column names of each format, best first (used when data.columns leaves a role unmapped).
NAMES = {
    "messages": ("messages", "conversations", "conversation", "chat", "dialogue", "dialog", "turns"),
    "instruction": ("instruction", "instructions", "task"),
    "input": ("input", "context"),
    "output": ("output", "response", "answer"),
    "prompt": ("prompt", "question", "source", "src", "input", "query", "text", "article", "document", "passage"),
    "completion": ("completion", "response", "answer", "target", "tgt", "output", "summary", "translation",
                   "reference", "label"),
    "system": ("system", "system_prompt"),
}
FORMATS = {
    "prompt_completion": ("prompt", "completion"),
    "alpaca": ("instruction", "input", "output"),
    "chat": ("messages",),
}
"""Format -> its roles; the first role(s) of each are required (``input`` is optional)."""
REQUIRED = {"prompt_completion": ("prompt", "completion"), "alpaca": ("instruction", "output"), "chat": ("messages",)}
TARGET = {"prompt_completion": "completion", "alpaca": "output"}


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def cell_text(value: Any) -> str:
    """A cell as stripped text: '' for empty cells and NaN, whole floats without '.0'."""
    if _empty(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# ---- chat messages ---------------------------------------------------------------------------

class MessageError(ValueError):
    """A malformed conversation; the message names the row and the message."""


def parse_messages(value: Any, row: int) -> list[dict[str, str]]:
    """One row's conversation as a list of ``{"role", "content"}``; ``MessageError`` names the fault.

    Accepts a list (JSONL), JSON text (a CSV cell), ``{"messages": [...]}``, ShareGPT's
    ``from``/``value`` keys, and OpenAI-style content parts (``[{"type": "text", "text": ...}]``).
    Order rules: an optional system message first, then user and assistant turns alternating,
    starting with the user.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise MessageError(f"row {row}: the messages cell is empty")
        try:
            value = json.loads(text)
        except ValueError as e:
            value = _python_literal(text)  # a list written by Python's print (single quotes)
            if value is not None:
                return parse_messages(value, row)
            raise MessageError(f"row {row}: messages is not valid JSON ({getattr(e, 'msg', e)} at character "
                               f"{getattr(e, 'pos', 0) + 1}); write a list like "
                               '[{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]') from None
    if isinstance(value, dict) and isinstance(value.get("messages", value.get("conversations")), (list, np.ndarray)):
        value = value.get("messages", value.get("conversations"))
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list):
        raise MessageError(f"row {row}: messages must be a list of {{role, content}} objects, not {type(value).__name__}")
    if not value:
        raise MessageError(f"row {row}: the conversation has no messages")
    messages: list[dict[str, str]] = []
    for i, item in enumerate(value, start=1):
        where = f"row {row}, message {i}"
        if not isinstance(item, dict):
            raise MessageError(f"{where}: expected an object with role and content, got {str(item)[:40]!r}")
        sharegpt = "role" not in item and "from" in item
        role_key, content_key = ("from", "value") if sharegpt else ("role", "content")
        if role_key not in item:
            raise MessageError(f"{where}: no 'role' (keys found: {', '.join(map(str, item)) or 'none'})")
        if content_key not in item:
            raise MessageError(f"{where}: no '{content_key}' (keys found: {', '.join(map(str, item))})")
        raw_role = str(item[role_key]).strip().lower()
        role = _SHAREGPT_ROLES.get(raw_role) if sharegpt else (raw_role if raw_role in ROLES else None)
        if role is None:
            allowed = "human, gpt or system" if sharegpt else "system, user or assistant"
            raise MessageError(f"{where}: unknown role {item[role_key]!r}; use {allowed}")
        content = item[content_key]
        if isinstance(content, (list, np.ndarray)):  # content parts: keep the text ones
            parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
            if len(parts) != len(content) or not all(isinstance(p, str) for p in parts):
                raise MessageError(f"{where}: content parts other than text are not supported")
            content = "".join(parts)
        if content is not None and not isinstance(content, (str, int, float)):
            raise MessageError(f"{where}: content must be text, not {type(content).__name__}")
        messages.append({"role": role, "content": cell_text(content), "_index": i})  # type: ignore[dict-item]

    for position, message in enumerate(messages):
        i = message["_index"]
        if message["role"] == "system" and position != 0:
            raise MessageError(f"row {row}, message {i}: a system message can only come first")
    turns = [m for m in messages if m["role"] != "system"]
    if not turns:
        raise MessageError(f"row {row}: the conversation has only a system message")
    if turns[0]["role"] != "user":
        raise MessageError(f"row {row}, message {turns[0]['_index']}: the conversation starts with an assistant message; "
                           "it must start with a user message (after an optional system message)")
    for before, message in zip(turns, turns[1:]):
        if message["role"] == before["role"]:
            raise MessageError(f"row {row}, messages {before['_index']}-{message['_index']}: two {message['role']} messages "
                               "in a row; merge them, or put the other side's reply between them")
    for message in turns:
        if message["role"] == "user" and not message["content"]:
            raise MessageError(f"row {row}, message {message['_index']}: the user message is empty")
    if messages[0]["role"] == "system" and not messages[0]["content"]:
        messages = messages[1:]
    return messages


def _python_literal(text: str) -> Any:
    import ast

    if not text.startswith("["):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, list) else None


def strip_index(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """``parse_messages``' messages without the position it keeps for error messages."""
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def split_last_turn(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str | None]:
    """(the conversation before the last assistant message, that message) — the prompt and the
    reference of an evaluation. Without an assistant message: (the conversation, None)."""
    for k in range(len(messages) - 1, -1, -1):
        if messages[k]["role"] == "assistant":
            return messages[:k], messages[k]["content"]
    return list(messages), None
