"""Whether a backbone reads the data, in the page's words: the Data tab says it of the task's
default backbone when the data is checked, the Train tab of the chosen one before launch. The
measuring and judging is ``studio.models.coverage``'s; here only the values a text shows."""

from __future__ import annotations

from typing import Any

from studio.tasks import get_task
from studio.ui import words


def reading(coverage: dict[str, Any] | None, backbone: str, task_name: str) -> tuple[str, dict[str, str]] | None:
    """(level, the values of the message) when the backbone does not read the data well: level
    'note' (it reads every character but declares other languages), 'warning' or 'refuse' (a
    launch is refused unless allowed); None when it reads it."""
    from studio.models import catalog
    from studio.models.coverage import Coverage, assess
    from studio.models.resolve import offline_choices

    if not coverage:
        return None
    fit = assess(Coverage.from_dict(coverage), catalog.find(backbone), backbone, get_task(task_name).backbone_kinds,
                 offline_choices())
    if fit.level == "ok":
        return None
    c = fit.coverage
    scripts = ", ".join(f"{words.script(script)} {share:.0%}" for script, share in list(c.scripts.items())[:3]) or "-"
    return fit.level, dict(backbone=fit.backbone, unknown=f"{c.unknown_share:.0%}", rows=f"{c.texts:,}",
                           characters=f"{c.unreadable_share:.0%}", scripts=scripts, declared=fit.declared,
                           suggestions=", ".join(fit.suggestions) or "-")
