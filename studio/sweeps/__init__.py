"""Sweeps: hyperparameter search with Optuna over normal runs of the job manager.

``space`` (what is searched), ``study`` (the Optuna study in the workspace's ``sweeps.db``),
``driver`` (trials asked, queued, followed, pruned; the best scored on test), ``report`` (the
leaderboard and Optuna's figures), ``cli`` (``studio sweep``).
"""
