"""The job system: a persistent queue of training runs, each in its own worker process.

``store`` (the SQLite run index), ``devices`` (GPUs and CPU slots), ``process`` (starting,
recognising and killing workers), ``runstate`` (what events.jsonl says), ``manager``
(``JobManager``: submit, schedule, watch, cancel, resume, delete) and ``cli`` (``studio runs``,
``studio queue``). Importing any of them does not import torch.
"""
