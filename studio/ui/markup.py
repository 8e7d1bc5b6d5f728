"""Where text becomes markup: the web app's one rule for showing what users typed.

Run names and ids, dataset, file, column and owner names, label values, configuration values,
messages that echo what someone typed and the data layer's notes are user data, and every member
of the team sees them. They are escaped where a text meets a component that reads markup, never
where the text is made:

- ``t()`` (``studio.ui.i18n``) returns plain text and inserts its values as they are. Plain text
  is safe wherever Gradio shows text as text. Checked in a browser with Gradio 6.31: component
  labels, dropdown and radio choices (single and multiple), dataframe cells and headers (the
  default ``str`` datatype; a ``markdown`` or ``html`` datatype would render), text boxes,
  ``gr.Label`` and ``gr.HighlightedText``. A component's ``info`` renders Markdown (HTML escaped):
  it holds the studio's own help only.
- ``gr.HTML``: ``common.messages_html`` escapes the whole text of each message; every other HTML
  builder escapes each value with ``html.escape``. A message box may also go to a Markdown
  component: it is an HTML block there, inside which Markdown is not read.
- ``gr.Markdown``: a text with values is made with ``t_md`` (a bare value with ``md_text``), which
  escapes each value for HTML and neutralises Markdown; the template's own markup stays live. A
  value that is markup the studio wrote itself is passed as ``Markup``.
- Charts: ``charts.plot_text`` escapes titles, legends and category labels in the chart
  builders (plotly reads a few HTML tags in them: bold, links...).
- Chat messages and toasts (``gr.Error``, and any exception a handler lets out while the server
  shows errors) render HTML in Gradio 6: ``chat_text``; ``toast`` for an error a handler raises,
  and ``escape_errors(app)`` for every handler at once.
"""

from __future__ import annotations

import html
from typing import Any

from studio.ui.i18n import t

# Marks that make Markdown (CommonMark, GitHub's extensions, Gradio's $$ for LaTeX) anywhere in a
# line: escapes, code, emphasis, strike-through, links and images, tables, maths, autolinks.
_INLINE = set("\\`*_~[]()!|$:@#")
# Marks that make a block only at the start of a line (a value may begin one in a template).
_LINE_START = set("-+=>")


class Markup(str):
    """Text that is already Markdown/HTML the studio wrote (not user data): ``t_md`` keeps it."""


def md_text(value: Any) -> Markup:
    """``value`` as literal text inside Markdown (and the HTML that Markdown may hold): on one
    trimmed line, ``<``, ``>`` and ``&`` as entities, Markdown's marks behind a backslash. A dot stays as
    it is between two digits (``66.7%``), so numbers read the same; elsewhere it is escaped so
    ``www.example.com`` never becomes a link."""
    text = " ".join(str(value).splitlines()).strip()  # spaces at either end would undo a template's **bold**
    out = []
    for i, ch in enumerate(text):
        if ch in "<>&":
            out.append(html.escape(ch, quote=False))
        elif ch in _INLINE or (i == 0 and ch in _LINE_START):
            out.append("\\" + ch)
        elif ch == ".":
            between_digits = 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()
            out.append("." if between_digits else "\\.")
        else:
            out.append(ch)
    return Markup("".join(out))


def t_md(key: str, lang: str | None = None, /, **values: Any) -> Markup:
    """``t(key, **values)`` for a Markdown component: each value escaped by ``md_text`` unless it
    is ``Markup``; the template's own markup (bold, headings, code) stays."""
    return Markup(t(key, lang, **{name: value if isinstance(value, Markup) else md_text(value)
                                  for name, value in values.items()}))


def md_code(value: Any) -> Markup:
    """``value`` shown as code inside Markdown (a path, an id), escaped like ``md_text``."""
    return Markup(f"<code>{md_text(value)}</code>")


def chat_text(value: Any) -> str:
    """A chat message as the chatbot shows it (``render_markdown=False``: its text is HTML)."""
    return html.escape(str(value), quote=False)


def chat_source(value: str) -> str:
    """The text of a message the chatbot shows (what ``chat_text`` made), for the model."""
    return html.unescape(value)


def toast(error: BaseException | str):
    """A ``gr.Error`` whose message is shown as text: Gradio 6 renders a toast's message as HTML.
    Raise it for a refusal a script calling the endpoint should get as an error."""
    import gradio as gr

    from studio.ui.common import error_text

    if isinstance(error, gr.Error):
        return gr.Error(html.escape(str(error.message), quote=False), duration=error.duration, visible=error.visible,
                        title=html.escape(str(error.title), quote=False), print_exception=error.print_exception)
    message = error if isinstance(error, str) else error_text(error)
    return gr.Error(html.escape(message, quote=False))


def escape_errors(blocks) -> None:
    """Have every handler of ``blocks`` raise its errors as ``toast`` does: an exception that
    leaves a handler (a refusal, a ``gr.Error``, a bug) reaches the page as a toast, whose message
    Gradio renders as HTML (the server shows errors), and may name a run, a file or a value."""
    for dep in blocks.fns.values():
        if dep.fn is not None and not getattr(dep.fn, "_escapes_errors", False):
            dep.fn = _escaping(dep.fn)


def _escaping(fn):
    """``fn`` with its exceptions turned into ``toast``s; same signature, same kind (plain,
    coroutine, generator), so Gradio passes it the same arguments and streams it the same way."""
    import functools
    import inspect

    if inspect.isasyncgenfunction(fn):
        async def wrapper(*args, **kwargs):
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except Exception as error:  # noqa: BLE001 - every error becomes a toast
                raise toast(error) from error
    elif inspect.isgeneratorfunction(fn):
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:  # noqa: BLE001
                raise toast(error) from error
    elif inspect.iscoroutinefunction(fn):
        async def wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except Exception as error:  # noqa: BLE001
                raise toast(error) from error
    else:
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as error:  # noqa: BLE001
                raise toast(error) from error
    wrapped = functools.wraps(fn)(wrapper)
    wrapped._escapes_errors = True
    return wrapped
