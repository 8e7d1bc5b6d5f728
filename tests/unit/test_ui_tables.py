"""What the Data and Evaluate tables put first, the split's notes in the page's language, and the
encoding a user chose reaching the run's configuration (no browser: the plain functions)."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

pytest.importorskip("gradio")

from studio.ui import i18n  # noqa: E402


def test_the_preview_puts_the_tasks_role_columns_first():
    from studio.ui.data_state import DataState
    from studio.ui.data_tab import preview_columns

    state = DataState(task="classification", columns={"text": "review", "label": "feeling"})
    assert preview_columns(state, ["id", "title", "review", "date", "feeling"]) == ["review", "feeling", "id", "title", "date"]
    # No task yet, or a mapped column the file does not have: the file's own order.
    assert preview_columns(DataState(), ["a", "b"]) == ["a", "b"]
    assert preview_columns(DataState(task="classification", columns={"label": "gone"}), ["a", "b"]) == ["a", "b"]


def test_prediction_tables_show_gold_and_predicted_before_the_text():
    from studio.ui.evaluate_tab import outcome_first, rows_frame

    row = {"text": "a long review " * 30, "gold": "positive", "predicted": "negative", "confidence": 0.6, "correct": False}
    assert list(outcome_first(row)) == ["gold", "predicted", "correct", "confidence", "text"]
    generation = {"prompt": "p", "reference": "r", "base generation": "b", "generation": "g", "rougeL": 0.5}
    assert list(outcome_first(generation)) == ["rougeL", "reference", "base generation", "generation", "prompt"]
    frame = rows_frame([row], [0])
    assert list(frame.columns) == ["#", "gold", "predicted", "correct", "confidence", "text"]


def test_the_comparison_shows_who_was_right_and_the_labels_first(tmp_path, monkeypatch):
    import json

    import yaml

    from studio.config import RunConfig
    from studio.ui.app import make_services
    from studio.ui.evaluate_tab import compare_runs

    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    services = make_services(tmp_path / "ws", [])
    try:
        for run_id, predicted in (("run-a", "positive"), ("run-b", "negative")):
            folder = services.workspace.runs / run_id
            folder.mkdir(parents=True)
            (folder / "config.yaml").write_text(yaml.safe_dump(RunConfig.from_dict({"name": run_id}).to_dict()))
            row = {"text": "long text " * 40, "gold": "positive", "predicted": predicted, "correct": predicted == "positive"}
            (folder / "predictions_test.jsonl").write_text(json.dumps(row) + "\n")
        _, frame = compare_runs(services, "run-a", "run-b", "test")
        assert list(frame.columns)[:4] == ["#", "right", "gold", "predicted (A)"]
        assert list(frame.columns)[-1] == "text"
    finally:
        services.jobs.shutdown()


def test_split_notes_keep_their_english_and_are_worded_in_chinese_in_the_page(monkeypatch):
    from studio.data.split import split_frame
    from studio.ui.data_tab import note_text

    df = pd.DataFrame({"text": [str(i) for i in range(60)], "label": ["a"] * 28 + ["b"] * 30 + ["x"] * 2})
    _, notes = split_frame(df, 0.1, 0.1, seed=3, stratify="label")
    assert notes == ["class 'x' has only 2 examples: kept in train only, as there are too few to stratify",
                     "split 60 rows into train 48, validation 6, test 6 (stratified on 'label', seed 3)",
                     "the validation and test split(s) have fewer than 20 rows: their metrics will be noisy"]
    assert [n.kind for n in notes] == ["rare_kept", "split", "small"]
    assert pickle.loads(pickle.dumps(notes[1])).values["sizes"] == {"train": 48, "validation": 6, "test": 6}
    assert note_text(notes[1]) == "split 60 rows into train 48, validation 6, test 6 (stratified on 'label', seed 3)"
    monkeypatch.setattr(i18n, "current_lang", lambda: "zh")  # a Chinese page's event
    worded = [note_text(n) for n in notes]
    assert worded == ["类别“x”只有 2 个样本：样本太少无法分层，只放在训练集中",
                      "已将 60 行拆分为训练集 48，验证集 6，测试集 6（按“label”分层，随机种子 3）",
                      "验证集和测试集不足 20 行：其指标波动会较大"]


def test_the_chosen_encoding_reaches_the_run_config_and_the_read(tmp_path):
    from studio.ui.data_state import DataState, make_config
    from studio.ui.data_tab import READS
    from studio.tasks import get_task

    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9 tr\xe8s bien \x81,pos\nno \x8d here,neg\n".encode("latin-1"))
    state = DataState(path=str(path), task="classification", columns={"text": "text", "label": "label"})
    assert make_config(state).data.encoding == "auto"
    assert make_config(state.changed(encoding="cp1251")).data.encoding == "cp1251"
    task = get_task("classification")
    auto = READS.read(task, path)
    chosen = READS.read(task, path, None, "cp1251")
    assert auto.encoding == "latin-1" and auto.df["text"][0].startswith("café")
    assert chosen.encoding == "cp1251" and chosen.df["text"][0].startswith("cafй")


def test_evaluate_sets_the_starting_models_figures_beside_the_tuned_ones(monkeypatch):
    from studio.ui.evaluate_tab import base_notes

    generation = {"test": {"rougeL": 0.52, "loss": 1.2, "examples": 4}, "test_base": {"rougeL": 0.11, "loss": 3.0}}
    assert base_notes(generation) == [("info", "test, before fine-tuning → after: rougeL 0.11 → 0.52; loss 3.0 → 1.2")]
    preference = {"validation": {"preference_accuracy": 0.6, "preference_accuracy_base": 0.4},
                  "test": {"preference_accuracy": 0.7, "preference_accuracy_base": 0.55, "reward_accuracy": 0.65,
                           "reward_margin": 0.31, "loss": 0.6}}
    notes = base_notes(preference)
    assert notes[0] == ("info", "test, before fine-tuning → after: preference accuracy 0.55 → 0.7")
    assert "reward accuracy 0.65" in notes[1][1] and "margin 0.31" in notes[1][1]
    assert base_notes({"test": {"accuracy": 0.9, "loss": 0.3}}) == []  # nothing scored before tuning: nothing to say
    assert base_notes({"test": {"rougeL": float("nan")}, "test_base": {"rougeL": 0.1}}) == []
    monkeypatch.setattr(i18n, "current_lang", lambda: "zh")
    assert base_notes(generation)[0][1].startswith("测试集，微调前 → 微调后：")
