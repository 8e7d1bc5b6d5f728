"""The TRL trainers that tune a model on preference pairs, made to fit the studio's worker.

TRL computes the losses (DPO's against a reference model, ORPO's odds ratio without one); this
module only hands them the worker's training arguments and data, and makes two things work as
the worker expects of any Trainer:

* a split evaluated after construction (the test split after training) is prepared as the splits
  given at construction are (TRL tokenizes those in its constructor only);
* the reward figures TRL averages per logging interval (reward accuracy: the share of pairs whose
  chosen answer gets the higher implicit reward; reward margin) join the logged values under
  plain names, and an evaluation's join the metrics it returns, so they reach the live charts
  as ``Log`` and ``Eval`` events.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

RENAMED = {"rewards/accuracies": "reward_accuracy", "rewards/margins": "reward_margin",
           "rewards/chosen": "reward_chosen", "rewards/rejected": "reward_rejected"}
PAIR_COLUMNS = ("prompt", "chosen", "rejected")


def _plain(key: str) -> str:
    return RENAMED.get(key, key.replace("/", "_"))


def _evaluation_prefix(logs: dict[str, Any]) -> str | None:
    """'eval', 'test'... when ``logs`` are an evaluation's (its ``<prefix>_loss``), else None."""
    return next((k[: -len("_loss")] for k in logs if k.endswith("_loss") and k != "train_loss"), None)


class _StudioLogs:
    """Averaged TRL metrics under plain names, in place in ``logs`` (evaluate returns that dict)."""

    def _stored(self, evaluating: bool) -> dict[str, list[float]]:
        raise NotImplementedError

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        from transformers import Trainer

        prefix = _evaluation_prefix(logs)
        stored = self._stored(prefix is not None)
        for key, values in stored.items():
            if values and not key.startswith("logits/"):
                name = _plain(key.removeprefix("eval_"))
                logs[f"{prefix}_{name}" if prefix else name] = sum(float(v) for v in values) / len(values)
        stored.clear()
        Trainer.log(self, logs, start_time)  # the TRL trainer's own log would add its raw names again


def _without_extras(dataset):
    """Only the pair columns: the task's ``input_ids`` (for lengths and counts) is not TRL's."""
    if dataset is None:
        return None
    return dataset.remove_columns([c for c in dataset.column_names if c not in PAIR_COLUMNS])


def preference_config(objective: str, args, **extra):
    """DPOConfig / ORPOConfig holding every value of the worker's ``TrainingArguments``."""
    from transformers import TrainingArguments

    if objective == "orpo":
        from trl.experimental.orpo import ORPOConfig as Config
    else:
        from trl import DPOConfig as Config
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingArguments) if f.init and hasattr(args, f.name)}
    return Config(**values, **extra)


def preference_trainer(objective: str, beta: float, *, model, args, tokenizer, train_dataset, eval_dataset=None,
                       callbacks=None, max_length: int | None = None):
    """The trainer for ``objective`` (dpo | orpo). A LoRA model (a ``PeftModel``) keeps its adapter
    as the trained part: DPO then uses the model with the adapter switched off as its reference,
    a full model gets a frozen copy of itself (its weights before training) as the reference."""
    from peft import PeftModel

    train_dataset, eval_dataset = _without_extras(train_dataset), _without_extras(eval_dataset)
    if objective == "orpo":
        from trl.experimental.orpo import ORPOTrainer

        class StudioORPOTrainer(_StudioLogs, ORPOTrainer):
            def _stored(self, evaluating):
                return self._stored_metrics["eval" if evaluating else "train"]

            def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
                if eval_dataset is not None and "chosen_input_ids" not in eval_dataset.column_names:
                    from trl.data_utils import maybe_apply_chat_template, maybe_extract_prompt

                    eval_dataset = _without_extras(eval_dataset).map(maybe_extract_prompt)
                    eval_dataset = eval_dataset.map(maybe_apply_chat_template, fn_kwargs={"tokenizer": self.processing_class})
                    eval_dataset = eval_dataset.map(self.tokenize_row)
                return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

        config = preference_config("orpo", args, beta=beta, max_length=max_length)
        return StudioORPOTrainer(model=model, args=config, train_dataset=train_dataset, eval_dataset=eval_dataset,
                                 processing_class=tokenizer, callbacks=callbacks)

    from trl import DPOTrainer

    class StudioDPOTrainer(_StudioLogs, DPOTrainer):
        def _stored(self, evaluating):
            return self._metrics["eval" if evaluating else "train"]

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            if eval_dataset is not None and "prompt_ids" not in eval_dataset.column_names:
                eval_dataset = self._prepare_dataset(_without_extras(eval_dataset), self.processing_class, self.args,
                                                     metric_key_prefix)
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    peft_config, reference = None, None
    if isinstance(model, PeftModel):
        # TRL would copy a ready adapter as its reference; handed the bare model and the adapter's
        # settings, it switches the adapter off instead (no copy, one adapter saved with the model).
        peft_config = model.peft_config["default"]
        model = model.unload()
    else:
        # TRL would reload the reference from the model's path: a model that started from a
        # merged SFT adapter is not that path's weights. A frozen copy is (and costs the same).
        reference = copy.deepcopy(model).eval()
        reference.requires_grad_(False)
    config = preference_config("dpo", args, beta=beta, max_length=max_length)
    return StudioDPOTrainer(model=model, ref_model=reference, args=config, train_dataset=train_dataset,
                            eval_dataset=eval_dataset, processing_class=tokenizer, callbacks=callbacks,
                            peft_config=peft_config)
