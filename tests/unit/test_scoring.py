"""Scoring a split once per checkpoint (studio.training.scoring): the validation loss measured
while training is reused, a classification's or a tagging's loss comes out of its prediction pass, and every
pass reports its progress as phase events."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from studio.runs import RunDir
from studio.runs.event_types import Phase
from studio.runs.events import EventLog, iter_events
from studio.training import scoring


def _trainer(history, step, best=None, load_best=True):
    return SimpleNamespace(state=SimpleNamespace(log_history=history, global_step=step, best_model_checkpoint=best),
                           args=SimpleNamespace(load_best_model_at_end=load_best))


HISTORY = [{"loss": 0.7, "step": 4}, {"eval_loss": 0.61, "step": 4}, {"eval_loss": 0.55, "step": 8},
           {"train_runtime": 3.0, "step": 8}]


def test_the_validation_loss_is_reused_only_when_measured_on_the_weights_the_model_holds():
    assert scoring.evaluated_loss(_trainer(HISTORY, 8, best="out/checkpoint-4")) == 0.61  # the best, loaded
    assert scoring.evaluated_loss(_trainer(HISTORY, 8, best=None)) == 0.55  # the last step
    assert scoring.evaluated_loss(_trainer(HISTORY, 8, best="out/checkpoint-4", load_best=False)) == 0.55
    assert scoring.evaluated_loss(_trainer(HISTORY, 10, best=None)) is None  # trained past the last evaluation
    assert scoring.evaluated_loss(_trainer([], 8)) is None


def _phases(run_dir):
    return [e for _, _, e in iter_events(run_dir) if isinstance(e, Phase)]


def test_a_phase_reports_its_start_throttled_progress_and_its_end_with_an_eta(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(scoring.time, "time", lambda: clock[0])
    log = EventLog(tmp_path)
    progress = scoring.PhaseProgress(log, "scoring", 300, split="test")
    for _ in range(4):  # 4 batches of 30 within half a second of the start: no event
        clock[0] += 0.1
        progress.advance(30)
    clock[0] += 0.5
    progress.advance(0)  # nothing new: nothing written
    clock[0] += 0.1
    progress.advance(30)
    progress.advance(500)  # never past the total
    progress.finish()
    log.close()
    events = _phases(tmp_path)
    assert [(e.done, e.total) for e in events] == [(0, 300), (150, 300), (300, 300)]
    assert events[0].eta_s is None and events[-1].eta_s == 0
    assert events[1].eta_s == pytest.approx(1.0) and events[1].elapsed_s == pytest.approx(1.0)  # 150 in 1 s, 150 to go
    assert all(e.phase == "scoring" and e.split == "test" for e in events)


def test_a_stop_request_ends_a_phase_at_its_next_batch(tmp_path):
    log = EventLog(tmp_path)
    progress = scoring.PhaseProgress(log, "scoring", 10, split="test", stop=RunDir(tmp_path))
    progress.advance(2)
    RunDir(tmp_path).request_stop()
    with pytest.raises(scoring.StopRequested):
        progress.advance(2)
    log.close()


class _Dataset(dict):
    @property
    def column_names(self):
        return list(self)

    def __len__(self):
        return len(self["input_ids"])


def _classifier():
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.embed = torch.nn.Embedding(20, 3)
            self.calls = []

        def forward(self, input_ids=None, attention_mask=None, labels=None):
            self.calls.append(labels)
            mask = attention_mask.unsqueeze(-1).float()
            logits = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
            loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return SimpleNamespace(logits=logits, loss=loss)

    return Tiny()


def _predict(model, rows, batch_size=2):
    """A task's prediction loop: batches of the rows, padded on the right."""
    import torch

    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = max(len(r) for r in chunk)
        ids = torch.tensor([r + [0] * (width - len(r)) for r in chunk])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk])
        with torch.inference_mode():
            out += model(input_ids=ids, attention_mask=mask).logits.argmax(-1).tolist()
    return out


ROWS = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [2, 2], [3]]
LABELS = [0, 1, 2, 1, 0]


def test_the_loss_of_a_classification_comes_out_of_its_prediction_pass():
    import torch

    model = _classifier()
    plain = _predict(model, ROWS)
    with scoring.LossInPredictions(model, _Dataset(input_ids=ROWS, labels=LABELS)) as in_pass:
        predicted = _predict(model, ROWS)
    assert predicted == plain  # the labels change the loss, not the logits
    # One forward pass per batch, each with its rows' labels; averaged per example as the Trainer does.
    assert [c.tolist() for c in model.calls[-3:]] == [[0, 1], [2, 1], [0]]
    expected = []
    for start in range(0, 5, 2):
        chunk = ROWS[start:start + 2]
        width = max(len(r) for r in chunk)
        ids = torch.tensor([r + [0] * (width - len(r)) for r in chunk])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk])
        with torch.no_grad():
            logits = model.embed(ids).mul(mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
            expected += [float(torch.nn.functional.cross_entropy(logits, torch.tensor(LABELS[start:start + 2])))] * len(chunk)
    assert in_pass.loss == pytest.approx(sum(expected) / len(expected), rel=1e-6)
    assert model._forward_pre_hooks == {} and model._forward_hooks == {}  # the hooks are gone


def test_inputs_that_are_not_the_tokenized_rows_give_no_loss():
    model = _classifier()
    other = [[1, 2, 3], [4, 6], [6, 7, 8, 9], [2, 2], [3]]
    with scoring.LossInPredictions(model, _Dataset(input_ids=other, labels=LABELS)) as in_pass:
        predicted = _predict(model, ROWS)
    assert predicted == _predict(model, ROWS) and in_pass.loss is None  # measured the usual way instead
    with scoring.LossInPredictions(model, _Dataset(input_ids=ROWS, labels=LABELS)) as partial:
        _predict(model, ROWS[:3])
    assert partial.loss is None  # not every row was seen


def test_only_a_one_process_task_that_predicts_from_its_tokenized_rows_fuses(monkeypatch):
    data = _Dataset(input_ids=ROWS, labels=LABELS)
    rows_task = SimpleNamespace(predicts_tokenized_rows=True)
    generation = SimpleNamespace(predicts_tokenized_rows=False)
    assert scoring.LossInPredictions.applies(rows_task, data, list(range(5)))
    assert scoring.LossInPredictions.applies(rows_task, data, list(range(3)))  # windows: more rows than sentences
    assert not scoring.LossInPredictions.applies(generation, data, list(range(5)))
    assert not scoring.LossInPredictions.applies(rows_task, data, None)
    assert not scoring.LossInPredictions.applies(rows_task, _Dataset(input_ids=ROWS), list(range(5)))  # no labels
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not scoring.LossInPredictions.applies(rows_task, data, list(range(5)))


def _tagger():
    import torch

    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.embed = torch.nn.Embedding(20, 3)

        def forward(self, input_ids=None, attention_mask=None, labels=None):
            logits = self.embed(input_ids)
            loss = None
            if labels is not None:  # as a token-classification head: mean over the labelled tokens
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1), ignore_index=-100)
            return SimpleNamespace(logits=logits, loss=loss)

    return Tagger()


def test_a_tagging_loss_puts_each_rows_labels_on_its_tokens_whichever_side_is_padded():
    import torch

    tags = [[0, 1, -100], [2, 1], [0, 0, 1, 2], [1, -100], [2]]
    model = _tagger()
    for left in (False, True):
        with scoring.LossInPredictions(model, _Dataset(input_ids=ROWS, labels=tags), per_token=True) as in_pass:
            expected = []
            for start in range(0, 5, 2):
                chunk, chunk_tags = ROWS[start:start + 2], tags[start:start + 2]
                width = max(len(r) for r in chunk)
                pad = [lambda r, v: r + [v] * (width - len(r)), lambda r, v: [v] * (width - len(r)) + r][left]
                ids = torch.tensor([pad(r, 0) for r in chunk])
                mask = torch.tensor([pad([1] * len(r), 0) for r in chunk])
                with torch.inference_mode():
                    model(input_ids=ids, attention_mask=mask)
                    gold = torch.tensor([pad(t, -100) for t in chunk_tags])
                    loss = torch.nn.functional.cross_entropy(model.embed(ids).reshape(-1, 3), gold.reshape(-1), ignore_index=-100)
                expected += [float(loss)] * len(chunk)
        assert in_pass.loss == pytest.approx(sum(expected) / len(expected), rel=1e-6)


def test_counting_examples_counts_rows_of_forward_passes_and_generate_calls_once(tmp_path):
    import torch

    class Generator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def forward(self, input_ids=None):
            return input_ids

        def generate(self, input_ids=None):
            for _ in range(5):  # token by token: five forward passes
                self(input_ids=input_ids)
            return input_ids

    log = EventLog(tmp_path)
    model = Generator()
    progress = scoring.PhaseProgress(log, "scoring", 10, split="test")
    with scoring.counting_examples(model, progress):
        model.generate(input_ids=torch.zeros(4, 3))
        model(input_ids=torch.zeros(3, 3))
    assert progress.done == 7
    assert "generate" not in vars(model) and model._forward_hooks == {}
    log.close()
