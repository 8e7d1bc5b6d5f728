"""Preference tuning: teach a model which of two answers to a prompt is better.

Data is one pair a row: ``prompt`` / ``chosen`` / ``rejected`` text columns, or chat (``chosen``
and ``rejected`` as message lists sharing the conversation before their last, assistant,
message; or a ``prompt`` message list with the answers alone). ``task.objective`` picks the
method, both trained by TRL (the losses are its own):

* ``dpo``: Direct Preference Optimization; the reference is the starting model (with LoRA: the
  model with its adapter switched off);
* ``orpo``: odds-ratio preference optimization, no reference model; it learns the chosen answers
  as supervised fine-tuning does, with a preference term weighted by ``task.beta``.

The starting model is a catalog backbone or a finished generation run of the studio
(``model.from_run``). During training the live charts get TRL's loss, reward accuracy and reward
margin on the training batches and the validation split; after training the first
``generation.max_eval_examples`` test pairs get the rewards per pair, the preference accuracy of
the starting and the tuned model, and both models' answers (``predictions_test.jsonl``).

The package, one job a module:

* ``pairs``: the data shapes, their column names, one row read and checked;
* ``options``: the task's keys under ``task:`` (objective, beta, system prompt);
* ``trainers``: TRL's DPO and ORPO trainers fitted to the worker (arguments, later splits, logs);
* ``scores``: per-pair log-likelihoods, rewards and accuracies after training;
* ``task``: the ``PreferenceTuning`` task that ties them together, registered on import.
"""

from studio.tasks.preference import task  # noqa: F401  (registers the task)
