"""The studio's web UI (Gradio): one module per tab, over the services below it.

Nothing here imports torch at module level; models are loaded only when the playground or the
evaluation needs them. ``build_app`` makes the Blocks; ``studio.web.server`` serves it.
"""

from __future__ import annotations


def build_app(services):
    from studio.ui.app import build_app as _build

    return _build(services)


__all__ = ["build_app"]
