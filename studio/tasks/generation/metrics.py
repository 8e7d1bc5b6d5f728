"""Scores of generated texts against references: ROUGE-1/2/L (rouge-score), BLEU and chrF
(sacrebleu) and exact match.

Kept apart from the task so the scoring can be checked against hand-computed values without a
model. Chinese and Japanese text is scored by character, since those scripts put no spaces
between words.
"""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Chinese characters and Japanese kana are one ROUGE token each (these scripts put no spaces between words).
_ROUGE_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff]|[^\W_]+")


def is_chinese(texts: Iterable[str]) -> bool:
    """True when most texts hold Chinese characters: then BLEU uses sacrebleu's 'zh' tokenizer."""
    texts = [t for t in texts if t]
    if not texts:
        return False
    return sum(1 for t in texts if _HAN.search(t)) >= len(texts) / 2


class RougeTokenizer:
    """Lower-cased words; each Chinese character (and kana) is a token of its own (no spaces to split on).
    For English text this gives the tokens of rouge-score's default tokenizer, accents kept."""

    def tokenize(self, text: str) -> list[str]:
        return _ROUGE_TOKEN.findall((text or "").lower())


def _normalize(text: str) -> str:
    return " ".join((text or "").split())


def exact_match(prediction: str, reference: str) -> bool:
    """Equal once surrounding and repeated whitespace is ignored (case and punctuation count)."""
    return _normalize(prediction) == _normalize(reference)


_SCORER = None


def _rouge_scorer():
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=RougeTokenizer())
    return _SCORER


def rouge(prediction: str, reference: str) -> dict[str, float]:
    scores = _rouge_scorer().score(reference or "", prediction or "")
    return {name: float(score.fmeasure) for name, score in scores.items()}


def generation_metrics(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Corpus scores of generated texts against references.

    ROUGE-1/2/L: mean F1 over examples, 0-1 (``RougeTokenizer``). BLEU and chrF: sacrebleu's corpus
    scores, 0-100, BLEU tokenized with 'zh' when the references are Chinese, '13a' otherwise.
    exact_match: share of generations equal to their reference (``exact_match``).
    """
    import sacrebleu

    if not references:
        return {}
    per_row = [rouge(p, r) for p, r in zip(predictions, references)]
    zh = is_chinese(references)
    out = {name: float(np.mean([s[name] for s in per_row])) for name in ("rouge1", "rouge2", "rougeL")}
    out["bleu"] = float(sacrebleu.corpus_bleu(predictions, [references], tokenize="zh" if zh else "13a").score)
    out["chrf"] = float(sacrebleu.corpus_chrf(predictions, [references]).score)
    out["exact_match"] = float(np.mean([exact_match(p, r) for p, r in zip(predictions, references)]))
    return out
