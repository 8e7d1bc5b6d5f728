"""The studio's web app: one Gradio Blocks with a tab per module, and ``serve`` to run it.

Per-browser state (the data being prepared, the run being watched) lives in ``gr.State``; the
run a browser watched is also kept in its local storage (``gr.BrowserState``) so a reload
re-attaches. What every browser shares (the workspace, the job manager, loaded models) is a
``Services`` object made once per server. Every action is an event with an ``api_name``, so
``gradio_client`` scripts can drive the studio as the page does.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path

import gradio as gr

from studio.ui import data_tab, evaluate_tab, i18n, playground_tab, runs_tab, settings_tab, sweeps_tab, train_tab
from studio.ui.data_state import DataState
from studio.ui.i18n import t
from studio.ui.markup import escape_errors
from studio.ui.services import REPO_ASSETS, Services, username

log = logging.getLogger("studio.ui")

TITLE = "The studio"


def build_app(services: Services) -> gr.Blocks:
    # Uploads are copied into the workspace, so Gradio's own temporary copies can go after a day.
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 86400)) as app:
        data_state = gr.State(DataState())
        watch_state = gr.State(train_tab.new_watch(None))
        browser_run = gr.BrowserState(None, storage_key="studio-watched-run")
        lang_state = gr.State(i18n.DEFAULT)
        browser_lang = gr.BrowserState(None, storage_key="studio-language")

        with gr.Row(elem_id="studio-top"):
            gr.Markdown(t("app.header", title=t("app.title")), elem_id="studio-header")
            lang_pick = gr.Radio([(name, code) for code, name in i18n.LANGUAGES.items()], value=i18n.DEFAULT,
                                 show_label=False, container=False, elem_id="studio-lang", scale=0, min_width=240)
        with gr.Tabs(elem_id="studio-tabs"):
            with gr.Tab(t("app.tab_data"), id="data", elem_id="tab-data"):
                data = data_tab.build(services, data_state)
            with gr.Tab(t("app.tab_train"), id="train", elem_id="tab-train"):
                train = train_tab.build(services, data_state, watch_state, browser_run)
            with gr.Tab(t("app.tab_runs"), id="runs", elem_id="tab-runs") as runs_page:
                runs = runs_tab.build(services)
            with gr.Tab(t("app.tab_sweeps"), id="sweeps", elem_id="tab-sweeps") as sweeps_page:
                sweeps = sweeps_tab.build(services)
            with gr.Tab(t("app.tab_evaluate"), id="evaluate", elem_id="tab-evaluate") as evaluate_page:
                evaluate = evaluate_tab.build(services)
            with gr.Tab(t("app.tab_playground"), id="playground", elem_id="tab-playground") as playground_page:
                playground = playground_tab.build(services)
            # Admins only: shown by on_roles below; its handlers check the role themselves.
            with gr.Tab(t("app.tab_settings"), id="settings", elem_id="tab-settings", visible=False) as settings_page:
                settings = settings_tab.build(services)
        footer = gr.HTML("", elem_id="studio-footer")

        # Saving the settings re-enables (or disables) the admin's own trust_remote_code switch at once.
        settings["saved"].then(*train.refresh_trust, api_visibility="private")

        admin_parts = [settings_page, *runs["admin_only"]]

        def on_roles(request: gr.Request):
            """Show the admin's parts (the settings, the queue's order) to admins only, and who is
            signed in (with the workspace's folder for admins: members never see a server path)."""
            admin = services.is_admin(request)
            return [*[gr.update(visible=admin)] * len(admin_parts), footer_html(services, request, admin)]

        # The settings load with the page only: refreshing them when the tab is picked would race an
        # admin already typing into a field (the answer overwrote it, and Save stored the old value).
        for page, tab in ((runs_page, runs), (sweeps_page, sweeps), (evaluate_page, evaluate), (playground_page, playground)):
            page.select(*tab["refresh"], api_visibility="private")
        page_loads = [*train.loads, *((*tab["refresh"], None) for tab in (runs, sweeps, evaluate, playground, settings)),
                      (*data["refresh"], None), (on_roles, None, [*admin_parts, footer], None)]
        # What the tabs' handlers write (before the language's own events are added below).
        written = {id(block) for dep in app.fns.values() for block in dep.outputs}
        written_md = {id(block) for dep in app.fns.values() for block in dep.outputs if isinstance(block, gr.Markdown)}

        # Languages: every text that came from a key is re-labelled on load (the language picked
        # before, else the browser's) and when the switch changes. Texts handlers write are theirs:
        # they translate with the session's language, so the page's loads run after the language
        # is settled, and a switch runs the handlers that show text again instead of wiping it.
        translator = i18n.Translator(app.blocks)
        written_on_load = {id(block) for _, _, outputs, _ in page_loads for block in outputs or []}
        translator.redraws = [(chart, make) for chart, make in translator.redraws if id(chart) not in written_on_load]
        outputs = translator.components

        def on_load(saved: str | None, request: gr.Request):
            lang = saved if saved in i18n.LANGUAGES else i18n.pick_language(request.headers.get("accept-language"))
            i18n.remember(request, lang)
            return [lang, gr.update(value=lang), *translator.updates(lang, written_on_load, written_on_load), *translator.redrawn(lang)]

        def on_switch(lang: str, request: gr.Request):
            lang = lang if lang in i18n.LANGUAGES else i18n.DEFAULT
            i18n.remember(request, lang)
            return [lang, lang, *translator.updates(lang, written_md, written)]

        language = app.load(on_load, [browser_lang], [lang_state, lang_pick, *outputs, *translator.charts], api_visibility="private")
        for fn, inputs, outputs_of, api_name in page_loads:
            if api_name:
                language.then(fn, inputs, outputs_of, api_name=api_name)
            else:
                language.then(fn, inputs, outputs_of, api_visibility="private")
        switched = lang_pick.input(on_switch, [lang_pick], [lang_state, browser_lang, *outputs], api_visibility="private")
        # Gradio's own words (the upload box's prompt, the status announcements) follow the page's language.
        language.then(None, [lang_pick], None, js=gradio_language_js())
        switched.then(None, [lang_pick], None, js=gradio_language_js())
        for chain in [*train.relabel, *data["relabel"], *runs["relabel"], *evaluate["relabel"], *playground["relabel"],
                      *settings["relabel"]]:
            step = switched
            for fn, inputs, outputs_of in chain:
                step = step.then(fn, inputs, outputs_of, api_visibility="private")
        app.load(None, None, None, js=FIT_PLOTS_JS)
    # An error a handler lets out reaches the page as a toast, which Gradio renders as HTML.
    escape_errors(app)
    return app


FIT_PLOTS_JS = """() => {
  // Plotly sizes a chart when it draws it: one drawn in a hidden tab (a language switch redraws
  // them all, a run's charts update while another tab shows) got its default 700px and kept it
  // when its tab showed. Every chart is fitted to its box whenever the box changes size, which
  // includes the moment its tab shows.
  if (window.studioFitPlots) return;
  window.studioFitPlots = true;
  const fit = (plot) => {
    const layout = plot._fullLayout;
    if (!window.Plotly || !layout || plot.offsetParent === null || !plot.clientWidth) return;
    if (Math.abs(layout.width - plot.clientWidth) > 1) window.Plotly.Plots.resize(plot);
  };
  const sizes = new ResizeObserver((entries) => entries.forEach((entry) => fit(entry.target)));
  const seen = new WeakSet();
  let queued = false;
  const watch = () => {
    queued = false;
    document.querySelectorAll("[data-testid=plotly]").forEach((plot) => {
      if (!seen.has(plot)) { seen.add(plot); sizes.observe(plot); }
    });
  };
  new MutationObserver(() => { if (!queued) { queued = true; requestAnimationFrame(watch); } })
    .observe(document.body, {childList: true, subtree: true});
  watch();
}"""


GRADIO_WORDS_JS = """async (lang) => {
  const locales = %s, words = %s, status = %s;
  window.studioLanguage = locales[lang] ? lang : "en";
  document.documentElement.lang = locales[window.studioLanguage];
  if (!window.studioGradioWords) {
    window.studioGradioWords = () => {
      const mine = words[window.studioLanguage];
      const names = {};
      for (const set of Object.values(words)) for (const [name, text] of Object.entries(set)) names[text] = name;
      document.querySelectorAll("[data-testid=upload-text]").forEach((box) => {
        const walk = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
        for (let node = walk.nextNode(); node; node = walk.nextNode()) {
          const text = node.nodeValue.trim(), name = names[text];
          if (name && mine[name] !== text) node.nodeValue = node.nodeValue.replace(text, mine[name]);
        }
      });
    };
    let queued = false;
    new MutationObserver(() => {
      if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; window.studioGradioWords(); }); }
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
  }
  window.studioGradioWords();
  const core = performance.getEntriesByType("resource").map((entry) => entry.name)
    .find((name) => /\\/assets\\/core-[^/]*\\.js$/.test(new URL(name).pathname));
  if (!core) return;
  const gradio = await import(core);
  if (gradio.load_translations) gradio.load_translations({custom_translations: status, processed_langs: {}});
  if (gradio.changeLocale) gradio.changeLocale(locales[window.studioLanguage]);
}"""
"""The script of ``gradio_language_js``: the languages, the words and the status texts go in at ``%s``."""


def gradio_language_js() -> str:
    """A page script that puts Gradio's own texts (the upload box's prompt, a status word) in the
    studio's language.

    Gradio picks its language once, from the browser's, and hands each component its texts when
    the page is built: the studio's switch (or a language saved in an earlier visit, or a browser
    set to plain "zh", which Gradio does not know) left "Drop File Here" on a Chinese page. The
    prompts are therefore written again in the page's language, now and whenever an upload box
    appears. Gradio's language is switched too (its ``changeLocale``, an export of the module the
    page already loaded: imported again from the same address, it is the same module), for what
    it draws later, and ``common.complete``, a status word Gradio has no text for, gets ours."""
    import json

    words = {lang: {"drop_file": t("app.gradio_drop_file", lang), "or": t("app.gradio_or", lang),
                    "click_to_upload": t("app.gradio_click_to_upload", lang), "complete": t("app.gradio_complete", lang)}
             for lang in i18n.LANGUAGES}
    status = {i18n.GRADIO_LOCALES[lang]: {"common": {"complete": words[lang]["complete"]}} for lang in i18n.LANGUAGES}
    return GRADIO_WORDS_JS % (json.dumps(i18n.GRADIO_LOCALES), json.dumps(words, ensure_ascii=False),
                              json.dumps(status, ensure_ascii=False))


def footer_html(services: Services, request, admin: bool) -> str:
    parts = []
    name = username(request)
    if name:
        parts.append(t("app.signed_in_as", user=html.escape(name)))
        parts.append(f'<a href="/logout" id="studio-logout">{html.escape(t("app.sign_out"))}</a>')
    if admin:
        parts.append(t("app.footer", root=html.escape(str(services.workspace.root))))
    return f'<small>{" · ".join(parts)}</small>' if parts else ""


def theme() -> gr.themes.Theme:
    # System fonts only: the studio must look right on a machine with no internet access.
    return gr.themes.Soft(primary_hue="blue", font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "Consolas", "monospace"])


def model_roots(given: list[str] | None) -> list[Path]:
    """Folders whose model subfolders users may train from: --model-dir, then $STUDIO_MODEL_DIRS."""
    roots = list(given or [])
    roots += [p for p in os.environ.get("STUDIO_MODEL_DIRS", "").split(os.pathsep) if p.strip()]
    return [Path(p).expanduser().resolve() for p in roots]


def make_services(workspace: str | Path | None = None, model_dirs: list[str] | None = None, cpu_slots: int = 1) -> Services:
    from studio.jobs.manager import JobManager
    from studio.ui.model_cache import ModelCache
    from studio.workspace import Workspace

    ws = Workspace.at(workspace)
    # The command line's folders always stay allowed; admins add theirs in the settings.
    jobs = JobManager(ws, cpu_slots=cpu_slots, allowed_model_roots=model_roots(model_dirs))
    return Services(workspace=ws, jobs=jobs, models=ModelCache(), samples_dir=REPO_ASSETS / "data")
