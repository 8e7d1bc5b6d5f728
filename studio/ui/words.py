"""Names the layers below the UI give in English, shown in the page's language.

Task titles, column roles, run statuses, configuration sections and help, metric and prediction
column names are identifiers or English text in the task plug-ins, the configuration and the job
manager; those layers stay as they are (the CLI and the files speak English). The page shows them
through these functions, which fall back to the layer's own text for a name they do not know, so
a new task or field still shows up (and ``tests/unit/test_ui_texts.py`` asks for its translation).

Each function spells its keys out as literal calls of ``t``: the key checks find them that way.
"""

from __future__ import annotations

from typing import Any

from studio.ui.i18n import t


def task_title(task: Any) -> str:
    """A task's title, e.g. 'Text classification'."""
    titles = {"classification": t("words.task_classification"), "generation": t("words.task_generation"),
              "ner": t("words.task_ner"), "preference": t("words.task_preference")}
    return titles.get(task.name, task.title)


def task_title_of(name: str | None) -> str:
    """The title of a task given by name (a run's or a saved dataset's), or the name itself."""
    from studio.errors import StudioError
    from studio.tasks import get_task

    if not name:
        return ""
    try:
        return task_title(get_task(name))
    except StudioError:  # a task this studio does not have: its name
        return name


def role_help(task: Any, role: str) -> str:
    """What a task expects in one of its columns (the Data tab's column pickers)."""
    helps = {
        ("classification", "text"): t("words.role_classification_text"),
        ("classification", "label"): t("words.role_classification_label"),
        ("classification", "text_pair"): t("words.role_classification_text_pair"),
        ("generation", "prompt"): t("words.role_generation_prompt"),
        ("generation", "completion"): t("words.role_generation_completion"),
        ("generation", "instruction"): t("words.role_generation_instruction"),
        ("generation", "input"): t("words.role_generation_input"),
        ("generation", "output"): t("words.role_generation_output"),
        ("generation", "messages"): t("words.role_generation_messages"),
        ("generation", "system"): t("words.role_generation_system"),
        ("preference", "prompt"): t("words.role_preference_prompt"),
        ("preference", "chosen"): t("words.role_preference_chosen"),
        ("preference", "rejected"): t("words.role_preference_rejected"),
        ("preference", "system"): t("words.role_preference_system"),
        ("ner", "tokens"): t("words.role_ner_tokens"),
        ("ner", "tags"): t("words.role_ner_tags"),
        ("ner", "text"): t("words.role_ner_text"),
        ("ner", "entities"): t("words.role_ner_entities"),
    }
    return helps.get((task.name, role), task.roles.get(role, ""))


def status(name: str | None) -> str:
    """A run's status: queued, running, completed..."""
    names = {"queued": t("words.status_queued"), "starting": t("words.status_starting"),
             "running": t("words.status_running"), "cancelling": t("words.status_cancelling"),
             "completed": t("words.status_completed"),
             "failed": t("words.status_failed"), "cancelled": t("words.status_cancelled"),
             "interrupted": t("words.status_interrupted"), "pruned": t("words.status_pruned")}
    return names.get(name or "", name or "")


def preset(name: str | None) -> str:
    """A training preset: quick, balanced, best."""
    names = {"quick": t("train.preset_quick"), "balanced": t("train.preset_balanced"), "best": t("train.preset_best")}
    return names.get(name or "", name or "")


def splits(counts: dict[str, Any]) -> str:
    """Splits with a number each, e.g. 'train 64, validation 8, test 8'."""
    return t("words.list_separator").join(f"{split(name)} {count}" for name, count in counts.items())


def split(name: str) -> str:
    """A data split: train, validation, test, and test_base (the model before fine-tuning)."""
    names = {"train": t("words.split_train"), "validation": t("words.split_validation"), "test": t("words.split_test"),
             "test_base": t("words.split_test_base"), "validation_base": t("words.split_validation_base")}
    return names.get(name, name)


def section(name: str) -> str:
    """A heading of the Train tab's advanced settings (a configuration section)."""
    names = {"model": t("words.section_model"), "method.lora": t("words.section_method_lora"), "training": t("words.section_training"),
             "generation": t("words.section_generation")}
    return names.get(name, f"**{name}**")


def field_help(key: str, english: str | None) -> str | None:
    """The help under a configuration field (its docstring in ``studio.config``), by dotted key."""
    helps = {
        "task.problem_type": t("words.help_task_problem_type"),
        "task.label_delimiter": t("words.help_task_label_delimiter"),
        "task.system_prompt": t("words.help_task_system_prompt"),
        "task.prompt_template": t("words.help_task_prompt_template"),
        "task.objective": t("words.help_task_objective"),
        "task.beta": t("words.help_task_beta"),
        "model.allow_unreadable": t("words.help_model_allow_unreadable"),
        "model.from_run": t("words.help_model_from_run"),
        "method.lora.target_modules": t("words.help_lora_target_modules"),
        "training.max_steps": t("words.help_training_max_steps"),
        "training.max_length": t("words.help_training_max_length"),
        "training.warmup": t("words.help_training_warmup"),
        "training.eval_strategy": t("words.help_training_eval_strategy"),
        "training.save_strategy": t("words.help_training_save_strategy"),
        "training.early_stopping_patience": t("words.help_training_early_stopping_patience"),
        "training.metric": t("words.help_training_metric"),
        "training.score_base_model": t("words.help_training_score_base_model"),
        "training.score_test": t("words.help_training_score_test"),
        "training.precision": t("words.help_training_precision"),
        "training.group_by_length": t("words.help_training_group_by_length"),
        "training.dataloader_workers": t("words.help_training_dataloader_workers"),
        "training.tf32": t("words.help_training_tf32"),
        "training.optimizer": t("words.help_training_optimizer"),
        "training.gradient_checkpointing": t("words.help_training_gradient_checkpointing"),
        "training.compile": t("words.help_training_compile"),
        "training.batch_tokens": t("words.help_training_batch_tokens"),
        "training.packing": t("words.help_training_packing"),
        "training.attention": t("words.help_training_attention"),
        "training.liger": t("words.help_training_liger"),
        "generation.strategy": t("words.help_generation_strategy"),
        "generation.temperature": t("words.help_generation_temperature"),
        "generation.top_p": t("words.help_generation_top_p"),
        "generation.max_new_tokens": t("words.help_generation_max_new_tokens"),
        "generation.repetition_penalty": t("words.help_generation_repetition_penalty"),
        "generation.max_eval_examples": t("words.help_generation_max_eval_examples"),
    }
    return helps.get(key, english) if english else None


def metric(name: str) -> str:
    """A metric's name in the metrics tables (the identifier itself in English, as in metrics.json)."""
    names = {
        "accuracy": t("words.metric_accuracy"), "macro_f1": t("words.metric_macro_f1"),
        "micro_f1": t("words.metric_micro_f1"), "weighted_f1": t("words.metric_weighted_f1"),
        "subset_accuracy": t("words.metric_subset_accuracy"), "hamming_loss": t("words.metric_hamming_loss"),
        "precision": t("words.metric_precision"), "recall": t("words.metric_recall"), "f1": t("words.metric_f1"),
        "support": t("words.metric_support"), "loss": t("words.metric_loss"), "perplexity": t("words.metric_perplexity"),
        "mse": t("words.metric_mse"), "mae": t("words.metric_mae"), "r2": t("words.metric_r2"),
        "spearman": t("words.metric_spearman"), "rouge1": t("words.metric_rouge1"), "rouge2": t("words.metric_rouge2"),
        "rougeL": t("words.metric_rougeL"), "bleu": t("words.metric_bleu"), "chrf": t("words.metric_chrf"),
        "exact_match": t("words.metric_exact_match"), "examples": t("words.metric_examples"),
        "runtime": t("words.metric_runtime"), "micro": t("words.metric_micro"), "macro": t("words.metric_macro"),
        "weighted": t("words.metric_weighted"), "per_class": t("words.metric_per_class"),
        "per_type": t("words.metric_per_type"),
        "reward_accuracy": t("words.metric_reward_accuracy"), "reward_margin": t("words.metric_reward_margin"),
        "reward_chosen": t("words.metric_reward_chosen"), "reward_rejected": t("words.metric_reward_rejected"),
        "preference_accuracy": t("words.metric_preference_accuracy"),
        "preference_accuracy_base": t("words.metric_preference_accuracy_base"),
    }
    return names.get(name, name.replace("_", " "))


def column(name: str) -> str:
    """A column of the prediction tables (the fields a task's ``render`` gives a row)."""
    names = {
        "text": t("words.column_text"), "text_pair": t("words.column_text_pair"), "gold": t("words.column_gold"),
        "predicted": t("words.column_predicted"), "confidence": t("words.column_confidence"),
        "correct": t("words.column_correct"), "entities": t("words.column_entities"),
        "gold_entities": t("words.column_gold_entities"), "tokens": t("words.column_tokens"), "tags": t("words.column_tags"),
        "gold_tags": t("words.column_gold_tags"), "prompt": t("words.column_prompt"), "context": t("words.column_context"),
        "reference": t("words.column_reference"), "generation": t("words.column_generation"),
        "rougeL": t("words.metric_rougeL"), "exact_match": t("words.metric_exact_match"), "score": t("words.column_score"),
        "error": t("words.column_error"), "split": t("words.column_split"), "probabilities": t("words.column_probabilities"),
    }
    if name in names:
        return names[name]
    if name.startswith("base "):  # the base model's output beside the fine-tuned one (see evaluate_tab.with_base)
        return t("words.column_base", column=column(name[len("base "):]))
    return name


def speed_settings(settings: dict[str, Any]) -> str:
    """What the worker chose for the machine (a ``settings`` event), part by part as
    ``studio.training.speed.summary_parts`` gives them: 'bf16 · batch 46 · packed rows (flex_attention)'."""
    from studio.training.speed import summary_parts

    parts = {
        # The precision, the optimizer and the allocator are identifiers (bf16, adamw_torch_fused): shown as they are.
        "precision": lambda v: str(v["precision"]), "jemalloc": lambda v: "jemalloc", "batch": lambda v: t("speed.batch", **v),
        "packed": lambda v: t("speed.packed", **v), "length_grouped": lambda v: t("speed.length_grouped", **v),
        "tf32": lambda v: t("speed.tf32", **v), "optimizer": lambda v: str(v["optimizer"]),
        "workers": lambda v: t("speed.workers", **v), "checkpointing": lambda v: t("speed.checkpointing", **v),
        "liger": lambda v: t("speed.liger", **v), "compile": lambda v: t("speed.compile", **v),
    }
    return " · ".join(parts[part](values) if part in parts else part for part, values in summary_parts(settings))


def memory(peak_gib: float | None, estimated_gib: float | None, on_gpu: bool) -> str:
    """A run's measured peak memory beside the estimate made before it trained."""
    from studio.models.estimate import memory_text
    from studio.training.speed import memory_gap

    where = t("speed.memory_on_gpu") if on_gpu else t("speed.memory_above_start")
    text = t("speed.memory_peak", peak=memory_text(peak_gib), where=where) if peak_gib is not None else t("speed.memory_not_measured")
    gap = memory_gap(estimated_gib, peak_gib)
    if estimated_gib and gap is not None:
        text += t("speed.memory_estimate_gap", estimated=memory_text(estimated_gib), gap=f"{gap:+.0%}")
    elif estimated_gib:
        text += t("speed.memory_estimate", estimated=memory_text(estimated_gib))
    return text


def script(name: str) -> str:
    """A writing system's name ('Latin', 'Han'...) in the page's language; others as Unicode names them."""
    known = {"Latin": t("words.script_latin"), "Han": t("words.script_han"), "Kana": t("words.script_kana"),
             "Cyrillic": t("words.script_cyrillic"), "Hangul": t("words.script_hangul"), "Arabic": t("words.script_arabic")}
    return known.get(name, name)
