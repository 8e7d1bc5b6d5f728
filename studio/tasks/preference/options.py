"""The keys of ``task:`` for preference tuning: the objective and its strength."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from studio.errors import ConfigError


@dataclass
class PreferenceOptions:
    objective: Literal["dpo", "orpo"] = "dpo"
    """dpo: Direct Preference Optimization against the starting model; orpo: odds-ratio preference optimization (no reference model, learns the chosen answers too)."""
    beta: float = 0.1
    """Strength of the preference term: DPO's beta (how far the model may move from the starting one), ORPO's lambda."""
    system_prompt: Optional[str] = None
    """A system message put before every prompt that has none of its own."""

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ConfigError(f"bad value for 'task.beta': {self.beta!r} must be > 0 (0.1 is a good start)")
