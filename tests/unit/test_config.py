import pytest

from studio.config import RunConfig, apply_preset, field_help, size_class, TrainingConfig
from studio.errors import ConfigError


def test_yaml_round_trip(tmp_path):
    config = RunConfig.from_dict({
        "name": "demo",
        "data": {"train": "a.csv", "columns": {"text": "review", "label": "stars"}, "split": {"validation": 0.2}},
        "method": {"kind": "lora", "lora": {"r": 8, "target_modules": ["query", "value"]}},
        "training": {"epochs": 2, "learning_rate": "5e-5"},
    })
    path = tmp_path / "c.yaml"
    config.save(path)
    loaded = RunConfig.load(path)
    assert loaded == config
    assert loaded.training.learning_rate == 5e-5
    assert loaded.method.lora.target_modules == ["query", "value"]
    assert loaded.data.split.test == 0.1


@pytest.mark.parametrize("data, words", [
    ({"trainig": {}}, ["'trainig'", "did you mean 'training'"]),
    ({"training": {"lr": 1e-4}}, ["'training.lr'"]),
    ({"training": {"epochs": "three"}}, ["'training.epochs'", "'three'"]),
    ({"training": {"batch_size": 0}}, ["'training.batch_size'", "> 0"]),
    ({"training": {"batch_size": 2.5}}, ["'training.batch_size'", "whole number"]),
    ({"training": {"precision": "fp8"}}, ["'training.precision'", "bf16"]),
    ({"method": {"kind": "dora"}}, ["'method.kind'", "qlora"]),
    ({"method": {"lora": {"dropout": 1.5}}}, ["'method.lora.dropout'"]),
    ({"data": {"split": {"validation": 0.5, "test": 0.45}}}, ["'data.split'"]),
    ({"data": {"columns": ["text"]}}, ["'data.columns'", "mapping"]),
    ({"model": {"trust_remote_code": "yes"}}, ["'model.trust_remote_code'", "true or false"]),
    ({"training": {"eval_strategy": "steps"}}, ["'training.eval_steps'"]),
    ({"training": {"learning_rate": 3}}, ["'training.learning_rate'"]),
])
def test_bad_keys_and_values_name_the_key(data, words):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(data)
    for word in words:
        assert word in str(info.value)


def test_bad_yaml_reports_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  epochs: [1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        RunConfig.load(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        RunConfig.load(tmp_path / "nope.yaml")


def test_overrides_dotted_keys():
    config = RunConfig().with_overrides(["data.train=other.csv", "training.epochs=5", "method.lora.r=4", "model.backbone=roberta-base"])
    assert config.data.train == "other.csv"
    assert config.training.epochs == 5.0
    assert config.method.lora.r == 4
    assert config.model.backbone == "roberta-base"
    special = RunConfig().with_overrides(["task.label_delimiter=|", "data.validation=#1.csv", "training.max_steps=null"])
    assert special.task.options["label_delimiter"] == "|" and special.data.validation == "#1.csv"
    assert special.training.max_steps is None
    with pytest.raises(ConfigError, match="training.epoch'"):
        RunConfig().with_overrides(["training.epoch=5"])
    with pytest.raises(ConfigError, match="unknown config section 'trainig'"):
        RunConfig().with_overrides(["trainig.epochs=5"])
    with pytest.raises(ConfigError, match="section.key=value"):
        RunConfig().with_overrides(["training.epochs"])


def test_relative_data_paths_follow_the_config_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("text,label\n", encoding="utf-8")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "c.yaml").write_text("data:\n  train: ../data/t.csv\n", encoding="utf-8")
    config = RunConfig.load(tmp_path / "cfg" / "c.yaml")
    assert config.data.train == str((tmp_path / "data" / "t.csv").resolve())


def test_presets_fill_only_unset_fields():
    config = RunConfig.from_dict({"training": {"preset": "balanced", "epochs": 7}})
    small = apply_preset(config, 22_000_000)
    assert small.training.epochs == 7  # the user's value wins
    assert small.training.learning_rate == 1e-4 and small.training.batch_size == 16
    base = apply_preset(config, 110_000_000)
    assert base.training.learning_rate < small.training.learning_rate
    quick = apply_preset(RunConfig.from_dict({"training": {"preset": "quick"}}), 22_000_000)
    assert quick.training.epochs == 1 and quick.training.early_stopping_patience == 0
    lora = apply_preset(RunConfig.from_dict({"method": {"kind": "lora"}}), 110_000_000)
    assert lora.training.learning_rate > base.training.learning_rate
    assert config.training.learning_rate is None  # the input is not modified


def test_size_classes():
    assert size_class(22_700_000) == "small"
    assert size_class(125_000_000) == "base"
    assert size_class(1_500_000_000) == "large"


def test_field_help_reads_docstrings():
    helps = field_help(TrainingConfig)
    assert "overrides epochs" in helps["max_steps"]


def test_yaml_booleans_read_as_the_choice_written():
    # YAML reads a bare `no` as false; for a field whose choices include "no" that is what was meant.
    config = RunConfig().with_overrides(["training.eval_strategy=no", "training.save_strategy=no"])
    assert config.training.eval_strategy == "no" and config.training.save_strategy == "no"
    assert RunConfig.from_dict({"training": {"eval_strategy": False}}).training.eval_strategy == "no"
    with pytest.raises(ConfigError, match="'training.precision'"):
        RunConfig.from_dict({"training": {"precision": True}})


def test_the_task_section_keeps_the_options_as_written_beside_the_name(tmp_path):
    """The configuration types no task option (the task does): the YAML shape stays flat."""
    config = RunConfig.from_dict({"task": {"name": "generation", "system_prompt": "Be brief.", "anything": 1}})
    assert config.task.name == "generation" and config.task.options == {"system_prompt": "Be brief.", "anything": 1}
    assert config.to_dict()["task"] == {"name": "generation", "system_prompt": "Be brief.", "anything": 1}
    config.save(tmp_path / "c.yaml")
    assert RunConfig.load(tmp_path / "c.yaml") == config
    assert RunConfig().task.name == "classification" and RunConfig().task.options == {}
    assert RunConfig().model.backbone is None  # chosen by the task when a run is submitted (studio.tasks.with_defaults)
    with pytest.raises(ConfigError, match="'task' must be a mapping"):
        RunConfig.from_dict({"task": "generation"})
