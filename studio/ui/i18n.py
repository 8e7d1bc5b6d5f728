"""The studio's two languages, English and Simplified Chinese.

Every string the page shows comes from ``assets/i18n/<lang>.json`` through ``t(key, lang, **kwargs)``.
While the app is built, ``t`` returns the English text and remembers which key made it; ``Translator``
then finds every component whose label, info, placeholder or text came from a key, and re-labels
them all when the page loads (in the browser's language, or the one picked before) and when the
language switch at the top of the page changes. Handlers call ``t(key)`` without a language: it is
the one the browser that made the request chose, kept per session (and in ``gr.BrowserState``).
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT = "en"
GRADIO_LOCALES = {"en": "en", "zh": "zh-CN"}
"""Gradio's own name for each language (its built-in texts: the upload box, status words)."""
STRINGS_DIR = Path(__file__).resolve().parents[2] / "assets" / "i18n"

_session_lang: dict[str, str] = {}
_lock = threading.Lock()
_built: dict[str, tuple[str, dict[str, Any]]] = {}  # English text made while building -> (key, kwargs)


@lru_cache(maxsize=None)
def strings(lang: str) -> dict[str, str]:
    return json.loads((STRINGS_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def t(key: str, lang: str | None = None, /, **kwargs: Any) -> str:
    """The text for ``key`` in ``lang`` (the current request's language when None), formatted.

    Plain text: the values (user data among them) go in as they are, and a template's own markup
    is the catalogue's. Escaping happens where a text meets a component that reads markup, never
    here (``studio.ui.markup`` says where): a Markdown text with values is made with ``t_md``."""
    lang = lang or current_lang()
    table = strings(lang if lang in LANGUAGES else DEFAULT)
    text = table.get(key)
    if text is None:
        text = strings(DEFAULT).get(key, key)
    # Always formatted, so a catalogue writes a literal brace doubled ("{{") whether or not the
    # text has placeholders.
    text = text.format(**kwargs)
    if lang == DEFAULT and _building():
        with _lock:
            _built.setdefault(text, (key, kwargs))
    return text


def _building() -> bool:
    try:
        from gradio.context import Context

        return Context.root_block is not None
    except Exception:  # noqa: BLE001
        return False


def pick_language(accept_language: str | None) -> str:
    """The first of the browser's languages the studio speaks (Accept-Language), else English."""
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()
        base = code.split("-")[0]
        if base in LANGUAGES:
            return base
    return DEFAULT


def current_lang() -> str:
    """The language of the browser whose event is running, or English outside an event."""
    try:
        from gradio.context import LocalContext

        request = LocalContext.request.get(None)
    except Exception:  # noqa: BLE001 - no Gradio, no request
        request = None
    if request is None:
        return DEFAULT
    session = getattr(request, "session_hash", None)
    if session and session in _session_lang:
        return _session_lang[session]
    headers = getattr(request, "headers", None) or {}
    return pick_language(headers.get("accept-language"))


def remember(request: Any, lang: str) -> None:
    session = getattr(request, "session_hash", None)
    if session:
        with _lock:
            _session_lang[session] = lang


_redraws: list[tuple[Any, Any]] = []


def redraw(component: Any, make: Any) -> Any:
    """Have ``make()`` redraw ``component`` (a chart drawn while building) in the page's language on load."""
    _redraws.append((component, make))
    return component


_fixed_choices: list[Any] = []
_as_is: list[tuple[Any, str]] = []


def as_is(component: Any, prop: str = "label") -> Any:
    """Mark ``component``'s ``prop`` as a name shown as it is in every language (a configuration
    key such as ``seed``), even when a key's English text happens to be the same word."""
    _as_is.append((component, prop))
    return component


def fixed_choices(component: Any) -> Any:
    """Mark ``component``'s choices as never changed by a handler (handlers may set its value):
    a language switch re-labels them even though the component is a handler's output."""
    _fixed_choices.append(component)
    return component


def source(text: Any) -> tuple[str, dict[str, Any]] | None:
    """The (key, kwargs) that made ``text`` while the app was built, if a key made it."""
    return _built.get(text) if isinstance(text, str) else None


def _again(origin: tuple[str, dict[str, Any]], lang: str) -> str:
    """The text of a (key, kwargs) in ``lang``; a kwarg that was itself a translated text (a task's
    title inside a choice's label) is translated too."""
    key, kwargs = origin
    values = {name: (_again(source(value), lang) if source(value) else value) for name, value in kwargs.items()}
    return t(key, lang, **values)


class Translator:
    """The components of one app whose texts came from keys, and how to re-label them."""

    PROPS = ("label", "info", "placeholder", "value")

    def __init__(self, blocks: dict[int, Any]):
        self.entries: list[tuple[Any, dict[str, tuple[str, dict[str, Any]]]]] = []
        as_is = {(id(block), prop) for block, prop in _as_is}
        for block in blocks.values():
            found = {}
            for prop in self.PROPS:
                if (id(block), prop) in as_is:
                    continue
                if prop == "value" and type(block).__name__ not in ("Markdown", "Button", "DownloadButton", "UploadButton"):
                    continue
                origin = source(getattr(block, prop, None))
                if origin:
                    found[prop] = origin
            choices = getattr(block, "choices", None)
            if isinstance(choices, list) and any(isinstance(c, tuple) and source(c[0]) for c in choices):
                found["choices"] = [(source(c[0]) or (c[0], None), c[1]) if isinstance(c, tuple) else ((c, None), c)
                                    for c in choices]
            if found:
                self.entries.append((block, found))
        ids = {id(block) for block in blocks.values()}
        self.redraws = [(block, make) for block, make in _redraws if id(block) in ids]
        self.fixed = {id(block) for block in _fixed_choices if id(block) in ids}

    @property
    def components(self) -> list[Any]:
        return [block for block, _ in self.entries]

    @property
    def charts(self) -> list[Any]:
        return [block for block, _ in self.redraws]

    def redrawn(self, lang: str) -> list[Any]:
        """The charts drawn again; ``t`` inside ``make`` speaks the session's language (see ``remember``)."""
        return [make() for _, make in self.redraws]

    def updates(self, lang: str, keep_values: set[int] = frozenset(), keep_choices: set[int] = frozenset()) -> list[Any]:
        """One update per component. ``keep_values``/``keep_choices``: ids of components whose text
        or choices handlers write; those are left alone, so a switch never wipes what a handler showed."""
        import gradio as gr

        out = []
        for block, found in self.entries:
            props = {prop: _again(origin, lang) for prop, origin in found.items()
                     if prop != "choices" and not (prop == "value" and id(block) in keep_values)}
            if "choices" in found and (id(block) not in keep_choices or id(block) in self.fixed):
                props["choices"] = [(_again(origin, lang) if origin[1] is not None else origin[0], value)
                                    for origin, value in found["choices"]]
            out.append(gr.update(**props))
        return out
