"""The Train tab's choice of where a run trains: this machine, or the Ray cluster an admin
configured (``studio settings set ray_address ...``). Shown only when a cluster is configured;
its default is the workspace's ``executor`` setting."""

from __future__ import annotations

import gradio as gr

from studio.ui import i18n
from studio.ui.i18n import t


def executor_choice(services) -> gr.Dropdown:
    """The dropdown (value "" = the studio's default executor, else ``local`` or ``ray``)."""
    try:
        settings = services.settings()
    except Exception:  # noqa: BLE001 - a damaged settings file is reported by the Settings tab
        settings = None
    configured = bool(settings and settings.ray_address)
    default = settings.executor if settings else "local"
    return i18n.fixed_choices(gr.Dropdown(
        [(t("train.executor_default", executor=t("train.executor_ray") if default == "ray" else t("train.executor_local")), ""),
         (t("train.executor_local"), "local"), (t("train.executor_ray"), "ray")],
        value="", label=t("train.executor"), info=t("train.executor_info"), visible=configured,
        elem_id="train-executor", scale=1))
