"""The web UI without a browser: what its modules import, the endpoints it offers, and the plain
functions behind the tabs (charts from events, data checks, the config a launch submits,
prediction filters, run comparison, downloads, the model cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

gr = pytest.importorskip("gradio")

from studio.errors import ConfigError  # noqa: E402
from tests.conftest import REPO, toy_sentiment_rows, write_csv  # noqa: E402


def test_importing_the_ui_and_building_the_app_does_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "import studio.ui\n"
        "from studio.ui import app, data_tab, train_tab, runs_tab, evaluate_tab, playground_tab, charts\n"
        "assert 'torch' not in sys.modules, 'torch imported by the UI modules'\n"
        f"services = app.make_services({str(tmp_path / 'ws')!r}, [])\n"
        "app.build_app(services)\n"
        "services.jobs.shutdown()\n"
        "assert 'torch' not in sys.modules, 'torch imported while building the app'\n"
    )
    # The real GPU detection runs too (no STUDIO_FAKE_GPUS): it must not import torch either.
    env = {k: v for k, v in os.environ.items() if k != "STUDIO_FAKE_GPUS"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def services(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    from studio.ui.app import make_services

    made = make_services(tmp_path / "ws", [])
    yield made
    made.jobs.shutdown()


def test_every_action_is_a_named_api_endpoint(services):
    from studio.ui.app import build_app

    app = build_app(services)
    public = {fn.api_name for fn in app.fns.values() if fn.api_name and fn.api_visibility == "public"}
    for name in ("data_upload", "data_sample", "data_check", "data_save", "train_estimate", "train_launch", "train_poll",
                 "train_attach", "train_reattach", "train_cancel", "train_resume", "runs_list", "runs_overlay", "runs_diff",
                 "runs_delete", "eval_load",
                 "eval_predictions", "eval_compare", "playground_predict"):
        assert name in public, name


# ---- charts --------------------------------------------------------------------------------------
def test_series_fold_events_by_offset_and_draw_only_training_evaluations():
    from studio.ui import charts

    series = charts.RunSeries("r")
    series.feed([{"kind": "status", "status": "starting"},
                 {"kind": "status", "status": "running", "total_steps": 4, "device": "cpu", "train_examples": 8}])
    sizes = charts.live_sizes(series)
    assert series.feed([]) is False and charts.live_sizes(series) == sizes
    series.feed([
        {"kind": "log", "step": 1, "loss": 0.7, "learning_rate": 1e-4},
        {"kind": "progress", "step": 1, "total": 4, "epoch": 0.25, "eta_s": 3.0, "steps_per_s": 1.5},
        {"kind": "log", "step": 2, "loss": float("nan")},  # never drawn
        {"kind": "eval", "split": "validation", "step": 2, "metrics": {"loss": 0.6, "accuracy": 0.75, "runtime": 0.1}},
        {"kind": "summary", "step": 4, "train_runtime": 3.0},
        {"kind": "eval", "split": "validation", "step": 4, "metrics": {"loss": 0.5, "accuracy": 0.8}},
        {"kind": "eval", "split": "test", "step": 4, "metrics": {"loss": 0.5, "accuracy": 0.9}},
        {"kind": "status", "status": "completed"},
    ])
    assert series.train_loss == [(1, 0.7)] and series.eval_loss == [(2, 0.6)]
    assert series.eval_metrics == {"accuracy": [(2, 0.75)]}  # not runtime, not the final scoring
    assert series.final["test"] == {"accuracy": 0.9}
    assert series.throughput == [(1, 1.5)] and series.total == 4 and series.status == "completed"
    figure = charts.loss_figure(series)
    assert [trace.name for trace in figure.data] == ["train loss", "validation loss"]
    assert any("step 1: loss 0.7000" in line for line in series.log)


def test_the_run_summary_shows_the_machines_choices_and_the_measured_memory():
    from types import SimpleNamespace

    from studio.ui import charts
    from studio.ui.train_tab import status_html

    series = charts.RunSeries("r")
    series.feed([{"kind": "status", "status": "starting"},
                 {"kind": "settings", "device": "cpu", "precision": "fp32", "batch_size": 16, "group_by_length": True,
                  "optimizer": "adamw_torch_fused", "dataloader_workers": 0, "estimated_peak_gib": 0.47}])
    record = SimpleNamespace(id="r", name="toy", status="running", position=None, devices=["cpu0"], metric_value=None,
                             error_message=None, error_hint=None)
    shown = status_html(record, series)
    assert "Chosen for this machine: fp32 · batch 16 · length-grouped batches · adamw_torch_fused" in shown
    assert "Memory" not in shown  # measured only once training is over
    series.feed([{"kind": "memory", "step": 20, "peak_gib": 0.512, "estimated_gib": 0.47, "measured": "process_above_start"}])
    assert "Memory: peak 524 MB above the process&#x27;s start (estimated 481 MB, +9%)" in status_html(record, series)
    assert any(line.startswith("settings: fp32") for line in series.log) and any("memory: peak 524 MB" in line for line in series.log)


def test_the_estimate_warns_when_a_run_will_not_fit(monkeypatch):
    from types import SimpleNamespace

    import psutil

    from studio import gpus
    from studio.ui.train_tab import _fit_warning

    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(total=24 * 2**30))
    monkeypatch.setattr(gpus, "memory_gib", lambda ids: 80.0)
    assert _fit_warning(20.0, None, None, None) == ""
    assert "will not fit in this machine's 24.0 GB" in _fit_warning(30.0, None, None, None)
    assert _fit_warning(70.0, None, None, ["0"]) == ""
    # Near the GPU's memory the worker turns checkpointing on, unless the config says otherwise.
    assert "turns gradient checkpointing on (about 40.0 GB" in _fit_warning(75.0, lambda: 40.0, None, ["0"])
    assert _fit_warning(75.0, lambda: 40.0, False, ["0"]) == ""  # switched off: it may still just fit
    assert "will not fit in the GPU's 80.0 GB" in _fit_warning(85.0, lambda: 40.0, False, ["0"])
    assert "will not fit" in _fit_warning(200.0, lambda: 120.0, None, ["0"])
    monkeypatch.setattr(gpus, "memory_gib", lambda ids: None)  # no nvidia-smi to ask: nothing to say
    assert _fit_warning(200.0, lambda: 120.0, None, ["0"]) == ""


# ---- form fields ---------------------------------------------------------------------------------
def test_field_values_blank_means_preset_and_bad_numbers_are_named():
    from studio.config import LoraConfig, TrainingConfig
    from studio.ui.common import field_value

    assert field_value(TrainingConfig, "epochs", "") is None
    assert field_value(TrainingConfig, "batch_size", "8") == 8
    assert field_value(TrainingConfig, "learning_rate", "3e-4") == pytest.approx(3e-4)
    assert field_value(TrainingConfig, "gradient_accumulation", None) == 1  # not optional: its default
    assert field_value(LoraConfig, "target_modules", "auto") == "auto"
    assert field_value(LoraConfig, "target_modules", "q_proj, v_proj") == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="training.epochs|epochs"):
        field_value(TrainingConfig, "epochs", "three")
    with pytest.raises(ConfigError, match="whole number"):
        field_value(TrainingConfig, "batch_size", "2.5")


def test_untouched_advanced_inputs_give_back_the_defaults():
    """An input left as shown must not change the config: above all, an automatic on/off choice
    (packing, TF32, length grouping, ...) must stay automatic, not become 'off'."""
    import dataclasses

    from studio.ui.common import field_input, field_value
    from studio.ui.train_tab import ADVANCED

    for cls, name, key in ADVANCED:
        spec = cls.__dataclass_fields__[name]
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        component = field_input(cls, name, default, None, "x")
        assert field_value(cls, name, component.value) == default, key
    from studio.config import TrainingConfig

    assert field_value(TrainingConfig, "packing", "true") is True and field_value(TrainingConfig, "tf32", "false") is False


def test_advanced_section_lists_every_setting_not_on_the_first_row():
    from studio.ui.train_tab import ADVANCED

    keys = {key for _, _, key in ADVANCED}
    assert {"training.epochs", "training.learning_rate", "method.lora.r", "model.trust_remote_code"} <= keys
    assert not keys & {"model.backbone", "method.kind", "training.preset", "training.device", "name"}
    assert not any(key.startswith(("data.", "task.")) for key in keys)


# ---- the Data tab --------------------------------------------------------------------------------
def reviews(tmp_path):
    rows = [{"text": r["text"], "score": str(i % 3 + 1), "feeling": r["label"]} for i, r in enumerate(toy_sentiment_rows(60))]
    return write_csv(tmp_path / "reviews.csv", rows)


def test_data_detects_the_task_and_the_user_fixes_the_label_column(tmp_path):
    from studio.ui.data_state import DataState
    from studio.ui.data_tab import analyze, detect_task

    state = DataState(path=str(reviews(tmp_path)), name="reviews.csv")
    detected = detect_task(state)
    assert detected.ok and detected.task == "classification"
    assert detected.columns == {"text": "text", "label": "score"}  # a guess by name
    fixed = analyze(state.changed(task="classification"), columns={"text": "text", "label": "feeling"})
    assert fixed.ok and fixed.columns["label"] == "feeling"
    assert set(fixed.splits) == {"train", "validation", "test"}
    assert set(fixed.splits["train"]["label"]) == {"positive", "negative"}


@pytest.mark.parametrize("rows, task", [
    ([{"text": f"text number {i}", "label": ["a", "b"][i % 2]} for i in range(40)], "classification"),
    ([{"prompt": f"what colour is thing {i} ?", "completion": f"thing {i} is {['red', 'blue'][i % 2]} ."} for i in range(40)],
     "generation"),
])
def test_data_detects_the_task_by_its_column_names(tmp_path, rows, task):
    from studio.ui.data_state import DataState
    from studio.ui.data_tab import detect_task

    path = write_csv(tmp_path / "data.csv", rows)
    assert detect_task(DataState(path=str(path), name="data.csv")).task == task


def test_data_errors_are_the_data_layers_messages(tmp_path):
    from studio.ui.data_state import DataState
    from studio.ui.data_tab import analyze

    bad = tmp_path / "sheet.csv"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 32)
    result = analyze(DataState(path=str(bad), name="sheet.csv", task="classification"))
    assert not result.ok and "ZIP archive" in result.error and "Traceback" not in result.error
    wrong = analyze(DataState(path=str(reviews(tmp_path)), name="r.csv", task="classification"),
                    columns={"text": "text", "label": "nope"})
    assert not wrong.ok and "nope" in wrong.error


def test_launch_config_from_the_data_tab_and_from_a_saved_dataset(services, tmp_path):
    from studio.data.datasets_store import save_dataset
    from studio.ui.train_tab import DATASET, UPLOAD, build_config

    from studio.ui.data_state import DataState

    state = DataState(path=str(reviews(tmp_path)), name="reviews.csv", task="classification",
                      columns={"text": "text", "label": "feeling"},
                      split={"validation": 0.2, "test": 0.1, "stratify": True, "seed": 7}, ok=True, rows=42)
    config = build_config(services, state, UPLOAD, "classification", "all-MiniLM-L6-v2", "lora", "quick", "cpu", "mine",
                          {"training.epochs": "2", "training.learning_rate": "", "method.lora.r": 8})
    assert config.data.columns == {"text": "text", "label": "feeling"} and config.data.split.validation == 0.2
    assert config.data.seed == 7 and config.name == "mine" and config.method.kind == "lora" and config.method.lora.r == 8
    assert config.training.epochs == 2 and config.training.learning_rate is None and config.training.preset == "quick"

    save_dataset(services.workspace.datasets, "saved", {"train": pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})},
                 {"task": "classification", "columns": {"text": "text", "label": "label"}, "task_options": {}})
    config = build_config(services, None, DATASET + "saved", None, "all-MiniLM-L6-v2", "full", "balanced", "auto", None, {})
    assert config.data.dataset == "saved" and config.task.name == "classification" and config.data.train is None
    with pytest.raises(ConfigError, match="Data tab"):
        build_config(services, None, UPLOAD, None, "x", "full", "quick", "auto", None, {})


# ---- Evaluate, Runs --------------------------------------------------------------------------------
PREDICTIONS = [
    {"text": "good film", "gold": "positive", "predicted": "positive", "confidence": 0.9, "correct": True,
     "probabilities": {"positive": 0.9, "negative": 0.1}},
    {"text": "=cmd|' /C calc'!A0", "gold": "negative", "predicted": "positive", "confidence": 0.6, "correct": False,
     "probabilities": {"positive": 0.6, "negative": 0.4}},
    {"text": "dull plot", "gold": "negative", "predicted": "negative", "confidence": 0.7, "correct": True,
     "probabilities": {"positive": 0.3, "negative": 0.7}},
]


def test_prediction_filters_spans_and_base_columns():
    from studio.tasks import get_task
    from studio.ui.common import highlighted
    from studio.ui.evaluate_tab import filter_rows, rendered, with_base

    task = get_task("classification")
    rows = rendered(task, PREDICTIONS)
    assert filter_rows(PREDICTIONS, rows, "wrong", None, None, 0, None) == [1]
    assert filter_rows(PREDICTIONS, rows, "all", "negative", None, 0.65, None) == [2]
    assert filter_rows(PREDICTIONS, rows, "all", None, None, 0, "FILM") == [0]
    assert highlighted("Ada met Bob", [{"start": 0, "end": 3, "label": "PER"}, {"start": 8, "end": 11, "label": "PER"}]) == [
        ("Ada", "PER"), (" met ", None), ("Bob", "PER")]
    assert highlighted("no spans", None) is None
    merged = with_base([{"prompt": "p", "generation": "tuned"}], [{"prompt": "p", "generation": "base"}])
    assert list(merged[0]) == ["prompt", "base generation", "generation"]


def fake_run(services, run_id: str, predictions: list[dict], **config) -> None:
    import yaml

    from studio.config import RunConfig

    folder = services.workspace.runs / run_id
    (folder / "model").mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(RunConfig.from_dict({"name": run_id, **config}).to_dict()))
    with open(folder / "predictions_test.jsonl", "w") as f:
        for p in predictions:
            f.write(json.dumps(p) + "\n")
    (folder / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.5}}))


def test_compare_runs_diff_configs_and_escape_exported_predictions(services, tmp_path):
    from studio.ui.downloads import config_file, predictions_csv
    from studio.ui.evaluate_tab import compare_runs
    from studio.ui.runs_tab import config_diff_html

    other = [dict(p) for p in PREDICTIONS]
    other[1] = {**other[1], "predicted": "negative", "confidence": 0.8, "correct": True}
    fake_run(services, "run-a", PREDICTIONS, training={"learning_rate": 1e-4})
    fake_run(services, "run-b", other, training={"learning_rate": 3e-4})

    summary, frame = compare_runs(services, "run-a", "run-b", "test")
    assert "66.7%" in summary and len(frame) == 1 and frame.iloc[0]["right"] == "B"
    diff = config_diff_html(services, "run-a", "run-b")
    assert "training.learning_rate" in diff and "name" in diff and "training.epochs" not in diff

    exported = pd.read_csv(predictions_csv(services, "run-a", tmp_path))
    assert exported["text"].tolist()[1].startswith("'=")  # a formula-like cell is escaped
    assert json.loads(exported["probabilities"][0]) == {"positive": 0.9, "negative": 0.1}
    assert "learning_rate" in config_file(services, "run-a", tmp_path).read_text()


def test_model_cache_loads_once_and_evicts_the_least_recently_used():
    from studio.ui.model_cache import ModelCache

    loads = []
    free = {"bytes": 10 << 30}
    cache = ModelCache(max_models=2, min_free_bytes=1 << 30, loader=lambda path: loads.append(str(path)) or str(path),
                       free_bytes=lambda: free["bytes"])
    assert cache.get("a") == "a" and cache.get("a") == "a" and loads == ["a"]
    cache.get("b")
    cache.get("a")  # a is now the most recent
    cache.get("c")  # over the count: b goes
    assert cache.keys() == ["a", "c"]
    free["bytes"] = 0  # low memory: everything else goes before a new load
    cache.get("d")
    assert cache.keys() == ["d"]


# ---- Playground input, the serve command --------------------------------------------------------------
def test_playground_text_becomes_each_tasks_unlabeled_input():
    from types import SimpleNamespace

    from studio.config import RunConfig
    from studio.tasks import get_task
    from studio.ui.playground_tab import input_frame

    def trained(task: str):
        return SimpleNamespace(task=get_task(task), config=RunConfig.from_dict({"task": {"name": task}}))

    df = input_frame(trained("classification"), "a fine film")
    assert df["text"].tolist() == ["a fine film"]
    df = input_frame(trained("ner"), "Ada lives in Paris")
    assert df["tokens"].tolist() == [["Ada", "lives", "in", "Paris"]]
    df = input_frame(trained("generation"), "what colour is the sky ?")
    assert df["messages"].tolist() == [[{"role": "user", "content": "what colour is the sky ?"}]]
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]
    df = input_frame(trained("generation"), "bye", history=turns)
    assert df["messages"].tolist() == [turns]


def test_serve_command_and_bare_studio_open_the_app(monkeypatch, tmp_path):
    import studio.web.server
    from studio.cli import build_parser, main

    calls = []
    monkeypatch.setattr(studio.web.server, "serve", lambda **kwargs: calls.append(kwargs) or 0)
    assert main(["serve", "--port", "7999", "--host", "0.0.0.0", "--model-dir", str(tmp_path)]) == 0
    assert calls[-1] == {"host": "0.0.0.0", "port": 7999, "workspace": None, "model_dirs": [str(tmp_path)],
                         "insecure": False, "max_upload_mb": 200, "behind_https": False}
    assert main(["--workspace", str(tmp_path / "ws")]) == 0  # no command: the app on its defaults
    assert calls[-1] == {"host": "127.0.0.1", "port": 7860, "workspace": str(tmp_path / "ws"), "model_dirs": None,
                         "insecure": False, "max_upload_mb": 200, "behind_https": False}
    assert main(["serve", "--host", "0.0.0.0", "--insecure", "--max-upload-mb", "5"]) == 0
    assert calls[-1]["insecure"] is True and calls[-1]["max_upload_mb"] == 5
    assert main([]) == 0 and calls[-1]["port"] == 7860
    assert "serve" in build_parser().format_help()


def test_with_accounts_members_change_only_their_own_runs(services):
    from types import SimpleNamespace

    from studio.errors import StudioError
    from studio.users import UserStore

    users = UserStore(services.workspace.root)
    users.add("ada", "long enough secret", "member")
    users.add("root", "long enough secret", "admin")
    run = SimpleNamespace(id="r1", owner="bob")
    services.check_may_change(None, run)  # no accounts in use for this request
    services.check_may_change(SimpleNamespace(username="root"), run)
    services.check_may_change(SimpleNamespace(username="bob"), run)
    with pytest.raises(StudioError, match="belongs to bob"):
        services.check_may_change(SimpleNamespace(username="ada"), run)


def test_the_runs_table_says_which_cluster_node_a_ray_run_is_on(services, tmp_path):
    from studio.jobs.store import RunRecord
    from studio.ui.runs_tab import runs_frame

    store = services.jobs.store  # finished runs: the supervisor leaves them as they are
    store.upsert(RunRecord(id="here", run_dir=str(tmp_path / "here"), status="completed", name="here"))
    store.upsert(RunRecord(id="placed", run_dir=str(tmp_path / "placed"), status="completed", name="placed", executor="ray",
                           job_id="studio-placed-1", node="10.0.0.7"))
    store.upsert(RunRecord(id="never", run_dir=str(tmp_path / "never"), status="failed", name="never", executor="ray"))
    frame, _ = runs_frame(services, None, None, None, None)
    status = dict(zip(frame.iloc[:, 0], frame.iloc[:, 5]))
    assert status == {"here": "completed", "placed": "completed · ray 10.0.0.7", "never": "failed · ray"}
