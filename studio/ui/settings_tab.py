"""The Settings tab, for admins: where local models may come from, whether a run may execute a
model's own code, and how many runs one member may have queued (``studio.settings``).

Members never see the tab, and its fields are empty in the page's configuration (which every
signed-in user receives): an admin's page fills them when it loads. Each handler asks
``Services`` again whether the request's user is an admin, so calling the endpoint directly
changes nothing either.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.errors import StudioError
from studio.ui.common import error_html, messages_html, when
from studio.ui.i18n import t
from studio.ui.markup import Markup, md_code, t_md
from studio.ui.services import Services, username


def fixed_roots_md(services: Services) -> str:
    roots = services.jobs.allowed_model_roots or []
    if not roots:
        return t("settings.fixed_roots_none")
    # Markdown: each folder as escaped code (a backtick in a folder's name cannot end a code span).
    return t_md("settings.fixed_roots", roots=Markup(", ".join(md_code(root) for root in roots)))


def changed_text(settings) -> str:
    if not settings.changed_by:
        return t("settings.never_changed")
    return t("settings.last_changed", user=settings.changed_by, when=when(settings.changed_at))


def build(services: Services) -> dict[str, Any]:
    gr.Markdown(t("settings.intro"))
    fixed = gr.Markdown("", elem_id="settings-fixed-roots")
    roots = gr.Textbox(label=t("settings.model_roots"), info=t("settings.model_roots_info"), lines=3,
                       elem_id="settings-model-roots")
    trust = gr.Checkbox(value=False, label=t("settings.trust_remote_code"), info=t("settings.trust_remote_code_info"),
                        elem_id="settings-trust-remote-code")
    limit = gr.Textbox(label=t("settings.max_queued"), info=t("settings.max_queued_info"), placeholder=t("settings.no_limit"),
                       elem_id="settings-max-queued")
    save = gr.Button(t("settings.save"), variant="primary", elem_id="settings-save")
    message = gr.HTML("", elem_id="settings-message")
    outputs = [message, fixed, roots, trust, limit]

    def shown(settings, note: str = "") -> list[Any]:
        return [note or messages_html([("info", changed_text(settings))]), fixed_roots_md(services),
                "\n".join(settings.model_roots), settings.trust_remote_code,
                "" if settings.max_queued_per_user is None else str(settings.max_queued_per_user)]

    def load_fn(request: gr.Request = None):
        """The current settings (admins only; anyone else gets empty fields)."""
        if not services.is_admin(request):
            return ["", "", "", False, ""]
        try:
            return shown(services.settings())
        except StudioError as error:
            return [error_html(error), fixed_roots_md(services), gr.skip(), gr.skip(), gr.skip()]

    def save_fn(roots_text, trust_value, limit_text, request: gr.Request = None):
        """Save the settings (admins only): they apply to every run submitted from now on."""
        from studio.settings import SettingsStore

        try:
            services.check_admin(request)
            saved = SettingsStore(services.workspace.root).update(
                by=username(request), model_roots=roots_text or "", trust_remote_code=bool(trust_value),
                max_queued_per_user=limit_text if limit_text is not None else "")
        except StudioError as error:
            return [error_html(error), gr.skip(), gr.skip(), gr.skip(), gr.skip()]
        return shown(saved, messages_html([("ok", t("settings.saved")), ("info", changed_text(saved))]))

    def note_fn(request: gr.Request = None):
        """The notes of the tab again (the page's language changed); the fields keep what was typed."""
        if not services.is_admin(request):
            return ["", ""]
        try:
            return [messages_html([("info", changed_text(services.settings()))]), fixed_roots_md(services)]
        except StudioError as error:
            return [error_html(error), fixed_roots_md(services)]

    saved = save.click(save_fn, [roots, trust, limit], outputs, api_name="settings_save")
    return {"refresh": (load_fn, [], outputs), "saved": saved, "relabel": [[(note_fn, [], [message, fixed])]]}
