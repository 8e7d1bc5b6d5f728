"""The keys of ``task:`` for generation: a system prompt and a template for the user message."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Optional

from studio.errors import ConfigError

PROMPT_FIELDS = ("prompt", "instruction", "input")
"""Placeholders of ``task.prompt_template``."""


@dataclass
class GenerationOptions:
    system_prompt: Optional[str] = None
    """A system message put before every example that has none of its own."""
    prompt_template: Optional[str] = None
    """How a row becomes the user message, e.g. 'Summarize:\\n{prompt}' ({prompt}, {instruction}, {input}; not for chat data)."""

    def __post_init__(self) -> None:
        check_template(self.prompt_template)


def check_template(template: str | None) -> None:
    """Refuse a template that would fail on every row, or give every row the same prompt."""
    if template is None:
        return
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as e:
        raise ConfigError(f"bad value for 'task.prompt_template': {e}; write a literal brace as {{{{ or }}}}") from None
    unknown = sorted({name for name in fields if name not in PROMPT_FIELDS})
    if unknown:
        raise ConfigError(
            f"bad value for 'task.prompt_template': unknown placeholder {{{unknown[0]}}}; "
            f"use {', '.join('{' + f + '}' for f in PROMPT_FIELDS)} (a literal brace is written {{{{ or }}}})"
        )
    if not fields:
        raise ConfigError("bad value for 'task.prompt_template': it has no placeholder, so every prompt would be the same; "
                          "put {prompt} where the row's text goes")
