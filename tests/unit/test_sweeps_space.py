"""A sweep's search space: parsed and checked like a config, the default one per method."""

from __future__ import annotations

import pytest

from studio.config import RunConfig
from studio.errors import ConfigError
from studio.sweeps.space import check_space, default_space, parse_space, space_to_dict, with_values


def config(**method) -> RunConfig:
    return RunConfig.from_dict({"data": {"train": "x.csv"}, "model": {"backbone": "all-MiniLM-L6-v2"}, "method": method})


def test_a_space_round_trips_and_integer_ranges_are_told_apart():
    data = {"training.learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}, "training.epochs": {"low": 2, "high": 6},
            "training.batch_size": {"choices": [8, 16]}}
    space = parse_space(data)
    assert space["training.epochs"].integer and not space["training.learning_rate"].integer
    assert space_to_dict(space) == data


@pytest.mark.parametrize("data, words", [
    ({"training.learning_rate": {"low": 1e-5, "hihg": 1e-3}}, "unknown config key 'training.learning_rate.hihg'"),
    ({"training.learning_rate": {"low": 1e-3, "high": 1e-5}}, "must be below high"),
    ({"training.epochs": {"choices": []}}, "choices"),
])
def test_bad_entries_are_refused_with_their_key(data, words):
    with pytest.raises(ConfigError, match=words.replace(".", r"\.").replace("(", r"\(")):
        parse_space(data)


def test_space_keys_are_checked_against_the_config_by_name():
    with pytest.raises(ConfigError, match="training.lerning_rate"):
        check_space(config(), parse_space({"training.lerning_rate": {"low": 1e-5, "high": 1e-3}}))
    with pytest.raises(ConfigError, match="trainin"):
        check_space(config(), parse_space({"trainin.epochs": {"low": 1, "high": 3}}))
    with pytest.raises(ConfigError, match="method.lora.dropout"):  # a value the config refuses
        check_space(config(), parse_space({"method.lora.dropout": {"low": 0.1, "high": 1.5}}))
    check_space(config(), parse_space({"training.lr_scheduler": {"choices": ["linear", "cosine"]}}))


def test_default_space_centres_on_the_preset_and_adds_lora_settings_for_lora():
    full = default_space(config(), parameters=22_000_000)  # small: balanced preset lr 1e-4, 10 epochs, batch 16
    lr = full["training.learning_rate"]
    assert lr.log and lr.low == pytest.approx(2e-5) and lr.high == pytest.approx(5e-4)
    assert full["training.epochs"].high == 10 and full["training.batch_size"].choices == [8, 16, 32]
    assert not any(key.startswith("method.lora") for key in full)
    lora = default_space(config(kind="lora"), parameters=22_000_000)
    assert {"method.lora.r", "method.lora.alpha", "method.lora.dropout"} <= set(lora)
    check_space(config(kind="lora"), lora)
    assert with_values(config(), {"training.learning_rate": 3e-4}).training.learning_rate == 3e-4
