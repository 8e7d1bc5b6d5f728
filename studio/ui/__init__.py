"""The studio's web UI (Gradio): one module per tab, over the services below it.

Nothing here imports torch at module level; models are loaded only when the playground or the
evaluation needs them. ``serve`` starts the server; ``build_app`` makes the Blocks (for tests).
"""

from __future__ import annotations


def serve(*args, **kwargs):
    from studio.web.server import serve as _serve

    return _serve(*args, **kwargs)


def build_app(services):
    from studio.ui.app import build_app as _build

    return _build(services)


__all__ = ["build_app", "serve"]
