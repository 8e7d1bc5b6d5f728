"""Entity-level scores of tag sequences with seqeval: precision, recall and F1 over exact spans
and types, macro F1 over entity types, token accuracy, and a table per entity type.

Kept apart from the task so the scores can be checked against hand-computed values without a
model. Predicted tags are repaired to IOB2 first, as the prediction files show them.
"""

from __future__ import annotations

from typing import Any

from studio.tasks.tokens.tags import repair_bio, tags_to_spans


def sequence_metrics(gold: list[list[str]], predicted: list[list[str]], per_type: bool = False) -> dict[str, Any]:
    """Entity-level precision/recall/F1 (micro over entities, exact span and type, seqeval's
    default mode), macro F1 over entity types, and token accuracy."""
    from seqeval.metrics import classification_report

    predicted = [repair_bio(list(p))[0] for p in predicted]
    words = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, predicted) for a, b in zip(g, p))
    out: dict[str, Any] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "macro_f1": 0.0,
                           "accuracy": correct / words if words else 0.0}
    has_entities = any(t != "O" for seq in list(gold) + predicted for t in seq)
    table: dict[str, dict[str, float]] = {}
    if has_entities:
        report = classification_report(gold, predicted, output_dict=True, zero_division=0)
        micro = report.pop("micro avg")
        macro = report.pop("macro avg")
        report.pop("weighted avg", None)
        out.update(precision=float(micro["precision"]), recall=float(micro["recall"]), f1=float(micro["f1-score"]),
                   macro_f1=float(macro["f1-score"]))
        table = {kind: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
                        "support": int(v["support"])} for kind, v in sorted(report.items())}
    if per_type:
        out["per_type"] = table
        out["gold_entities"] = sum(len(tags_to_spans(g)) for g in gold)
        out["predicted_entities"] = sum(len(tags_to_spans(p)) for p in predicted)
    return out
