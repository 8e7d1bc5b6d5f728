"""What a config leaves to its task, filled in when a run is submitted (``JobManager.submit``,
``studio train``): the task's options, typed, checked and complete, and the backbone.

This lives above the configuration, not in ``RunConfig``: both need the task (its options class,
its model kind), and the configuration layer imports no task.
"""

from __future__ import annotations

import dataclasses

from studio.config import RunConfig
from studio.models.catalog import default_for
from studio.tasks.base import get_task


def with_defaults(config: RunConfig) -> RunConfig:
    """A copy with every option of the task written out (its default where unset) and
    ``model.backbone`` set where unset: the bundled backbone of the task's model kind (the small
    encoder for classification and tagging, the small chat model for generation). Raises
    ``ConfigError`` for an unknown task, an option the task does not take, or a bad option value,
    naming the key."""
    task = get_task(config.task.name)
    resolved = RunConfig.from_dict(config.to_dict())
    resolved.task.options = dataclasses.asdict(task.options_of(config))
    if resolved.model.backbone is None:
        resolved.model.backbone = default_for(task.model_kind)
    return resolved
