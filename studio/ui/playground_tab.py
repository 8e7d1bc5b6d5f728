"""The Playground tab: type text, see what one or two finished runs make of it.

A run's model is loaded once into the shared ``ModelCache`` (evicted by memory). The input goes
through the task's own ``normalize`` (as unlabeled data) and ``predict``; the output is shown by
its shape: class probabilities as a bar chart (``gr.Label``), character spans highlighted, text
as text, and the task's ``render`` row for everything. Generation runs can also be compared with
their base model, with decoding controls and streamed output when the task can stream.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui.i18n import t
import pandas as pd

from studio.errors import StudioError
from studio.runs import RunDir
from studio.tasks import get_task
from studio.ui.common import FILE_TYPES, cell, error_html, highlighted, messages_html, run_choice, shown_frame
from studio.ui.markup import chat_source, chat_text, md_text, t_md
from studio.ui.services import Services

NONE = ""
BASE = "@base"
SOURCE_NAME = "the playground input"


def model_runs(services: Services) -> list:
    return [r for r in services.jobs.list(limit=500) if RunDir(r.run_dir).has_model()]


def generative(services: Services, run_id: str | None) -> bool:
    if not run_id:
        return False
    try:
        from studio.config import RunConfig

        config = RunConfig.load(services.jobs.folder(run_id).config)
        return get_task(config.task.name).model_kind != "encoder"
    except (StudioError, OSError):
        return False


def load_model(services: Services, run_id: str, base: bool = False):
    run_dir = services.jobs.run_dir(run_id)
    check_remote_code(services, run_dir)
    if not base:
        return services.models.get(str(run_dir))
    return services.models.get(f"{run_dir}:base", lambda: _load_base(run_dir))


def check_remote_code(services: Services, run_dir: Path) -> None:
    """Loading a run trained with trust_remote_code runs the model's own code in the web server
    itself: only while an admin allows remote code (a damaged settings file allows nothing)."""
    from studio.jobs.policy import run_trusts_remote_code

    if not run_trusts_remote_code(run_dir):
        return
    try:
        allowed = services.settings().trust_remote_code
    except StudioError:
        allowed = False
    if not allowed:
        raise StudioError(t("playground.remote_code_refused", run=run_dir.name))


def _load_base(run_dir: Path):
    """The run's backbone before fine-tuning, wrapped like a trained model (generation runs)."""
    import json

    from studio.config import RunConfig
    from studio.inference.loading import TrainedModel
    from studio.models.loading import load_tokenizer, model_folder
    from studio.models.resolve import resolve_backbone
    from studio.tasks.base import TaskMeta

    config = RunConfig.load(RunDir(run_dir).config)
    task = get_task(config.task.name)
    meta = TaskMeta.from_dict(json.loads((RunDir(run_dir).model / "task.json").read_text(encoding="utf-8")))
    folder = model_folder(resolve_backbone(config.model.backbone, kind=task.model_kind), run_dir.parent.parent / "cache")
    model = task.load_model(folder, meta, config)
    model.eval()
    return TrainedModel(run_dir, config, task, meta, model, load_tokenizer(folder, config.model.trust_remote_code))


def run_meta(services: Services, run_id: str | None) -> dict[str, Any]:
    """The task metadata saved with a run's model (label names, data format...), or {}."""
    import json

    if not run_id:
        return {}
    try:
        return json.loads((services.jobs.folder(run_id).model / "task.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, StudioError):
        return {}


def _text_of(content: Any) -> str:
    """A chat message's text (Gradio may hand content back as a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text_of(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    return str(content)


def input_frame(trained, text: str, pair: str | None = None, history: list[dict[str, str]] | None = None) -> pd.DataFrame:
    """The typed text (or a chat history ending with it) as one unlabeled row, normalized by the
    run's task. The input role is the first the task accepts: ``text``, then its required roles."""
    task = trained.task
    config = copy.deepcopy(trained.config)
    if history is not None and "messages" in task.roles:
        attempts = [({"messages": "messages"}, {"messages": [list(history)]})]
    else:
        candidates = [r for r in dict.fromkeys(["text", *task.required_roles]) if r in task.roles]
        attempts = []
        for role in candidates:
            columns, data = {role: role}, {role: [text]}
            if pair and "text_pair" in task.roles:
                columns["text_pair"], data["text_pair"] = "text_pair", [pair]
            attempts.append((columns, data))
    last: Exception | None = None
    for columns, data in attempts:
        config.data.columns = columns
        try:
            # The source name only appears in the data layer's messages, which stay English.
            df, _problems = task.normalize(pd.DataFrame(data), config, SOURCE_NAME, labeled=False)
            return df
        except StudioError as error:
            last = error
    raise last or StudioError(t("playground.no_text_input"))


def decoding_meta(trained, overrides: dict[str, Any]):
    """The run's meta with the playground's decoding settings over its own (generation runs keep
    theirs in ``meta.info['generation']``)."""
    if not overrides or not isinstance(trained.meta.info.get("generation"), dict):
        return trained.meta
    meta = copy.deepcopy(trained.meta)
    meta.info["generation"].update(overrides)
    return meta


def decoding_kwargs(max_new_tokens, temperature, top_p) -> dict[str, Any]:
    temperature = float(temperature or 0)
    return {"max_new_tokens": int(max_new_tokens or 128), "strategy": "sampling" if temperature > 0 else "greedy",
            "temperature": temperature if temperature > 0 else 0.7, "top_p": float(top_p or 1)}


def predict_one(services: Services, run_id: str, text: str, pair: str | None, decoding: dict[str, Any], base: bool = False,
                history: list[dict[str, str]] | None = None) -> dict[str, Any]:
    trained = load_model(services, run_id, base)
    df = input_frame(trained, text, pair, history)
    meta = decoding_meta(trained, decoding)
    return trained.task.predict(trained.model, trained.tokenizer, df, meta, trained.config.training.max_length, 1)[0]


def display(task, prediction: dict[str, Any]) -> list[Any]:
    """(label, spans, text, rendered row) updates for one prediction, by what it holds."""
    hidden = gr.update(visible=False)
    row = task.render(prediction)
    label = spans = text = hidden
    probabilities = prediction.get("probabilities")
    if isinstance(probabilities, dict) and probabilities:
        label = gr.update(visible=True, value={str(k): float(v) for k, v in probabilities.items()})
    elif isinstance(prediction.get("predicted"), (int, float)) and not isinstance(prediction.get("predicted"), bool):
        label = gr.update(visible=True, value=f"{prediction['predicted']:.4g}")
    pieces = highlighted(prediction.get("text"), prediction.get("entities"))
    if pieces is not None:
        spans = gr.update(visible=True, value=pieces)
    if label is hidden and pieces is None:
        shown = next((v for k, v in prediction.items() if k in ("generation", "output", "generated", "prediction", "predicted")
                      and isinstance(v, str)), None)
        if shown is None:
            shown = next((v for v in row.values() if isinstance(v, str)), "")
        text = gr.update(visible=True, value=shown)
    table = shown_frame([{k: cell(v) for k, v in row.items() if v is not None and v != ""}])
    return [label, spans, text, gr.update(visible=True, value=table)]


def build(services: Services) -> dict[str, Any]:
    with gr.Row():
        run_a = gr.Dropdown([], value=None, label=t("playground.run"), elem_id="play-run", scale=3)
        run_b = gr.Dropdown([(t("playground.none"), NONE)], value=NONE, label=t("playground.compare_with"), elem_id="play-run-b", scale=3,
                            info=t("playground.another_run_or_the_base"))
        refresh = gr.Button(t("playground.runs"), elem_id="play-refresh", scale=1)
    with gr.Column(visible=False, elem_id="play-chat-box") as chat_box:
        # The model's words as it wrote them (text, not Markdown): a model trained on someone's
        # data may write any markup, and Gradio's chatbot renders a message as HTML.
        chatbot = gr.Chatbot(label=t("playground.chat_this_run_was_trained"), height=360, elem_id="play-chat",
                             render_markdown=False)
        with gr.Row():
            chat_input = gr.Textbox(show_label=False, placeholder=t("playground.your_message"), scale=5, elem_id="play-chat-input")
            chat_send = gr.Button(t("playground.send"), variant="primary", scale=1, elem_id="play-chat-send")
            chat_clear = gr.Button(t("playground.clear"), scale=1, elem_id="play-chat-clear")
    text = gr.Textbox(label=t("playground.text"), lines=3, placeholder=t("playground.type_a_sentence"), elem_id="play-text")
    pair = gr.Textbox(label=t("playground.second_text_sentence_pairs"), lines=2, visible=False, elem_id="play-text-pair")
    with gr.Accordion(t("playground.decoding_generation_runs"), open=False, visible=False, elem_id="play-decoding") as decoding_box:
        with gr.Row():
            max_new = gr.Slider(1, 1024, value=128, step=1, label=t("playground.max_new_tokens"), elem_id="play-max-new")
            temperature = gr.Slider(0, 2, value=0.0, step=0.05, label=t("playground.temperature_greedy"), elem_id="play-temperature")
            top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label=t("playground.top_p"), elem_id="play-top-p")
    run_button = gr.Button(t("playground.predict"), variant="primary", elem_id="play-predict")
    message = gr.HTML("", elem_id="play-message")
    with gr.Accordion(t("playground.file_heading"), open=False, elem_id="play-file-box"):
        with gr.Row():
            upload = gr.File(label=t("playground.file"), file_types=FILE_TYPES, elem_id="play-file", scale=3)
            with gr.Column(scale=2):
                file_button = gr.Button(t("playground.predict_file"), variant="primary", elem_id="play-file-predict")
                file_message = gr.HTML("", elem_id="play-file-message")
                predictions_file = gr.File(label=t("playground.predictions_file"), interactive=False, visible=False,
                                           elem_id="play-file-out")
    sides = []
    with gr.Row():
        for side in ("a", "b"):
            with gr.Column(visible=side == "a") as column:
                title = gr.Markdown("", elem_id=f"play-title-{side}")
                label = gr.Label(label=t("playground.prediction"), num_top_classes=10, visible=False, elem_id=f"play-label-{side}")
                spans = gr.HighlightedText(label=t("evaluate.entities"), visible=False, show_legend=True, elem_id=f"play-spans-{side}")
                output = gr.Textbox(label=t("playground.output"), lines=6, visible=False, interactive=False, elem_id=f"play-output-{side}")
                # Hidden until a prediction fills it: an empty gr.Dataframe shows "1 2 3" as its headers.
                row = gr.Dataframe(label=t("playground.as_in_the_evaluation_table"), interactive=False, elem_id=f"play-row-{side}",
                                   visible=False)
            sides.append((column, title, label, spans, output, row))

    def runs_fn(current_a, current_b):
        """Finished runs with a model."""
        records = model_runs(services)
        choices = [run_choice(r) for r in records]
        ids = [c[1] for c in choices]
        a = current_a if current_a in ids else (ids[0] if ids else None)
        return gr.update(choices=choices, value=a), _b_choices(choices, a, current_b)

    def _b_choices(choices, a, current_b):
        options = [(t("playground.none"), NONE)] + [c for c in choices if c[1] != a]
        if generative(services, a):
            options.insert(1, (t("playground.base_choice"), BASE))
        values = [o[1] for o in options]
        return gr.update(choices=options, value=current_b if current_b in values else NONE)

    def run_changed(a, current_b):
        records = model_runs(services)
        choices = [run_choice(r) for r in records]
        meta = run_meta(services, a)
        shows_pair = "text_pair" in (meta.get("columns") or {})
        chat = meta.get("format") == "chat"
        return (_b_choices(choices, a, current_b), gr.update(visible=shows_pair), gr.update(visible=generative(services, a)),
                gr.update(visible=chat), [])

    def chat_fn(a, message, history, max_new_v, temperature_v, top_p_v):
        """One chat turn with a run trained on conversations; the history is this browser's own."""
        history = list(history or [])
        message = (message or "").strip()
        if not a or not message:
            return history, message, ""
        turns = [{"role": m["role"], "content": chat_source(_text_of(m["content"]))} for m in history
                 if m.get("role") in ("user", "assistant")]
        turns.append({"role": "user", "content": message})
        try:
            prediction = predict_one(services, a, message, None, decoding_kwargs(max_new_v, temperature_v, top_p_v), history=turns)
        except Exception as error:  # noqa: BLE001
            return history, message, error_html(error)
        answer = next((prediction.get(k) for k in ("generation", "output", "predicted") if isinstance(prediction.get(k), str)), "")
        return history + [{"role": "user", "content": chat_text(message)}, {"role": "assistant", "content": chat_text(answer)}], "", ""

    def predict_fn(a, b, text_v, pair_v, max_new_v, temperature_v, top_p_v):
        """Predict the typed text with one run (and a second run or the base model beside it)."""
        hidden = gr.update(visible=False)
        blank_side = [gr.update(visible=False), "", hidden, hidden, hidden, hidden]
        if not a:
            return [messages_html([("error", t("evaluate.no_finished_run"))]), *blank_side, *blank_side]
        if not (text_v or "").strip():
            return [messages_html([("error", t("playground.type_first"))]), gr.update(visible=True), "", hidden, hidden, hidden,
                    hidden, *blank_side]
        decoding = decoding_kwargs(max_new_v, temperature_v, top_p_v) if generative(services, a) else {}
        out: list[Any] = []
        problems = []
        for side, (run_id, base) in enumerate([(a, False), ((a, True) if b == BASE else (b, False))]):
            if side == 1 and not b:
                out += blank_side
                continue
            try:
                trained = load_model(services, run_id, base)
                prediction = predict_one(services, run_id, text_v, pair_v, decoding, base)
                record = services.jobs.get(run_id)
                name = record.name or run_id
                title = (f"**{t_md('playground.base_of', name=name)}**" if base
                         else f"**{md_text(name)}** <small>{md_text(run_id)}</small>")
                out += [gr.update(visible=True), title, *display(trained.task, prediction)]
            except Exception as error:  # noqa: BLE001
                problems.append(error)
                out += [gr.update(visible=True), "", hidden, hidden, hidden, hidden]
        message = "".join(error_html(e) for e in problems)
        return [message, *out]

    def predict_file_fn(a, uploaded, progress=gr.Progress()):
        """Predict every row of an uploaded file with the chosen run (as ``studio predict`` does);
        the predictions come back as a file to download."""
        from studio.inference.files import predict_file

        hidden = gr.update(visible=False, value=None)
        if not a:
            return messages_html([("error", t("evaluate.no_finished_run"))]), hidden
        if not uploaded:
            return messages_html([("error", t("playground.file_first"))]), hidden
        source = Path(uploaded if isinstance(uploaded, str) else uploaded.name)
        try:
            trained = load_model(services, a)
            # Written beside the upload, inside the server's upload cache: served to this page
            # and removed with the uploads, never in a shared folder.
            done = predict_file(trained, source, source.with_name(source.stem + ".predictions.csv"),
                                lambda n, total: progress(n / max(total, 1), desc=t("playground.file_progress", done=n, total=total)))
        except Exception as error:  # noqa: BLE001
            return error_html(error), hidden
        notes = [("warning" if p.level != "info" else "info", p.message) for p in done.problems]
        return (messages_html([("ok", t("playground.file_done", rows=done.rows)), *notes]),
                gr.update(visible=True, value=str(done.path)))

    file_button.click(predict_file_fn, [run_a, upload], [file_message, predictions_file], api_name="playground_predict_file",
                      concurrency_limit=2, concurrency_id="models")
    refresh.click(runs_fn, [run_a, run_b], [run_a, run_b], api_name="playground_runs")
    run_a.change(run_changed, [run_a, run_b], [run_b, pair, decoding_box, chat_box, chatbot], api_visibility="private")
    gr.on([chat_send.click, chat_input.submit], chat_fn, [run_a, chat_input, chatbot, max_new, temperature, top_p],
          [chatbot, chat_input, message], api_name="playground_chat", concurrency_limit=2, concurrency_id="models")
    chat_clear.click(lambda: [], None, [chatbot], api_visibility="private")
    side_outputs = [component for side in sides for component in side]
    gr.on([run_button.click, text.submit], predict_fn, [run_a, run_b, text, pair, max_new, temperature, top_p],
          [message, *side_outputs], api_name="playground_predict", concurrency_limit=2, concurrency_id="models")
    return {"refresh": (runs_fn, [run_a, run_b], [run_a, run_b]), "relabel": [[(runs_fn, [run_a, run_b], [run_a, run_b])]]}
