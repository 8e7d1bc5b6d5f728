"""Each split is scored once per checkpoint: after training, the validation split's loss is the
one measured on the same weights while training and a classification's test loss comes out of
its prediction pass, with the metrics and predictions of scoring each split twice (a tiny BERT,
trained in this process)."""

from __future__ import annotations

import json

import pytest

from studio.runs.events import read_events
from tests.conftest import toy_sentiment_rows, write_csv


def _train(tmp_path, tiny_encoder, name, monkeypatch, *, twice=False):
    """Train the toy run; returns its folder and, per prediction pass, (rows, rows the model saw)."""
    from transformers import Trainer

    from studio.config import RunConfig
    from studio.tasks import with_defaults
    from studio.tasks.classification import TextClassification
    from studio.training import scoring, worker
    from studio.training.prepare import prepare_run
    from studio.workspace import Workspace

    train = write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(80))
    config = RunConfig.from_dict({"name": name, "data": {"train": str(train)}, "model": {"backbone": str(tiny_encoder)},
                                  "training": {"epochs": 2, "batch_size": 8, "learning_rate": 3e-3, "max_length": 32,
                                               "early_stopping_patience": 0}})
    prepared = prepare_run(with_defaults(config), Workspace.at(tmp_path / name))
    passes, evaluations = [], []
    evaluate, predict = Trainer.evaluate, TextClassification.predict

    def counted_evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        if metric_key_prefix != "eval":  # the final scoring, not an evaluation while training
            evaluations.append(metric_key_prefix)
        return evaluate(self, eval_dataset, ignore_keys, metric_key_prefix)

    def counted_predict(self, model, tokenizer, df, meta, max_length, batch_size=32):
        seen = []
        handle = model.register_forward_hook(lambda m, args, kwargs, out: seen.append(kwargs["input_ids"].shape[0]),
                                             with_kwargs=True)
        try:
            return predict(self, model, tokenizer, df, meta, max_length, batch_size)
        finally:
            handle.remove()
            passes.append((len(df), sum(seen)))

    monkeypatch.setattr(Trainer, "evaluate", counted_evaluate)
    monkeypatch.setattr(TextClassification, "predict", counted_predict)
    if twice:  # as before: the Trainer's evaluation for the loss, then the predictions
        monkeypatch.setattr(scoring.LossInPredictions, "applies", staticmethod(lambda *a: False))
        monkeypatch.setattr(worker, "evaluated_loss", lambda trainer: None)
    assert worker.run(prepared.run_dir) == 0
    monkeypatch.undo()
    return prepared.run_dir, passes, evaluations


def test_each_split_is_scored_in_one_pass_with_the_same_metrics_and_predictions(tmp_path, tiny_encoder, monkeypatch):
    run, passes, evaluations = _train(tmp_path, tiny_encoder, "once", monkeypatch)
    assert evaluations == []  # no split evaluated apart from its predictions
    assert [seen for rows, seen in passes] == [rows for rows, seen in passes] and len(passes) == 2  # validation, test

    events = read_events(run)[0]
    phases = [e for e in events if e["kind"] == "phase" and e["phase"] == "scoring"]
    assert [p["split"] for p in phases if p["done"] == 0] == ["validation", "test"]
    for split, (rows, _) in zip(("validation", "test"), passes):
        last = [p for p in phases if p["split"] == split][-1]
        assert (last["done"], last["total"], last["eta_s"]) == (rows, rows, 0) and "part" not in last
    assert any(e["kind"] == "phase" and e["phase"] == "evaluating" for e in events)  # evaluations while training too

    before, passes_before, evaluations_before = _train(tmp_path, tiny_encoder, "twice", monkeypatch, twice=True)
    assert evaluations_before == ["validation", "test"]
    parts = [e.get("part") for e in read_events(before)[0] if e["kind"] == "phase" and e["phase"] == "scoring" and e["done"] == 0]
    assert parts == ["loss", "predictions", "loss", "predictions"]
    new, old = (json.loads((r / "metrics.json").read_text()) for r in (run, before))
    for split in ("validation", "test"):
        assert list(new[split]) == list(old[split])  # the same keys, in the same order
        assert new[split]["loss"] == pytest.approx(old[split]["loss"], rel=1e-5)
        assert {k: v for k, v in new[split].items() if k != "loss"} == {k: v for k, v in old[split].items() if k != "loss"}
        assert (run / f"predictions_{split}.jsonl").read_bytes() == (before / f"predictions_{split}.jsonl").read_bytes()
