"""The plan before launch (studio.planning): the worker's memory number, the time as a range, and
calibration from a finished run's measured steps."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from studio.config import RunConfig
from studio.planning import BackboneInfo, Calibration, DataSize, Machine, make_plan, measure_run
from studio.data.profile import auto_max_length

MINILM = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
          "intermediate_size": 1536, "vocab_size": 30522, "hidden_act": "gelu"}
LENGTHS = [12 + (i * 7) % 50 for i in range(400)]


def config(**training) -> RunConfig:
    return RunConfig.from_dict({"task": {"name": "classification"}, "data": {"train": "x.csv"},
                                "model": {"backbone": "all-MiniLM-L6-v2"}, "method": {"kind": "full"},
                                "training": {"preset": "quick", "device": "cpu", **training}})


def minilm() -> BackboneInfo:
    return BackboneInfo("all-MiniLM-L6-v2", MINILM, 22_700_000)


def data() -> DataSize:
    return DataSize(len(LENGTHS), 50, 50, LENGTHS, 512)


def test_the_plan_records_the_memory_the_worker_records(tmp_path):
    """The Train tab's number and the worker's ``estimated_peak_gib`` for the same config on a CPU."""
    from studio.tasks import get_task
    from studio.tasks.base import TaskMeta
    from studio.training.worker import _speed_settings

    plan = make_plan(config(), minilm(), data(), Machine(False, cpu_cores=2))
    # The worker gets the prepared config (preset and max_length resolved) and the truncated examples.
    prepared = plan.config
    assert prepared.training.max_length == auto_max_length(LENGTHS, 512)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(MINILM))
    train = {"input_ids": [[0] * min(n, prepared.training.max_length) for n in LENGTHS]}
    settings = _speed_settings(prepared, str(folder), train, get_task("classification"), TaskMeta(task="classification"))
    assert plan.memory_gib is not None and plan.memory_gib == settings.estimated_peak_gib
    assert plan.batch_size == settings.batch_size
    low, high = plan.memory_range
    assert low < plan.memory_gib < high


def test_on_a_gpu_the_plan_grows_the_batch_as_the_worker_will():
    from studio.training.speed import choose

    gpu = Machine(True, gpus=1, memory_gib=80.0, cpu_cores=8, name="cuda")
    many = LENGTHS * 50  # enough rows for 100 optimizer steps of a grown batch
    plan = make_plan(config(), minilm(), DataSize(len(many), 50, 50, many, 512), gpu)
    prepared = plan.config
    truncated = [min(n, prepared.training.max_length) for n in many]
    settings = choose(prepared, gpu.hardware(), truncated, MINILM, "encoder", False)
    assert plan.batch_size == settings.batch_size > prepared.training.batch_size
    assert plan.memory_gib == settings.estimated_peak_gib
    # Fewer, larger steps than the preset's batch would take.
    assert plan.steps == -(-len(many) // plan.batch_size)


def test_the_time_is_a_range_holding_loading_training_and_evaluation():
    plan = make_plan(config(), minilm(), data(), Machine(False, cpu_cores=2))
    low, high = plan.seconds_range
    assert low < plan.seconds < high
    assert set(plan.parts) == {"startup", "train", "evaluation"} and all(v > 0 for v in plan.parts.values())
    assert plan.seconds == pytest.approx(sum(plan.parts.values()))
    longer = make_plan(config(epochs=3), minilm(), data(), Machine(False, cpu_cores=2))
    assert longer.steps == 3 * plan.steps and longer.evaluations == 3 * plan.evaluations
    assert longer.parts["train"] == pytest.approx(3 * plan.parts["train"])
    assert longer.parts["startup"] == pytest.approx(plan.parts["startup"])
    # Without the data's size there is no step count and no time, but still the memory.
    unknown = make_plan(config(), minilm(), DataSize(None), Machine(False, cpu_cores=2))
    assert unknown.steps is None and unknown.seconds_range is None and unknown.memory_gib


def finished_run(runs: Path, name: str, *, seq_len: int, batch: int, step_s: float, steps: int = 20,
                 planned_steps: int | None = None, epochs_per_step: float = 0.1, **training) -> Path:
    """A completed run's folder as the worker leaves it: config, events, metrics, split files.
    ``planned_steps`` above ``steps``: early stopping ended it."""
    folder = runs / name
    (folder / "data").mkdir(parents=True)
    config(max_length=seq_len, **training).save(folder / "config.yaml")
    (folder / "data" / "validation.jsonl").write_text('{"text": "a", "label": "x"}\n' * 10)
    (folder / "metrics.json").write_text("{}")
    t = 1000.0
    events = [{"t": t, "kind": "status", "status": "starting"},
              {"t": t + 4, "kind": "settings", "device": "cpu", "batch_size": batch, "packing": False},
              {"t": t + 5, "kind": "status", "status": "running", "total_steps": planned_steps or steps}]
    t += 5
    for step in range(0, steps + 1, 2):
        events.append({"t": t + step * step_s, "kind": "progress", "step": step, "epoch": step * epochs_per_step})
        if step == steps // 2:
            events.append({"t": t + step * step_s + 0.1, "kind": "eval", "split": "validation", "step": step})
            t += 3.0  # the evaluation: not a step
    end = t + steps * step_s
    events += [{"t": end + 1, "kind": "eval", "split": "validation", "step": steps},
               {"t": end + 2, "kind": "status", "status": "completed", "step": steps}]
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return folder


def test_a_finished_runs_steps_calibrate_the_next_plan(tmp_path):
    runs = tmp_path / "runs"
    base = make_plan(config(), minilm(), data(), Machine(False, cpu_cores=2))
    measured_step = base.parts["train"] / base.steps * 3  # this machine is three times slower than the model says
    finished_run(runs, "r1", seq_len=base.seq_len, batch=base.batch_size, step_s=measured_step)
    measurement = measure_run(runs / "r1")
    assert measurement.seconds_per_step == pytest.approx(measured_step)  # the evaluation's pause left out
    assert measurement.startup_s == pytest.approx(5.0)

    calibration = Calibration.load(tmp_path / "cache" / "step_times.json").refresh(runs)
    again = make_plan(config(), minilm(), data(), Machine(False, cpu_cores=2), calibration)
    assert again.calibrated == "run"
    assert again.parts["train"] == pytest.approx(base.steps * measured_step)
    assert again.seconds > base.seconds
    # Kept in the workspace: read back, and not measured twice.
    stored = Calibration.load(tmp_path / "cache" / "step_times.json")
    assert [m.run for m in stored.measurements] == ["r1"] and stored.refresh(runs).measurements == stored.measurements

    # Another setup on this machine: scaled by the measured FLOP rate (the slower machine shows).
    calibration.measurements[0].flops_per_step = 1e11
    other = make_plan(config(batch_size=8), minilm(), data(), Machine(False, cpu_cores=2), calibration)
    plain = make_plan(config(batch_size=8), minilm(), data(), Machine(False, cpu_cores=2))
    assert other.calibrated == "machine" and other.parts["train"] != pytest.approx(plain.parts["train"])


def test_early_stopping_is_expected_a_few_epochs_in_then_where_this_data_stopped(tmp_path):
    balanced = dict(preset="balanced", epochs=10, early_stopping_patience=4)
    plan = make_plan(config(**balanced), minilm(), data(), Machine(False, cpu_cores=2))
    # Fine-tuning peaks within a few epochs: the best near epoch 3, then four evaluations of patience,
    # each a quarter epoch rounded up to whole steps.
    assert 4.0 <= plan.expected_epochs < 4.5 and not plan.stopping_measured
    assert plan.seconds == pytest.approx(sum(plan.parts.values()))
    assert plan.ceiling_seconds > 2 * plan.seconds  # ten epochs to the ceiling, four expected
    without = make_plan(config(**{**balanced, "early_stopping_patience": 0}), minilm(), data(), Machine(False, cpu_cores=2))
    assert without.expected_epochs is None and without.seconds == pytest.approx(without.ceiling_seconds)
    assert without.seconds == pytest.approx(plan.ceiling_seconds)

    # A run of this backbone on this data stopped at epoch 2: the next plan expects that.
    runs = tmp_path / "runs"
    finished_run(runs, "stopped", seq_len=plan.seq_len, batch=plan.batch_size, step_s=0.5, steps=20, planned_steps=100,
                 epochs_per_step=0.1, **balanced)
    calibration = Calibration.load(tmp_path / "cache" / "step_times.json").refresh(runs)
    assert calibration.measurements[0].early_stopped and calibration.measurements[0].epochs_trained == pytest.approx(2.0)
    again = make_plan(config(**balanced), minilm(), data(), Machine(False, cpu_cores=2), calibration)
    assert again.expected_epochs == pytest.approx(2.0) and again.stopping_measured
    other_data = RunConfig.from_dict({**config(**balanced).to_dict(), "data": {"train": "other.csv"}})
    assert make_plan(other_data, minilm(), data(), Machine(False, cpu_cores=2), calibration).expected_epochs == plan.expected_epochs


def test_a_resumed_or_unfinished_run_teaches_nothing(tmp_path):
    folder = finished_run(tmp_path, "r", seq_len=64, batch=8, step_s=0.5)
    lines = (folder / "events.jsonl").read_text().splitlines()
    (folder / "events.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    assert measure_run(folder) is None
    (folder / "events.jsonl").write_text("\n".join(lines + [lines[0], lines[-1]]) + "\n")
    assert measure_run(folder) is None


def test_time_spans_read_as_ranges():
    from studio.ui.train_tab import span_text

    assert span_text(3, 6) == "a few seconds"
    assert span_text(40, 62) == "40–62 s"
    assert span_text(190, 236) == "3–4 min"
    assert span_text(3 * 3600, 4.5 * 3600) == "3.0–4.5 h"


def test_the_data_state_is_a_dataclass_that_survives_copies():
    from studio.ui.data_state import DataState, make_config

    state = DataState(path="a.csv", name="a.csv", task="classification", columns={"text": "t", "label": "l"}, rows=40)
    copied = copy.deepcopy(state)
    assert copied == state and copied.columns is not state.columns
    changed = state.changed(rows=41)
    assert changed.rows == 41 and state.rows == 40 and changed.split is not state.split
    with pytest.raises(TypeError):
        state.changed(nope=1)
    made = make_config(state)
    assert made.data.train == "a.csv" and made.data.columns == {"text": "t", "label": "l"} and made.data.split.validation == 0.1
