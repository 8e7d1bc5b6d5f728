"""The job system: a persistent queue of training runs, each in its own worker process.

``store`` (the SQLite run index), ``devices`` (GPUs and CPU slots), ``process`` (starting,
recognising and killing workers), ``policy`` (the settings' rules at submit), ``manager``
(``JobManager``: submit, schedule, watch, cancel, resume, delete) and ``cli`` (``studio runs``,
``studio queue``). A run's folder, events and statuses are ``studio.runs``'. Importing any of
them does not import torch.
"""
