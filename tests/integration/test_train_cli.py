"""End to end through the CLI with a tiny random BERT (seconds): the run directory contract."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from studio.cli import main
from studio.allocator import worker_allocator
from studio.models.estimate import memory_text
from studio.runs.events import read_events
from tests.conftest import only_run, toy_sentiment_rows, train_quietly, write_csv


def make_config(tmp_path: Path, backbone: Path, train: Path, **training) -> Path:
    config = {
        "name": "toy",
        "data": {"train": str(train)},
        "model": {"backbone": str(backbone)},
        "training": {"epochs": 3, "learning_rate": 3e-3, "batch_size": 8, "early_stopping_patience": 0, **training},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory, tiny_encoder):
    """One run of the toy config (3 epochs on 200 rows), trained once for the tests that only read a
    finished run, predict with it or train its saved config again: every run starts a worker
    process (seconds), so sharing it keeps the module quick. No test may change its folder."""
    folder = tmp_path_factory.mktemp("toy-run")
    train = write_csv(folder / "reviews.csv", toy_sentiment_rows(200))
    cfg = make_config(folder, tiny_encoder, train)
    trained = train_quietly(cfg, folder)
    trained.config = cfg
    return trained


def test_train_leaves_the_documented_run_directory(toy_run):
    out = toy_run.out
    assert "test: loss=" in out and "accuracy=" in out

    run = toy_run.run
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["training"]["learning_rate"] == 3e-3 and resolved["training"]["max_length"] >= 8
    assert resolved["training"]["batch_size"] == 8

    events, _ = read_events(run)
    kinds = [e["kind"] for e in events]
    statuses = [e["status"] for e in events if e["kind"] == "status"]
    assert statuses == ["starting", "running", "completed"]
    losses = [e for e in events if e["kind"] == "log" and "loss" in e]
    assert losses and all({"learning_rate", "epoch", "step"} <= set(e) for e in losses)
    epoch_evals = [e for e in events if e["kind"] == "eval" and e["split"] == "validation" and "runtime" not in e["metrics"]]
    assert len([e for e in epoch_evals if "accuracy" in e["metrics"]]) >= 2  # one per epoch + final
    progress = [e for e in events if e["kind"] == "progress"]
    assert progress[-1]["step"] == progress[-1]["total"] and "eta_s" in progress[-1]
    assert "error" not in kinds
    settings = next(e for e in events if e["kind"] == "settings")
    assert (settings["device"], settings["precision"], settings["batch_size"]) == ("cpu", "fp32", 8)
    assert settings["allocator"] == worker_allocator()  # jemalloc where the system has it
    memory = next(e for e in events if e["kind"] == "memory")
    assert memory["measured"] == "process_above_start" and 0 < memory["peak_gib"] < 4
    assert memory["estimated_gib"] == settings["estimated_peak_gib"] > 0
    card = (run / "README.md").read_text()
    assert "- trained on cpu: fp32 · batch 8" in card and f"- memory: peak {memory_text(memory['peak_gib'])} above" in card

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train"]["peak_memory_gib"] == memory["peak_gib"]
    assert metrics["headline"]["name"] == "accuracy"
    assert set(metrics["test"]["per_class"]) == {"negative", "positive"}
    assert metrics["test"]["confusion_matrix"]["labels"] == ["negative", "positive"]
    # The classical baseline on the same splits, logged before training and compared in the summary.
    baseline = metrics["baseline"]
    assert baseline["method"].startswith("TF-IDF") and {"accuracy", "macro_f1"} <= set(baseline["test"])
    assert baseline["majority"]["test"]["accuracy"] <= baseline["test"]["accuracy"]
    assert any(e["kind"] == "log" and str(e.get("message", "")).startswith("classical baseline (TF-IDF") for e in events)
    assert f"test accuracy: fine-tuned {metrics['test']['accuracy']:.3f} vs baseline {baseline['test']['accuracy']:.3f}" in out
    assert "Against a classical baseline" in card
    assert metrics["test"]["accuracy"] >= 0.8  # the toy data is easy: the model must have learned
    assert 0 <= metrics["validation"]["accuracy"] <= 1

    predictions = [json.loads(line) for line in (run / "predictions_test.jsonl").read_text().splitlines()]
    assert len(predictions) == metrics["test"]["examples"]
    first = predictions[0]
    assert {"text", "gold", "predicted", "probabilities", "confidence", "correct"} <= set(first)
    assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)

    assert (run / "worker.log").exists() and (run / "README.md").read_text().startswith("# toy")
    checkpoints = list((run / "checkpoints").glob("checkpoint-*"))
    assert 1 <= len(checkpoints) <= 2

    # The model loads with plain transformers, no studio code.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(run / "model")
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    assert model.config.id2label == {0: "negative", 1: "positive"}
    logits = model(**tokenizer(["the film was great and lovely"], return_tensors="pt")).logits
    assert model.config.id2label[int(logits.argmax())] == "positive"


def test_runs_show_tells_what_the_worker_chose_and_the_memory_it_measured(toy_run, capsys):
    capsys.readouterr()
    assert main(["runs", "show", toy_run.run.name, "--workspace", str(toy_run.workspace.root)]) == 0
    out = capsys.readouterr().out
    peak = json.loads((toy_run.run / "metrics.json").read_text())["train"]["peak_memory_gib"]
    assert "settings: fp32 · batch 8 · " in out
    assert f"memory: peak {memory_text(peak)} above the process's start (estimated " in out


def test_the_saved_config_reruns_with_the_same_seed_to_the_same_metrics(toy_run, workspace):
    """The run's saved, resolved config is a config 'studio train' takes as it is, and training it
    again (same config, same seed) gives the same metrics and predictions."""
    assert main(["train", str(toy_run.run / "config.yaml"), "--workspace", str(workspace.root), "--quiet"]) == 0
    runs = [toy_run.run, only_run(workspace)]
    a, b = (json.loads((r / "metrics.json").read_text()) for r in runs)
    assert a["test"]["loss"] == pytest.approx(b["test"]["loss"], rel=1e-6)
    assert a["test"]["accuracy"] == b["test"]["accuracy"]
    pa, pb = ((r / "predictions_test.jsonl").read_text() for r in runs)
    assert pa == pb


def test_lora_run_saves_an_adapter_loadable_with_peft(tmp_path, tiny_encoder, toy_csv, workspace):
    cfg = make_config(tmp_path, tiny_encoder, toy_csv, epochs=1)
    assert main(["train", str(cfg), "--workspace", str(workspace.root), "--quiet",
                 "--set", "method.kind=lora", "--set", "method.lora.r=4"]) == 0
    run = only_run(workspace)
    assert (run / "model" / "adapter_config.json").exists()
    events, _ = read_events(run)
    running = next(e for e in events if e.get("status") == "running")
    assert running["trainable_parameters"] < running["parameters"] / 2

    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(tiny_encoder, num_labels=2)
    model = PeftModel.from_pretrained(base, run / "model")
    assert model.peft_config["default"].r == 4


def test_overrides_rerun_a_saved_config_on_other_data(tmp_path, tiny_encoder, toy_csv, workspace):
    cfg = make_config(tmp_path, tiny_encoder, toy_csv, epochs=1)
    other = write_csv(tmp_path / "other.csv", toy_sentiment_rows(60, seed=3))
    assert main(["train", str(cfg), "--workspace", str(workspace.root), "--quiet",
                 "--set", f"data.train={other}", "--set", "training.max_steps=3"]) == 0
    run = only_run(workspace)
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["data"]["train"] == str(other) and resolved["training"]["max_steps"] == 3
    assert json.loads((run / "metrics.json").read_text())["train"]["global_step"] == 3
    # That the saved, resolved config reruns as it is: see test_the_saved_config_reruns_with_the_same_seed_to_the_same_metrics.


def test_predict_writes_escaped_csv_and_jsonl(tmp_path, toy_run):
    run = toy_run.run
    inputs = write_csv(tmp_path / "new.csv", [{"text": "=HYPERLINK(\"x\") great lovely film"}, {"text": "awful boring plot"}])
    assert main(["predict", run.name, "--input", str(inputs), "--workspace", str(toy_run.workspace.root)]) == 0
    out = pd.read_csv(tmp_path / "new.predictions.csv", dtype=str)
    assert out["text"][0].startswith("'=")
    assert set(out["predicted"]) <= {"positive", "negative"}
    assert json.loads(out["probabilities"][1]).keys() == {"negative", "positive"}
    assert main(["predict", str(run), "--input", str(inputs), "--output", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert rows[1]["predicted"] == "negative"


def test_early_stopping_ends_before_the_ceiling_and_restores_the_best_checkpoint(tmp_path, tiny_encoder, workspace):
    # The toy reviews are learned within a few epochs; a ceiling of 40 leaves validation nothing to gain.
    cfg = make_config(tmp_path, tiny_encoder, write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(120)),
                      epochs=40, early_stopping_patience=2)
    assert main(["train", str(cfg), "--workspace", str(workspace.root), "--quiet"]) == 0
    run = only_run(workspace)
    metrics = json.loads((run / "metrics.json").read_text())
    stopped = metrics["train"]["stopped_early"]
    assert stopped["epoch"] < 40 and stopped["ceiling"] == "40 epochs" and stopped["patience"] == 2
    assert stopped["message"].startswith(f"stopped at epoch {stopped['epoch']:.1f} of at most 40 epochs: validation "
                                         "accuracy did not improve for 2 evaluations")
    events, _ = read_events(run)
    evaluations = [e for e in events if e["kind"] == "eval" and e["split"] == "validation"]
    # About four evaluations an epoch (eval_strategy auto: 12 steps an epoch, one every 3 steps).
    assert sorted({e["step"] for e in evaluations})[:3] == [3, 6, 9]
    assert metrics["train"]["global_step"] < 40 * 12
    # The weights restored are the best evaluation's: scoring them again gives the best score.
    assert metrics["validation"]["accuracy"] == pytest.approx(stopped["best"])
    assert metrics["train"]["best_checkpoint"] == f"checkpoint-{stopped['best_step']}"


def test_predicting_a_file_reports_progress_and_leaves_no_partial_file(tmp_path, toy_run, monkeypatch):
    from studio.inference import files
    from studio.inference.files import predict_file
    from studio.inference.loading import load_trained

    monkeypatch.setattr(files, "CHUNK_ROWS", 4)
    trained = load_trained(toy_run.run)
    inputs = write_csv(tmp_path / "many.csv", [{"text": r["text"]} for r in toy_sentiment_rows(10, seed=5)])
    seen = []
    done = predict_file(trained, inputs, progress=lambda n, total: seen.append((n, total)))
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert done.rows == 10 and done.path == tmp_path / "many.predictions.csv"
    assert len(pd.read_csv(done.path)) == 10

    # A prediction that fails half-way leaves neither the final file nor a partial one.
    def broken(df, batch_size=32):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(trained, "predict", broken)
    with pytest.raises(RuntimeError):
        predict_file(trained, inputs, tmp_path / "never.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.csv", "many.predictions.csv"]


@pytest.mark.parametrize("problem_type, rows, headline", [
    ("multi_label", [{"text": r["text"], "label": "|".join([r["label"], "review"] if i % 3 else [r["label"]])}
                     for i, r in enumerate(toy_sentiment_rows(80))], "micro_f1"),
    ("regression", [{"text": r["text"], "label": "4.5" if r["label"] == "positive" else "1.25"}
                    for r in toy_sentiment_rows(80)], "mse"),
])
def test_multi_label_and_regression_runs(tmp_path, tiny_encoder, workspace, problem_type, rows, headline):
    train = write_csv(tmp_path / "train.csv", rows)
    cfg = make_config(tmp_path, tiny_encoder, train, epochs=1)
    extra = ["--set", "task.label_delimiter=|"] if problem_type == "multi_label" else []
    assert main(["train", str(cfg), "--workspace", str(workspace.root), "--quiet", *extra]) == 0
    run = only_run(workspace)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["headline"]["name"] == headline
    assert headline in metrics["test"]
    task_meta = json.loads((run / "task.json").read_text())
    assert task_meta["problem_type"] == problem_type
    first = json.loads((run / "predictions_test.jsonl").read_text().splitlines()[0])
    assert isinstance(first["predicted"], list if problem_type == "multi_label" else float)
