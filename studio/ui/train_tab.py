"""The Train tab: choose data, task, backbone, method and preset; launch; watch the run live.

Launching goes through ``JobManager.submit`` (which validates and queues, then returns), so a
request never trains. The live view (``studio.ui.live_view.LiveView``) is a ``gr.Timer`` whose
tick reads the watched run's new events by byte offset (``JobManager.events``), folds them into the
browser's ``RunSeries`` and sends only what changed, as an answer keyed by component; the timer
switches itself off when the run ends. The launch, pick, cancel and resume handlers add their own
components (the message, the run picker) to the view's answer.
The run a browser watches is remembered in its local storage (``gr.BrowserState``), so reloading
the page re-attaches; a browser that never watched one attaches to the newest active run.

Longer than 500 lines on purpose: the form's layout and the handlers that close over its
components belong together; the plan (``studio.planning``), the live view (``live_view``) and
whether the backbone reads the data (``reading``) live in their own modules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from studio.ui import i18n, words
from studio.ui.i18n import t

from studio.config import RunConfig, field_help
from studio.errors import ConfigError, StudioError
from studio.models.estimate import memory_text
from studio.runs.state import UNFINISHED
from studio.ui.data_state import DataState, make_config
from studio.tasks import get_task, list_tasks
# The live view's texts, where they were before it had its own module.
from studio.ui.live_view import LiveView, log_text, new_watch, progress_html, status_html  # noqa: F401
from studio.ui.common import error_html, field_input, field_value, messages_html
from studio.ui.markup import t_md
from studio.ui.reading import reading
from studio.ui.services import Services

UPLOAD = "@upload"
DATASET = "dataset:"
ON_FIRST_ROW = {"model.backbone", "method.kind", "training.preset", "training.device"}
FROM_RUN_KEY = "model.from_run"
"""A list of this workspace's finished runs with a language model to continue (SFT, then DPO)."""
REMOTE_CODE_KEY = "model.trust_remote_code"
"""Off, and its switch disabled, unless an admin allowed remote code in the settings."""
NOT_HERE = {"name", "task", "data"}
"""Sections set elsewhere: the run name above, the task and data from the Data tab."""


def _advanced_fields() -> list[tuple[type, str, str]]:
    """Every configuration field not on the tab's first row, as (section class, field, dotted key),
    walked from ``RunConfig`` so a new section or field shows up without code here."""
    import dataclasses
    import typing

    found: list[tuple[type, str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for spec in dataclasses.fields(cls):
            key = f"{prefix}{spec.name}"
            if key in ON_FIRST_ROW or (not prefix and spec.name in NOT_HERE):
                continue
            tp = hints[spec.name]
            if dataclasses.is_dataclass(tp):
                walk(tp, key + ".")
            elif typing.get_origin(tp) is not dict:
                found.append((cls, spec.name, key))

    walk(RunConfig, "")
    return found


ADVANCED = _advanced_fields()
CONDITIONAL = {
    "method.lora": lambda task, method: method in ("lora", "qlora"),
    "generation": lambda task, method: bool(task) and get_task(task).model_kind != "encoder",
}
"""Advanced sections shown only when they apply: LoRA settings for LoRA, decoding for generation."""
GPU_ONLY = ("training.tf32", "training.batch_tokens", "training.packing", "training.liger", "training.compile")
"""Settings that act only on a GPU (``studio.training.speed`` applies them there): TF32 maths, the
token budget a GPU's batch grows to, padding-free packing and Liger kernels (chosen for a GPU's
attention and kernels), torch.compile (it pays off only there). Hidden for a run on the CPU."""


def gpu_settings_apply(gpus: list[str] | tuple[str, ...], device: str | None) -> bool:
    """Whether a run with this device choice trains on a GPU of this machine."""
    return bool(gpus) and device != "cpu"


# ---- choices ------------------------------------------------------------------------------------
def data_choices(services: Services, data_state: DataState | None) -> list[tuple[str, str]]:
    from studio.data.datasets_store import list_datasets

    choices = []
    if data_state and data_state.path:
        name = data_state.name
        label = t("train.data_tab_ready", name=name) if data_state.ok else t("train.data_tab_problems", name=name)
        choices.append((label, UPLOAD))
    choices += [(t("train.saved_dataset", name=name), DATASET + name) for name in list_datasets(services.workspace.datasets)]
    return choices


def dataset_meta(services: Services, name: str) -> dict[str, Any]:
    from studio.data.datasets_store import META_FILE

    path = services.workspace.datasets / name / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigError(t("train.dataset_unreadable", name=name)) from None
    meta.pop("_store", None)
    return meta


def backbone_choices(services: Services, task_name: str | None) -> list[tuple[str, str]]:
    from studio.models import catalog
    from studio.models.resolve import offline_choices

    kinds = get_task(task_name).backbone_kinds if task_name else ("encoder", "decoder", "seq2seq")
    offline = set()
    for kind in kinds:
        offline.update(offline_choices(kind))
    ready, download = [], []
    for entry in catalog.CATALOG:
        if entry.kind not in kinds:
            continue
        if entry.name in offline:
            where = t("train.bundled_offline") if entry.bundled else t("train.cached_offline")
        else:
            where = t("train.hub_download")
        (ready if entry.name in offline else download).append((f"{entry.name} · {entry.kind} · {entry.size} · {where}", entry.name))
    for folder in local_models(services):
        ready.append((t("train.local_folder", name=folder.name, folder=str(folder)), str(folder)))
    # Offline ones first (catalog models, then the allowed folders), then the rest in catalog order.
    return ready + download


def local_models(services: Services) -> list[Path]:
    """Model folders (with a config.json) directly inside the folders an admin allowed."""
    found = []
    for root in services.model_roots():
        if (root / "config.json").is_file():
            found.append(root)
            continue
        try:
            found += sorted(p for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file())
        except OSError:
            continue
    return found


def default_backbone(services: Services, task_name: str | None) -> str | None:
    choices = backbone_choices(services, task_name)
    return choices[0][1] if choices else None


# ---- the configuration a launch submits -------------------------------------------------------------
def build_config(services: Services, data_state: DataState | None, source: str | None, task_name: str | None,
                 backbone: str | None, method: str, preset: str, device: str, name: str | None,
                 advanced: dict[str, Any]) -> RunConfig:
    if not source:
        raise ConfigError(t("train.choose_data"))
    if source == UPLOAD:
        if not data_state or not data_state.path:
            raise ConfigError(t("train.data_tab_empty"))
        same_task = not task_name or task_name == data_state.task
        base = make_config(data_state, task_name or data_state.task, None if same_task else {}).to_dict()
    elif source.startswith(DATASET):
        dataset = source[len(DATASET):]
        meta = dataset_meta(services, dataset)
        task_name = task_name or meta.get("task")
        same_task = task_name == meta.get("task")
        base = RunConfig.from_dict({
            "task": {"name": task_name, **(meta.get("task_options") or {} if same_task else {})},
            "data": {"dataset": dataset, "columns": meta.get("columns") or {} if same_task else {}},
        }).to_dict()
    else:
        raise ConfigError(t("train.unknown_data_choice", choice=repr(source)))
    if not backbone or not str(backbone).strip():
        raise ConfigError(t("train.choose_backbone"))
    base["name"] = (name or "").strip() or None
    base["model"]["backbone"] = str(backbone).strip()
    base["method"]["kind"] = method or "full"
    base["training"]["preset"] = preset or "balanced"
    base["training"]["device"] = device or "auto"
    for (cls, field_name, key), value in ((spec, advanced.get(spec[2])) for spec in ADVANCED):
        if key not in advanced:
            continue
        section, *rest = key.split(".")
        target = base[section]
        for part in rest[:-1]:
            target = target[part]
        target[rest[-1]] = field_value(cls, field_name, value)
    return RunConfig.from_dict(base)


def estimate_md(services: Services, data_state: DataState | None, source, task_name, backbone, method, preset, device,
                advanced) -> str:
    """The plan of this run (``studio.planning``) as Markdown: every value is escaped by ``t_md``,
    among them the backbone's name and a refusal's message."""
    from studio.planning import plan_for

    try:
        config = build_config(services, data_state, source, task_name, backbone, method, preset, device, None, advanced)
    except StudioError as error:
        return t_md("train.estimate_not_yet", reason=str(error).splitlines()[0])
    rows = None
    if source == UPLOAD and data_state:
        rows = data_state.rows
    elif source and source.startswith(DATASET):
        rows = _dataset_rows(services, source[len(DATASET):])
    gpus = list(services.jobs.devices.gpus)
    try:
        plan = plan_for(config, services.workspace, model_roots=services.model_roots(), gpus=gpus,
                        cpu_slots=services.jobs.devices.cpu_slots, rows_hint=rows)
    except StudioError:
        # The allowed folders are checked as a launch checks them: the same answer for a folder
        # outside them whether or not it exists.
        return t_md("train.estimate_folder_not_allowed")
    if plan is None:
        return t_md("train.estimate_unknown_backbone")
    return plan_md(plan, gpus if plan.device == "cuda" else None)


def span_text(low: float, high: float) -> str:
    """A time range for people: 'a few seconds', '40–60 s', '3–4 min', '1.5–2.2 h'."""
    if high < 10:
        return t("train.estimate_few_seconds")
    if high < 120:
        return t("train.estimate_span_seconds", low=round(low), high=max(round(high), round(low) + 1))
    if high < 2 * 3600:
        low_min = max(1, int(low // 60))
        return t("train.estimate_span_minutes", low=low_min, high=max(low_min + 1, -int(-high // 60)))
    return t("train.estimate_span_hours", low=f"{low / 3600:.1f}", high=f"{high / 3600:.1f}")


def plan_md(plan, gpus: list[str] | None) -> str:
    """A ``Plan`` as the Train tab shows it: settings, memory and time as ranges, steps, warnings."""
    tc = plan.config.training
    if plan.memory_from_size:
        from studio.models import catalog

        entry = catalog.find(plan.config.model.backbone or "")
        steps_text = t_md("train.estimate_steps_suffix", steps=f"{plan.steps:,}") if plan.steps else ""
        text = t_md("train.estimate_from_size", name=entry.name if entry else plan.config.model.backbone,
                    size=entry.size if entry else "?", memory=memory_text(plan.memory_gib), steps=steps_text)
        return text + _warning_suffix(_fit_warning(plan.memory_gib, None, None, gpus))
    if plan.memory_gib is None:
        return t_md("train.estimate_no_shape")
    where = t_md("train.estimate_gpus", count=plan.gpus) if plan.device == "cuda" else "CPU"
    # With early stopping the epochs are a ceiling, and so is the time: validation usually ends the run sooner.
    ceiling = bool(tc.early_stopping_patience) and plan.evaluations > 0 and not tc.max_steps
    epochs = f"≤ {tc.epochs:g}" if ceiling else f"{tc.epochs:g}"
    parts = [t_md("train.estimate_head", where=where, preset=words.preset(tc.preset), epochs=epochs,
                  batch=plan.batch_size, lr=f"{tc.learning_rate:g}", length=plan.seq_len)]
    low, high = plan.memory_range
    parts.append(t_md("train.estimate_memory_range", low=memory_text(low), high=memory_text(high),
                      memory=memory_text(plan.memory_gib)))
    if plan.trainable:
        parts.append(t_md("train.estimate_trainable", count=f"{plan.trainable:,}"))
    if plan.steps:
        parts.append(t_md("train.estimate_steps", steps=f"{plan.steps:,}"))
        if plan.evaluations:
            parts.append(t_md("train.estimate_evaluations", count=plan.evaluations))
    if plan.seconds_range:
        span = span_text(*plan.seconds_range)
        if plan.expected_epochs and plan.ceiling_range:
            epoch, most = f"{plan.expected_epochs:.2f}".rstrip("0").rstrip("."), span_text(*plan.ceiling_range)
            took = t_md("train.estimate_time_stop_measured", span=span, epoch=epoch, ceiling=most) if plan.stopping_measured \
                else t_md("train.estimate_time_stop_expected", span=span, epoch=epoch, ceiling=most)
        elif ceiling:
            took = t_md("train.estimate_time_ceiling", span=span)
        else:
            took = t_md("train.estimate_time_range", span=span)
        if plan.calibrated == "run":
            took += " " + t_md("train.estimate_calibrated_run")
        elif plan.calibrated == "machine":
            took += " " + t_md("train.estimate_calibrated_machine")
        parts.append(took)
    checkpointed = (lambda: plan.memory_gib) if plan.checkpointing_needed else None
    warning = _fit_warning(plan.memory_unchecked_gib or plan.memory_gib, checkpointed, tc.gradient_checkpointing, gpus)
    # The head ends with a colon and introduces the rest: a separator after it read ": ·".
    head, *rest = parts
    return " ".join([head, " · ".join(rest)]).strip() + _warning_suffix(warning) + _warning_suffix(reading_warning(plan))


def reading_warning(plan) -> str:
    """Whether the backbone reads the data (``studio.ui.reading``), as a launch will judge it."""
    found = reading(plan.coverage, plan.config.model.backbone or "", plan.config.task.name)
    if found is None:
        return ""
    level, values = found
    if level == "note":
        return "ℹ️ " + t_md("train.fit_note", **values)
    refused = level == "refuse" and not plan.config.model.allow_unreadable
    return "⚠️ **" + (t_md("train.fit_refuse", **values) if refused else t_md("train.fit_warning", **values)) + "**"


def _warning_suffix(warning: str) -> str:
    return "\n\n" + warning if warning else ""


def _fit_warning(total_gib: float, checkpointed_gib: Callable[[], float] | None, checkpointing: bool | None,
                 gpus: list[str] | None) -> str:
    """What to expect when the estimate (``total_gib``) does not fit the device: the worker turns
    gradient checkpointing on by itself near a GPU's memory (``checkpointed_gib()``: the estimate
    then); past that, or past a CPU machine's memory, the run would run out of memory."""
    import psutil

    from studio import gpus as gpu_info
    from studio.training.speed import CHECKPOINTING_MEMORY_SHARE

    if gpus:
        memory = gpu_info.memory_gib(gpus)
        device = t_md("train.estimate_the_gpu", memory=memory_text(memory)) if memory else None
    else:
        memory = psutil.virtual_memory().total / 2**30
        device = t_md("train.estimate_this_machine", memory=memory_text(memory))
    if not memory:
        return ""
    if gpus and checkpointing is None and checkpointed_gib and total_gib > CHECKPOINTING_MEMORY_SHARE * memory:
        lighter = checkpointed_gib()
        if lighter <= memory:
            return "⚠️ " + t_md("train.estimate_checkpointing", memory=memory_text(total_gib), device=device, lighter=memory_text(lighter))
    if total_gib > memory:
        return "⚠️ **" + t_md("train.estimate_too_big", memory=memory_text(total_gib), device=device) + "**"
    return ""


def _dataset_rows(services: Services, name: str) -> int | None:
    try:
        meta = json.loads((services.workspace.datasets / name / "meta.json").read_text(encoding="utf-8"))
        return int(meta["_store"]["splits"]["train"]["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class TrainTab:
    loads: list[tuple[Any, list, list]]
    """(function, inputs, outputs) to run when a page loads: re-attach to a run, list the data."""
    refresh_trust: tuple[Any, list, list]
    """(function, inputs, outputs) that enables the trust_remote_code switch as the settings say."""
    relabel: list[list[tuple[Any, list, list]]]
    """Chains of (function, inputs, outputs) that show the handlers' texts again in a new language."""


def continuable_runs(services: Services, current: str | None = None):
    """The choices of "continue from run": completed runs whose model is a language model (a
    generation or preference run), newest first; blank starts from the backbone. A run typed or
    restored before (``current``) stays chosen even when it is not listed any more."""
    from studio.runs import RunDir

    choices = [(t("train.from_run_none"), "")]
    for record in services.jobs.list(status="completed", limit=200):
        try:
            if get_task(record.task or "").model_kind == "encoder" or not RunDir(record.run_dir).has_model():
                continue
        except StudioError:  # a task this version does not know
            continue
        choices.append((f"{record.name} · {record.id} ({record.task})" if record.name else f"{record.id} ({record.task})", record.id))
    if current and current not in [value for _, value in choices]:
        choices.append((current, current))
    return gr.update(choices=choices, value=current or "")


def remote_code_allowed(services: Services) -> bool:
    try:
        return services.settings().trust_remote_code
    except StudioError:  # a damaged settings file allows nothing
        return False


def refusal_html(error: BaseException) -> str:
    """A refusal by the workspace's settings in the page's language; any other error as it is."""
    from studio.jobs.policy import QueueLimitReached, RemoteCodeRefused

    if isinstance(error, QueueLimitReached):
        return messages_html([("error", t("train.queue_limit", queued=error.queued, limit=error.limit))])
    if isinstance(error, RemoteCodeRefused):
        return messages_html([("error", t("train.remote_code_refused"))])
    return error_html(error)


def build(services: Services, data_state: gr.State, watch_state: gr.State, browser_run) -> TrainTab:
    tasks = list_tasks()
    gpus = services.jobs.devices.gpus
    defaults = RunConfig().to_dict()
    with gr.Row():
        source = gr.Dropdown(choices=data_choices(services, None), value=None, label=t("train.data"), elem_id="train-data", scale=3,
                             info=t("train.the_file_checked_in_the"))
        task = i18n.fixed_choices(gr.Dropdown(
            choices=[(t("data.task_choice", title=words.task_title(task), name=task.name), task.name) for task in tasks],
            value=None, label=t("train.task"), elem_id="train-task", scale=2))
        run_name = gr.Textbox(label=t("train.run_name"), placeholder=t("train.optional_e_g_reviews_minilm"), elem_id="train-name", scale=2)
    with gr.Row():
        backbone = gr.Dropdown(choices=backbone_choices(services, None), value=None, allow_custom_value=True, label=t("train.backbone"),
                               info=t("train.a_catalog_model_a_hub"),
                               elem_id="train-backbone", scale=4)
        # QLoRA's 4-bit base runs on a CUDA GPU only: offered where there is one.
        methods = [(t("train.method_full"), "full"), (t("train.method_lora"), "lora")] + \
            ([(t("train.method_qlora"), "qlora")] if gpus else [])
        # Handlers set these values (a reload restores the watched run's) but never their choices:
        # fixed, so the page's language still relabels the choices.
        method = i18n.fixed_choices(gr.Radio(methods, value="full", label=t("train.method"), info=t("train.full_fine_tuning_or_lora"),
                                             elem_id="train-method", scale=2))
        preset = i18n.fixed_choices(gr.Radio(
            [(t("train.preset_quick"), "quick"), (t("train.preset_balanced"), "balanced"), (t("train.preset_best"), "best")],
            value="balanced", label=t("train.preset"), info=t("train.quick_one_epoch_best_longer"), elem_id="train-preset", scale=3))
        device = i18n.fixed_choices(gr.Dropdown([(t("common.auto"), "auto"), ("CPU", "cpu")] + ([("CUDA", "cuda")] if gpus else []),
                                                value="auto", label=t("train.device"), elem_id="train-device", scale=1))
        gpu_count = gr.Number(value=1, precision=0, minimum=1, maximum=max(1, len(gpus)), label=t("train.gpus"), visible=len(gpus) > 1,
                              elem_id="train-gpus", scale=1)
    with gr.Accordion(t("train.advanced_every_setting_blank_from"), open=False, elem_id="train-advanced") as advanced_box:
        advanced_inputs = []
        sections: dict[str, list[tuple[type, str, str]]] = {}
        for spec in ADVANCED:
            sections.setdefault(spec[2].rsplit(".", 1)[0], []).append(spec)
        section_boxes: dict[str, Any] = {}
        gpu_inputs: list[Any] = []
        gpu_note = None
        for section, specs in sections.items():
            cls = specs[0][0]
            helps = field_help(cls)
            with gr.Column(visible=section not in CONDITIONAL, elem_id="train-adv-section-" + section.replace(".", "-")) as box:
                gr.Markdown(words.section(section))
                for start in range(0, len(specs), 4):
                    with gr.Row():
                        for _, name, key in specs[start:start + 4]:
                            value = defaults
                            for part in key.split("."):
                                value = value[part]
                            if key == FROM_RUN_KEY:  # the runs to continue, listed when the page loads
                                box_input = i18n.as_is(gr.Dropdown([(t("train.from_run_none"), "")], value="", label=name,
                                                                   info=words.field_help(key, helps.get(name)), allow_custom_value=True,
                                                                   elem_id="train-adv-" + key.replace(".", "-")))
                            else:
                                box_input = field_input(cls, name, value, words.field_help(key, helps.get(name)),
                                                        "train-adv-" + key.replace(".", "-"))
                            if key in GPU_ONLY:
                                box_input.visible = bool(gpus)  # the device's choice shows or hides them below
                                gpu_inputs.append(box_input)
                            advanced_inputs.append(box_input)
                if section == "training":
                    gpu_note = gr.Markdown(t("train.gpu_only_hidden", settings=", ".join(k.rsplit(".", 1)[-1] for k in GPU_ONLY)),
                                           visible=not gpus, elem_id="train-gpu-only-note")
            section_boxes[section] = box
    # ---- sweep: a hyperparameter search instead of a single run (studio.ui.train_sweep) ----
    from studio.ui.train_sweep import SweepChoice

    sweep = SweepChoice(services)
    # ---- end sweep ----
    # ---- executor: this server or the Ray cluster (studio.ui.train_executor; shown when one is configured) ----
    from studio.ui.train_executor import executor_choice

    executor = executor_choice(services)
    # ---- end executor ----
    estimate = gr.Markdown("", elem_id="train-estimate")
    with gr.Row():
        launch = gr.Button(t("train.launch_training"), variant="primary", elem_id="train-launch", scale=3)
        sweep.launch_button()  # sweep: shown instead of the run's launch button while "sweep" is chosen
        estimate_button = gr.Button(t("train.update_estimate"), elem_id="train-estimate-button", scale=1)
    launch_message = gr.HTML("", elem_id="train-message")

    gr.Markdown(t("train.live_view"))
    view = LiveView(services, watch_state)
    with gr.Row():
        watched = gr.Dropdown(choices=[], value=None, label=t("train.watching"), elem_id="train-watch", scale=4,
                              info=t("train.the_run_shown_below_pick"))
        refresh_watch = gr.Button(t("train.refresh_runs"), size="sm", scale=0, min_width=40, elem_id="train-watch-refresh")
        view.buttons()
    view.panel()

    trust_input = advanced_inputs[[key for _, _, key in ADVANCED].index(REMOTE_CODE_KEY)]
    from_run_input = advanced_inputs[[key for _, _, key in ADVANCED].index(FROM_RUN_KEY)]

    def _advanced(values, device_name: str | None) -> dict[str, Any]:
        """The advanced settings as typed, less those that only apply on a GPU where the run
        trains on the CPU (they are hidden then, and must not act unseen)."""
        return {key: value for (_, _, key), value in zip(ADVANCED, values)
                if key not in GPU_ONLY or gpu_settings_apply(gpus, device_name)}

    def trust_fn():
        """The trust_remote_code switch works only where an admin allowed remote code."""
        allowed = remote_code_allowed(services)
        info = t("train.remote_code_allowed") if allowed else t("train.remote_code_not_allowed")
        return gr.update(interactive=allowed, info=info) if allowed else gr.update(interactive=False, value=False, info=info)

    def watch_choices(current: str | None):
        records = services.jobs.list(limit=50)
        active = [r for r in records if r.active or r.status == "queued"]
        rest = [r for r in records if r not in active]
        choices = [(f"{r.name} · {r.id}" if r.name else r.id, r.id) for r in active + rest]
        if current and current not in [c[1] for c in choices]:
            current = None
        return gr.update(choices=choices, value=current)

    def attach(run_id, remembered, request: gr.Request = None):
        """Show a run (or, with none given, the one this page chose already, else the one this
        browser watched last, else the newest active run)."""
        page = getattr(request, "session_hash", None)
        chosen = run_id or view.chosen(page) or remembered
        if chosen:
            try:
                services.jobs.get(chosen)
            except StudioError:
                chosen = None
        if not chosen:
            records = services.jobs.list(limit=50)
            active = [r for r in records if r.status in UNFINISHED]
            chosen = (active or records or [None])[0]
            chosen = chosen.id if chosen else None
        view.choose(page, chosen)
        answer = view.answer(new_watch(chosen), force=True, request=request)
        if view.is_stale(page, chosen):
            return gr.skip()  # a launch on this page chose its run meanwhile
        return {**answer, watched: watch_choices(chosen), browser_run: chosen}

    # The request comes first: Gradio passes it only to a positional parameter, and after *values
    # it would always be None (the run would get no owner).
    def launch_fn(request: gr.Request, data, src, task_name, backbone_name, method_name, preset_name, device_name, gpus_n,
                  name, *values):
        """Queue a run with these settings; returns at once (the run trains in its own process)."""
        *values, executor_name = values  # the executor's choice comes after the advanced settings ("" = default)
        try:
            config = build_config(services, data, src, task_name, backbone_name, method_name, preset_name, device_name, name,
                                  _advanced(values, device_name))
            owner = getattr(request, "username", None) if request is not None else None
            run_id = services.jobs.submit(config, owner=owner, gpus=int(gpus_n or 1) if gpus else 1,
                                          executor=executor_name or None)
        except Exception as error:  # noqa: BLE001 - every refusal is shown in the page
            return {launch_message: refusal_html(error)}
        view.choose(getattr(request, "session_hash", None), run_id)
        record = services.jobs.get(run_id)
        if record.status == "queued" and record.position:
            message = t("train.launched_queued", run=run_id, position=record.position)
        else:
            message = t("train.launched", run=run_id, status=words.status(record.status))
        answer = view.answer(new_watch(run_id), force=True, request=request)
        return {launch_message: messages_html([("ok", message)]), **answer, watched: watch_choices(run_id), browser_run: run_id}

    def cancel_fn(watch, request: gr.Request = None):
        """Cancel the watched run (a running one saves a checkpoint first)."""
        run_id = (watch or {}).get("run_id")
        if not run_id:
            return {launch_message: messages_html([("error", t("train.nothing_watched"))]), **view.answer(watch, request=request)}
        try:
            services.check_may_change(request, services.jobs.get(run_id))
            services.jobs.cancel(run_id)
            message = messages_html([("info", t("train.cancelling", run=run_id))])
        except StudioError as error:
            message = error_html(error)
        return {launch_message: message, **view.answer(watch, force=True, request=request)}

    def resume_fn(watch, request: gr.Request = None):
        """Queue the watched run again; it continues from its last complete checkpoint."""
        run_id = (watch or {}).get("run_id")
        if not run_id:
            return {launch_message: messages_html([("error", t("train.nothing_watched"))]), **view.answer(watch, request=request)}
        try:
            services.check_may_change(request, services.jobs.get(run_id))
            # An admin resuming someone's run is not held to that member's queue limit.
            services.jobs.resume(run_id, queue_limit=not services.is_admin(request))
            message = messages_html([("ok", t("train.resumed", run=run_id))])
        except StudioError as error:
            message = refusal_html(error)
        return {launch_message: message, **view.answer(watch, force=True, request=request)}

    def restore_form(run_id):
        """After a reload the form shows the settings of the run this browser watches (its task,
        backbone, method, preset, device), not the defaults: what is watched is what was chosen."""
        from studio.config import RunConfig

        if not run_id:
            return [gr.skip()] * 5
        try:
            config = RunConfig.load(services.jobs.folder(run_id).config)
        except (StudioError, OSError, ValueError):
            return [gr.skip()] * 5
        return [gr.update(value=config.task.name), follow_task(config.task.name, config.model.backbone),
                gr.update(value=config.method.kind),
                gr.update(value=config.training.preset), gr.update(value=config.training.device)]

    def task_for_source(src, data, current_task):
        """The task of the chosen data: the Data tab's for the file being checked, a saved
        dataset's own, else the current one."""
        if src == UPLOAD and data and data.task:
            return data.task
        if src and src.startswith(DATASET):
            try:
                return dataset_meta(services, src[len(DATASET):]).get("task") or current_task
            except StudioError:
                pass
        return current_task

    def follow_data(data, current_source, current_task, current_backbone, watched_run=None):
        """Keep the data choices (and the task and backbone that follow from them) up to date.
        With no file in the Data tab and a run this browser watches, the task and backbone are the
        watched run's (``restore_form``), not a saved dataset's defaults."""
        choices = data_choices(services, data)
        values = [c[1] for c in choices]
        chosen = current_source if current_source in values else (values[0] if values else None)
        # Working in the Data tab means training on that work: the file being checked, or the
        # dataset it was just saved as.
        if data and data.dataset and DATASET + data.dataset in values:
            chosen = DATASET + data.dataset
        elif data and data.path and UPLOAD in values:
            chosen = UPLOAD
        new_task = task_for_source(chosen, data, current_task)
        restoring = watched_run and not current_task and not (data and data.path)
        if new_task == current_task or restoring:  # left alone: a reload's restored form may be landing meanwhile
            return gr.update(choices=choices, value=chosen), gr.skip(), gr.skip()
        return gr.update(choices=choices, value=chosen), gr.update(value=new_task), follow_task(new_task, current_backbone)

    def follow_task(task_name, current_backbone):
        choices = backbone_choices(services, task_name)
        values = [c[1] for c in choices]
        keep = current_backbone and (current_backbone in values or current_backbone not in _catalog_names())
        return gr.update(choices=choices, value=current_backbone if keep else (values[0] if values else None))

    def backbone_picked(backbone_name, task_name):
        """A decoder-only backbone under a classification or tagging head trains with LoRA by
        default (the new head in full): a full fine-tune of a chat model costs far more memory."""
        from studio.models import catalog

        entry = catalog.find(backbone_name or "")
        if entry and entry.kind == "decoder" and task_name and get_task(task_name).model_kind == "encoder":
            return gr.update(value="lora")
        return gr.update()

    def source_changed(src, data, current_task, current_backbone):
        new_task = task_for_source(src, data, current_task)
        return gr.update(value=new_task), follow_task(new_task, current_backbone)

    settings = [data_state, source, task, backbone, method, preset, device]
    estimate_inputs = [*settings, *advanced_inputs]

    def estimate_fn(data, src, task_name, backbone_name, method_name, preset_name, device_name, *values):
        """Memory and time this run would need (rough)."""
        return estimate_md(services, data, src, task_name, backbone_name, method_name, preset_name, device_name,
                           _advanced(values, device_name))

    # The backbone list follows the task where the task is set, not on the task's change event: a
    # change event reads the backbone as it is when it fires, and a reload's restored backbone could
    # lose that race to the default.
    follow_inputs = [data_state, source, task, backbone, browser_run]
    data_state.change(follow_data, follow_inputs, [source, task, backbone], api_visibility="private")
    source.input(source_changed, [source, data_state, task, backbone], [task, backbone], api_visibility="private")
    task.input(follow_task, [task, backbone], [backbone], api_visibility="private")
    backbone.input(backbone_picked, [backbone, task], [method], api_visibility="private")
    gr.on([source.change, task.change, backbone.change, method.change, preset.change, device.change, estimate_button.click,
           *[component.change for component in advanced_inputs]],
          estimate_fn, estimate_inputs, [estimate], api_name="train_estimate", trigger_mode="always_last")

    def sections_fn(task_name, method_name):
        return [gr.update(visible=CONDITIONAL[name](task_name, method_name)) for name in conditional]

    conditional = [name for name in section_boxes if name in CONDITIONAL]
    gr.on([task.change, method.change], sections_fn, [task, method], [section_boxes[name] for name in conditional],
          api_visibility="private")

    def device_fn(device_name):
        """GPU-only settings show for a run that trains on a GPU; the note says why they are gone."""
        shown = gpu_settings_apply(gpus, device_name)
        return [*[gr.update(visible=shown)] * len(gpu_inputs), gr.update(visible=not shown)]

    if gpus and gpu_note is not None:  # without a GPU they are hidden from the start, for every device
        device.change(device_fn, [device], [*gpu_inputs, gpu_note], api_visibility="private")

    view_outputs = view.outputs
    launch_outputs = [launch_message, *view_outputs, watched, browser_run]
    launch.click(launch_fn, [*settings, gpu_count, run_name, *advanced_inputs, executor], launch_outputs, api_name="train_launch",
                 concurrency_limit=2, concurrency_id="submit")
    # Outside the queue, a tick is one plain HTTP request (the page's own route for such events):
    # a third less of the server's CPU than the queue's join-and-stream, and a third of its latency.
    view.timer.tick(view.poll, [watch_state], view_outputs, api_name="train_poll", concurrency_limit=None,
                    trigger_mode="always_last", queue=False)
    attach_outputs = [*view_outputs, watched, browser_run]
    watched.input(attach, [watched, browser_run], attach_outputs, api_name="train_attach", concurrency_limit=None)
    refresh_watch.click(lambda w: watch_choices((w or {}).get("run_id")), [watch_state], [watched], api_name="train_runs")
    # Listed again when the section opens and when the list is clicked: a run may have finished since.
    advanced_box.expand(lambda current: continuable_runs(services, current), [from_run_input], [from_run_input], queue=False)
    from_run_input.focus(lambda current: continuable_runs(services, current), [from_run_input], [from_run_input], queue=False)
    view.cancel.click(cancel_fn, [watch_state], [launch_message, *view_outputs], api_name="train_cancel")
    view.resume.click(resume_fn, [watch_state], [launch_message, *view_outputs], api_name="train_resume")

    # ---- sweep: its settings and estimate follow the form's; its launch starts a sweep ----
    def sweep_config(data, src, task_name, backbone_name, method_name, preset_name, device_name, name, *values):
        """The form's run config: the sweep's base."""
        return build_config(services, data, src, task_name, backbone_name, method_name, preset_name, device_name, name,
                            _advanced(values, device_name))

    def sweep_rows(data, src, *_):
        if src == UPLOAD and data:
            return data.rows
        return _dataset_rows(services, src[len(DATASET):]) if src and src.startswith(DATASET) else None

    # The sweep's space and estimate follow what the user changes (input events: a change event
    # chained to them re-fired without end), and the estimate's button.
    sweep.wire(sweep_config, [*settings, run_name, *advanced_inputs], sweep_rows,
               [source.input, task.input, backbone.input, method.input, preset.input, device.input, estimate_button.click,
                *[component.input for component in advanced_inputs if hasattr(component, "input")]], launch, launch_message)
    # ---- end sweep ----
    return TrainTab(loads=[(attach, [watched, browser_run], attach_outputs, "train_reattach"),
                           (follow_data, follow_inputs, [source, task, backbone], None),
                           (restore_form, [browser_run], [task, backbone, method, preset, device], None),
                           (trust_fn, [], [trust_input], None),
                           (lambda current: continuable_runs(services, current), [from_run_input], [from_run_input], None)],
                    refresh_trust=(trust_fn, [], [trust_input]),
                    relabel=[[(attach, [watched, browser_run], attach_outputs)],
                             [(follow_data, follow_inputs, [source, task, backbone])],
                             [(trust_fn, [], [trust_input])], [(estimate_fn, estimate_inputs, [estimate])],
                             [(lambda current: continuable_runs(services, current), [from_run_input], [from_run_input])],
                             [(follow_task, [task, backbone], [backbone])]])


def _catalog_names() -> set[str]:
    from studio.models import catalog

    return {b.name for b in catalog.CATALOG}
