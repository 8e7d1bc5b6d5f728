"""Does a backbone read this data? Measured on a sample before training, with its own tokenizer.

A tokenizer whose vocabulary lacks a script turns most of a text into unknown tokens (``[UNK]``):
the model then learns from punctuation and the few characters it knows, and a run can finish
"fine" at the majority-class rate. So before a run exists the studio measures, on a sample of the
training rows, the share of tokens that are unknown and of characters that fall inside them, and
the scripts the text is written in (``studio.data.text.script_shares``), and compares them with
the languages the catalog declares for the backbone. Past ``WARN_UNKNOWN_SHARE`` it warns and
names backbones that fit; past ``REFUSE_UNKNOWN_SHARE`` it refuses unless the user insists
(``model.allow_unreadable``). Plain Python and the tokenizer: no torch, no network.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

from studio.data.text import script_shares
from studio.models import catalog
from studio.models.catalog import Backbone

WARN_UNKNOWN_SHARE = 0.05
"""Above this share of unknown tokens the backbone misses enough of the text to hurt: a warning."""
REFUSE_UNKNOWN_SHARE = 0.9
"""Above this share the backbone reads next to nothing of the text: refused unless insisted on."""
MAIN_SCRIPT_SHARE = 0.2
"""A script with at least this share of the letters counts as one the data is written in."""
SAMPLE_ROWS = 300

# Languages named in the catalog -> the scripts they are written in.
LANGUAGE_SCRIPTS = {
    "english": {"Latin"}, "french": {"Latin"}, "german": {"Latin"}, "spanish": {"Latin"},
    "chinese": {"Han"}, "japanese": {"Han", "Kana"}, "korean": {"Hangul", "Han"},
    "russian": {"Cyrillic"}, "arabic": {"Arabic"},
}
# Words that mean "many languages": the catalog promises no particular script.
MANY_LANGUAGES = re.compile(r"multilingual|\d+\s+languages", re.IGNORECASE)


@dataclass(frozen=True)
class Coverage:
    """What a tokenizer made of a sample of texts."""

    texts: int
    tokens: int
    unknown_tokens: int
    characters: int
    """Characters that are not spaces."""
    unreadable_characters: int
    """Characters inside unknown tokens: what the model never sees."""
    scripts: dict[str, float] = field(default_factory=dict)
    """Share of the letters in each script, largest first."""

    @property
    def unknown_share(self) -> float:
        return self.unknown_tokens / self.tokens if self.tokens else 0.0

    @property
    def unreadable_share(self) -> float:
        return self.unreadable_characters / self.characters if self.characters else 0.0

    @property
    def main_scripts(self) -> list[str]:
        return [script for script, share in self.scripts.items() if share >= MAIN_SCRIPT_SHARE]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Coverage":
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unknown_share": round(self.unknown_share, 4),
                "unreadable_share": round(self.unreadable_share, 4)}


def measure_coverage(tokenizer, texts: Iterable[str]) -> Coverage:
    """Tokenize ``texts`` as the backbone will and count what it could not read."""
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    unk_id = getattr(tokenizer, "unk_token_id", None)
    unk_text = getattr(tokenizer, "unk_token", None)
    tokens = unknown = characters = unreadable = 0
    for text in texts:
        characters += sum(1 for ch in text if not ch.isspace())
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
        tokens += len(ids)
        for token_id, (start, end) in zip(ids, offsets):
            # Byte-level tokenizers name a special token as "unknown" but never produce it for
            # text: only an unknown token that does not spell that token itself counts.
            if unk_id is not None and token_id == unk_id and text[start:end] != unk_text:
                unknown += 1
                unreadable += sum(1 for ch in text[start:end] if not ch.isspace())
    return Coverage(len(texts), tokens, unknown, characters, unreadable, script_shares(texts))


def declared_scripts(entry: Backbone | None) -> set[str] | None:
    """Scripts the catalog's languages for ``entry`` are written in; None when it promises many
    languages or the backbone is not in the catalog (nothing to compare with)."""
    if entry is None or MANY_LANGUAGES.search(entry.languages):
        return None
    words = re.findall(r"[a-z]+", entry.languages.lower())
    scripts = set().union(*(LANGUAGE_SCRIPTS.get(word, set()) for word in words))
    return scripts or None


def reads_any_script(entry: Backbone) -> bool:
    """The catalog's decoders use byte-level tokenizers: every character has a token (how well
    the model knows the language is another matter: see its declared languages)."""
    return entry.kind == "decoder"


@dataclass(frozen=True)
class Fit:
    level: Literal["ok", "note", "warning", "refuse"]
    coverage: Coverage
    backbone: str
    declared: str
    suggestions: list[str]

    def message(self) -> str:
        """English, one paragraph, every figure in it (the CLI and the run's problems show it)."""
        c = self.coverage
        scripts = ", ".join(f"{script} {share:.0%}" for script, share in list(c.scripts.items())[:3]) or "none"
        measured = (f"{c.unknown_share:.0%} of the tokens ({c.unknown_tokens:,} of {c.tokens:,}) of {c.texts:,} sampled "
                    f"training rows are unknown to {self.backbone}'s tokenizer, and {c.unreadable_share:.0%} of the "
                    f"characters fall inside them; the text's scripts: {scripts}; the backbone declares: {self.declared}")
        better = f" Backbones that fit: {', '.join(self.suggestions)}." if self.suggestions else ""
        if self.level == "refuse":
            return (f"{self.backbone} cannot read this data: {measured} (refused above {REFUSE_UNKNOWN_SHARE:.0%})."
                    f"{better} To train anyway set model.allow_unreadable: true (in the Train tab: 'train even if the "
                    "backbone cannot read the data').")
        if self.level == "warning":
            return (f"{self.backbone} does not read this data well: {measured} (warned above "
                    f"{WARN_UNKNOWN_SHARE:.0%}). The model will see little of the text and may do no better than "
                    f"guessing the most common label.{better}")
        if self.level == "note":
            return (f"{self.backbone} reads every character of this data, but declares {self.declared} while the "
                    f"text's scripts are: {scripts}.{better}")
        return f"{self.backbone} reads this data: {measured}."


def assess(coverage: Coverage, entry: Backbone | None, name: str, task_kinds: Iterable[str],
           available: Iterable[str] = ()) -> Fit:
    """How well the backbone called ``name`` (``entry`` in the catalog, if there) reads text with
    this ``coverage``; ``task_kinds``: the kinds of backbone the task can train, for suggestions;
    ``available``: names usable offline, suggested first."""
    declared = declared_scripts(entry)
    mismatch = declared is not None and bool(coverage.main_scripts) and not set(coverage.main_scripts) <= declared
    if coverage.unknown_share > REFUSE_UNKNOWN_SHARE:
        level = "refuse"
    elif coverage.unknown_share > WARN_UNKNOWN_SHARE:
        level = "warning"
    elif mismatch:
        level = "note"
    else:
        level = "ok"
    suggestions = suggest(coverage.main_scripts, task_kinds, available, exclude=entry.name if entry else name) \
        if level != "ok" else []
    return Fit(level, coverage, entry.name if entry else name, entry.languages if entry else "unknown", suggestions)


def suggest(scripts: list[str], task_kinds: Iterable[str], available: Iterable[str], exclude: str) -> list[str]:
    """Catalog backbones of the task's kinds that declare the data's scripts (or many languages),
    then byte-level ones that read any script; those available offline first, each marked."""
    kinds, offline = set(task_kinds), set(available)
    declaring, byte_level = [], []
    for entry in catalog.CATALOG:
        if entry.kind not in kinds or entry.name == exclude:
            continue
        declared = declared_scripts(entry)
        if declared is None or set(scripts) <= declared:
            declaring.append(entry)
        elif reads_any_script(entry):
            byte_level.append(entry)

    def label(entry: Backbone) -> str:
        notes = ["available offline"] if entry.name in offline else []
        if entry in byte_level:
            notes.append(f"reads any script; trained mostly on {entry.languages}")
        return entry.name + (f" ({'; '.join(notes)})" if notes else "")

    ordered = sorted(declaring + byte_level, key=lambda e: (e.name not in offline, e in byte_level))
    return [label(entry) for entry in ordered][:5]
