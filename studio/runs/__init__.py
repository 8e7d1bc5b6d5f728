"""The run folder: the contract between the job system, the worker and the UI.

``RunDir`` knows every path of a run folder; ``events`` writes and reads its ``events.jsonl``.
Nothing here imports torch or gradio, so every layer may use it.
"""

from studio.runs.folder import RunDir

__all__ = ["RunDir"]
