"""A sweep's search space: which config keys vary, and over what.

Written in YAML, one dotted config key per entry, a range or a list of choices each:

    training.learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}   # log-uniform
    training.epochs: {low: 2, high: 10}                               # whole numbers: an integer range
    training.batch_size: {choices: [8, 16, 32]}
    method.lora.r: {choices: [4, 8, 16]}

A space is checked like a config: an unknown key (of the space entry or of the run config) is
refused with its name, and every end of a range and every choice must be a valid value of the
config key it sets (``check_space``). ``default_space`` is what a sweep searches when no space is
given: the usual settings around the preset's values for this backbone, LoRA's own for LoRA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Optional

from studio.config import RunConfig, apply_preset, parse_section
from studio.errors import ConfigError


@dataclass
class Param:
    """One searched key: ``low``..``high`` (``log``: log-uniform; ``step``: a grid) or ``choices``."""

    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    step: Optional[float] = None
    choices: Optional[list[Any]] = None
    type: Literal["auto", "int", "float"] = "auto"
    """auto: whole numbers at both ends make an integer range."""

    def _check(self) -> None:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise ConfigError("a searched key takes either choices (a non-empty list) or low and high, not both")
            return
        if self.low is None or self.high is None:
            raise ConfigError("a searched key needs low and high (a range) or choices (a list)")
        if self.low >= self.high:
            raise ConfigError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ConfigError("a log range needs low > 0")

    @property
    def integer(self) -> bool:
        if self.type != "auto":
            return self.type == "int"
        return all(isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 1)
                   for v in (self.low, self.high)) and not self.log

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": int(self.low) if self.integer else self.low,
                               "high": int(self.high) if self.integer else self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


Space = dict[str, Param]


def parse_space(data: Any) -> Space:
    """A space from plain data (a loaded space.yaml), each entry checked; not yet against a config."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"a search space must be a mapping of config keys to ranges, got {data!r}")
    space = {}
    for key, value in data.items():
        try:
            space[str(key)] = parse_section(Param, value, f"{key}.")
        except ConfigError as error:
            raise ConfigError(f"search space, '{key}': {error.message}", hint=error.hint) from None
    return space


def space_to_dict(space: Space) -> dict[str, dict[str, Any]]:
    return {key: param.to_dict() for key, param in space.items()}


def with_values(config: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``config`` with each dotted key set to its value, validated as a config is (unknown keys
    and bad values refused with the key's name)."""
    data = config.to_dict()
    for key, value in values.items():
        parts = key.split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                raise ConfigError(f"unknown config section '{'.'.join(parts[: i + 1])}' (in the search space)")
            node = child
        if parts[-1] not in node:
            raise ConfigError(f"unknown config key '{key}' (in the search space)")
        node[parts[-1]] = value
    return RunConfig.from_dict(data)


def check_space(config: RunConfig, space: Space) -> None:
    """Every key a config key, both ends of every range and every choice a valid value of it.
    Task options are checked by the task (``studio.tasks.with_defaults``)."""
    from studio.tasks import with_defaults

    if not space:
        raise ConfigError("the search space is empty: name at least one config key to search")
    for key, param in space.items():
        ends = param.choices if param.choices is not None else [param.low, param.high]
        for value in ends:
            if param.choices is None and param.integer:
                value = int(value)
            with_defaults(with_values(config, {key: value}))


def suggest(trial, space: Space) -> dict[str, Any]:
    """The trial's value of every searched key (Optuna's ``suggest_*``; a value the trial already
    holds is returned as it is, so a trial asked before a restart keeps its settings)."""
    values = {}
    for key, param in space.items():
        if param.choices is not None:
            values[key] = trial.suggest_categorical(key, param.choices)
        elif param.integer:
            values[key] = trial.suggest_int(key, int(param.low), int(param.high), log=param.log,
                                            step=int(param.step) if param.step else 1)
        else:
            values[key] = trial.suggest_float(key, float(param.low), float(param.high), log=param.log,
                                              step=float(param.step) if param.step and not param.log else None)
    return values


def _round(value: float) -> float:
    return float(f"{value:.2g}")


LORA_KEYS = ("method.lora.r", "method.lora.alpha", "method.lora.dropout")


def default_space(config: RunConfig, parameters: int | None) -> Space:
    """What a sweep searches unless told otherwise: the learning rate log-uniform from a fifth to
    five times the preset's for this backbone (its own value when the config sets one), the
    epoch ceiling (early stopping ends runs sooner) up to the preset's, the batch size around the
    preset's, warm-up and weight decay; for LoRA also the rank, alpha and dropout."""
    t = apply_preset(config, parameters).training
    space: Space = {"training.learning_rate": Param(low=_round(t.learning_rate / 5), high=_round(min(t.learning_rate * 5, 0.5)), log=True)}
    if not t.max_steps:
        epochs = max(2, math.ceil(t.epochs or 1))
        space["training.epochs"] = Param(low=max(1, epochs // 2), high=epochs, type="int")
    batch = t.batch_size or 16
    space["training.batch_size"] = Param(choices=sorted({max(1, batch // 2), batch, batch * 2}))
    space["training.warmup"] = Param(low=0.0, high=0.2, type="float")
    space["training.weight_decay"] = Param(low=0.0, high=0.1, type="float")
    if config.method.kind == "lora":
        space["method.lora.r"] = Param(choices=[4, 8, 16, 32])
        space["method.lora.alpha"] = Param(choices=[8, 16, 32, 64])
        space["method.lora.dropout"] = Param(low=0.0, high=0.2, type="float")
    return space
