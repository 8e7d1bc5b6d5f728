"""The data a preference run reads: a prompt with a chosen and a rejected answer per row.

Two shapes, both normalized to ``prompt`` (the conversation before the answer: a list of
``{"role", "content"}`` messages ending with the user's) and ``chosen`` / ``rejected`` (the two
answers as text):

* ``prompt`` / ``chosen`` / ``rejected`` text columns (CSV, JSONL...);
* chat: ``chosen`` and ``rejected`` each a message list (JSONL, or JSON text in a CSV cell) that
  shares the conversation before its last assistant message; or a ``prompt`` message list with
  ``chosen`` / ``rejected`` lists holding only the assistant's answer (TRL's conversational format).

This module parses and checks one row at a time, without a tokenizer, so the messages users see
(file, row, what to change) can be tested on their own.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from studio.tasks.generation.formats import MessageError, cell_text, parse_messages, strip_index

NAMES = {
    "prompt": ("prompt", "question", "instruction", "query", "input", "context"),
    "chosen": ("chosen", "preferred", "accepted", "better", "winner", "good"),
    "rejected": ("rejected", "dispreferred", "worse", "loser", "bad"),
    "system": ("system", "system_prompt"),
}
"""Column names of each role, best first (used when data.columns leaves a role unmapped)."""


class PairError(ValueError):
    """A row that cannot be read as a pair; the message names the row and what to change."""


def _as_messages(value: Any) -> list | None:
    """The cell as a list of message objects when it holds one (a list, or JSON text of a list), else None."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        return value
    return None


def _answer(value: Any, role: str, row: int) -> tuple[list[dict[str, str]] | None, str]:
    """(the conversation before the answer, or None when the cell holds the answer alone; the answer's text)."""
    messages = _as_messages(value)
    if messages is None:
        return None, cell_text(value)
    roles = [str(m.get("role", m.get("from", ""))).strip().lower() for m in messages]
    if all(r in ("assistant", "gpt") for r in roles):  # only the answer (TRL's conversational format)
        if len(messages) > 1:
            raise PairError(f"row {row}: {role} holds {len(messages)} assistant messages; give one answer")
        content = messages[0].get("content", messages[0].get("value"))
        return None, cell_text(content)
    try:
        parsed = strip_index(parse_messages(messages, row))
    except MessageError as e:
        raise PairError(f"{role}: {e}") from None
    if parsed[-1]["role"] != "assistant":
        raise PairError(f"row {row}: the {role} conversation ends with a {parsed[-1]['role']} message; "
                        f"it must end with the {role} assistant answer")
    return parsed[:-1], parsed[-1]["content"]


def read_pair(record: dict[str, Any], mapping: dict[str, str], row: int, system: str = "") -> dict[str, Any]:
    """One row as ``{"prompt": messages, "chosen": text, "rejected": text}``; ``PairError`` says
    what is wrong. Empty answers come back empty (the caller drops and counts them)."""
    chosen_context, chosen = _answer(record.get(mapping["chosen"]), "chosen", row)
    rejected_context, rejected = _answer(record.get(mapping["rejected"]), "rejected", row)
    if chosen_context is not None and rejected_context is not None and chosen_context != rejected_context:
        raise PairError(f"row {row}: chosen and rejected do not share the same conversation before their answers; "
                        "a pair compares two answers to one prompt")
    context = chosen_context if chosen_context is not None else rejected_context
    if "prompt" in mapping:
        cell = record.get(mapping["prompt"])
        listed = _as_messages(cell)
        if listed is not None:
            try:
                prompt = strip_index(parse_messages(listed, row))
            except MessageError as e:
                raise PairError(f"prompt: {e}") from None
        else:
            text = cell_text(cell)
            prompt = [{"role": "user", "content": text}] if text else []
        if context and prompt and context != prompt[: len(context)] and prompt != context[-len(prompt):]:
            raise PairError(f"row {row}: the prompt column and the conversation in chosen/rejected differ; give one of them")
        prompt = context or prompt
    else:
        prompt = context or []
    if prompt and prompt[-1]["role"] != "user":
        raise PairError(f"row {row}: the prompt ends with an {prompt[-1]['role']} message; it must end with the user's")
    if system and prompt and prompt[0]["role"] != "system":
        prompt = [{"role": "system", "content": system}, *prompt]
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
