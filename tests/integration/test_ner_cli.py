"""Named entities end to end through the CLI: a tiny random BERT on a small CoNLL file (seconds),
and the bundled MiniLM on the sample set (slow)."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
import yaml

from studio.cli import main
from studio.runs.events import read_events
from tests.conftest import ASSETS

# Context words are in the tiny encoder's vocabulary; the names are not (they read as [UNK]), so
# the model must tag them from their context: a person before a verb, a place after is/was.
NAMES = ["Alice", "Bob", "Chen", "Dmitri", "Erin", "Farah", "Goran", "Hana"]
SURNAMES = ["Smith", "Okafor", "Lindqvist", "Tanaka"]
PLACES = ["Paris", "Lagos", "Oslo", "Quito", "Hanoi", "Perth"]


def toy_conll(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    sentences = []
    for i in range(n):
        words: list[tuple[str, str]] = []
        if i % 2 == 0:
            name = [rng.choice(NAMES)] + ([rng.choice(SURNAMES)] if rng.random() < 0.5 else [])
            words += [(w, "B-PER" if k == 0 else "I-PER") for k, w in enumerate(name)]
            words += [(w, "O") for w in (rng.choice(["loved", "hated", "liked", "enjoyed"]), "the", rng.choice(["film", "movie", "book"]))]
        else:
            words += [(w, "O") for w in ("the", rng.choice(["film", "story", "music"]), rng.choice(["was", "is"]))]
            words += [(rng.choice(PLACES), "B-LOC")]
            words += [(w, "O") for w in rng.sample(["and", "very", "good", "bad", "fun"], 2)]
        sentences.append("\n".join(f"{w}\t{t}" for w, t in words))
    return "-DOCSTART-\tO\n\n" + "\n\n".join(sentences) + "\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_encoder):
    """One training run shared by the tests below (a run takes seconds, not milliseconds)."""
    from studio.workspace import Workspace

    folder = tmp_path_factory.mktemp("ner")
    (folder / "train.conll").write_text(toy_conll(120), encoding="utf-8")
    config = {
        "name": "toy-ner",
        "task": {"name": "ner"},
        "data": {"train": str(folder / "train.conll")},
        "model": {"backbone": str(tiny_encoder)},
        "training": {"epochs": 4, "learning_rate": 5e-3, "batch_size": 8, "early_stopping_patience": 0},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    workspace = Workspace.at(folder / "workspace")
    code = main(["train", str(folder / "config.yaml"), "--workspace", str(workspace.root), "--quiet"])
    assert code == 0, (folder / "workspace").as_posix()
    [run] = [p for p in workspace.runs.iterdir() if not p.name.startswith(".")]
    return folder, workspace, run


def test_run_directory_holds_entity_metrics_and_predictions(trained):
    _, _, run = trained
    statuses = [e["status"] for e in read_events(run)[0] if e["kind"] == "status"]
    assert statuses == ["starting", "running", "completed"]

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["headline"] == {"name": "f1", "greater_is_better": True}
    test = metrics["test"]
    assert set(test["per_type"]) == {"LOC", "PER"}
    for scores in test["per_type"].values():
        assert set(scores) == {"precision", "recall", "f1", "support"} and scores["support"] > 0
    assert {"precision", "recall", "f1", "macro_f1", "accuracy", "loss"} <= set(test)
    assert test["f1"] >= 0.6  # entities are predictable from their context: the model must have learned

    predictions = [json.loads(line) for line in (run / "predictions_test.jsonl").read_text().splitlines()]
    assert len(predictions) == test["examples"] == 12
    for p in predictions:
        assert {"tokens", "text", "gold_tags", "pred_tags", "entities", "gold_entities", "correct"} <= set(p)
        assert len(p["tokens"]) == len(p["gold_tags"]) == len(p["pred_tags"])
        for entity in p["entities"] + p["gold_entities"]:
            assert p["text"][entity["start"]:entity["end"]] == entity["text"]
    assert any(p["entities"] for p in predictions)

    task_json = json.loads((run / "model" / "task.json").read_text())
    assert task_json["labels"] == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert "AutoModelForTokenClassification" in (run / "README.md").read_text()


def test_model_loads_with_plain_transformers(trained):
    _, _, run = trained
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(run / "model")
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    assert model.config.id2label == {0: "O", 1: "B-LOC", 2: "I-LOC", 3: "B-PER", 4: "I-PER"}
    logits = model(**tokenizer(["the film was Oslo and fun"], return_tensors="pt")).logits
    assert logits.shape == (1, 8, 5)


def test_the_test_split_is_scored_in_one_pass_whose_loss_is_the_models(trained):
    """The tagging loss comes out of the prediction pass (no evaluation of its own): the same
    figure as the model's loss over the split's windows in one batch (12 rows: one batch there too)."""
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from studio.tasks.tokens.task import TokenClassification

    _, _, run = trained
    phases = [e for e in read_events(run)[0] if e["kind"] == "phase" and e["phase"] == "scoring" and e["split"] == "test"]
    assert phases and all("part" not in e for e in phases)  # one pass: no separate "loss" part
    assert phases[-1]["done"] == phases[-1]["total"] == 12

    predictions = [json.loads(line) for line in (run / "predictions_test.jsonl").read_text().splitlines()]
    frame = pd.DataFrame({"tokens": [p["tokens"] for p in predictions], "tags": [p["gold_tags"] for p in predictions]})
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    model = AutoModelForTokenClassification.from_pretrained(run / "model").eval()
    task = TokenClassification()
    meta = SimpleNamespace(info={"labels": json.loads((run / "model" / "task.json").read_text())["labels"]})
    rows = task.tokenize(frame, tokenizer, meta, 128)
    batch = task.collator(tokenizer, meta)([rows[i] for i in range(len(rows))])
    with torch.no_grad():
        loss = model(**batch).loss.item()
    assert json.loads((run / "metrics.json").read_text())["test"]["loss"] == pytest.approx(loss, rel=1e-4)


def test_predict_on_raw_text_and_on_spans(trained):
    folder, workspace, run = trained
    raw = folder / "raw.csv"
    pd.DataFrame({"text": ["Farah loved the film", "the music is Quito and very good"]}).to_csv(raw, index=False)
    out = folder / "raw.predictions.jsonl"
    assert main(["predict", str(run), "--input", str(raw), "--output", str(out), "--workspace", str(workspace.root)]) == 0
    rows = pd.read_json(out, lines=True)
    assert list(rows.columns[:2]) == ["text", "entities"] and "gold_entities" not in rows
    assert rows["tags"].str.split().map(len).tolist() == [4, 7]

    # Span input with gold entities: offsets refer to the original text (two spaces kept).
    spans = folder / "spans.jsonl"
    spans.write_text(json.dumps({"text": "Hana  liked the book", "entities": [{"start": 0, "end": 4, "label": "PER"}]}) + "\n")
    assert main(["predict", run.name, "--input", str(spans), "--workspace", str(workspace.root)]) == 0
    table = pd.read_csv(folder / "spans.predictions.csv")
    assert table.loc[0, "text"] == "Hana  liked the book" and table.loc[0, "gold_entities"] == "Hana [PER]"


@pytest.mark.slow
def test_bundled_minilm_beats_the_all_o_baseline(tmp_path, workspace):
    """A short run of the bundled encoder on the sample CoNLL set finds entities; tagging every
    word O (the majority tag) scores an entity F1 of 0."""
    config = ASSETS / "configs" / "ner_en.yaml"
    assert main(["train", str(config), "--workspace", str(workspace.root), "--quiet",
                 "--set", "training.preset=quick", "--set", "training.max_steps=30",
                 "--set", "training.learning_rate=3e-4"]) == 0
    [run] = [p for p in workspace.runs.iterdir() if not p.name.startswith(".")]
    test = json.loads((run / "metrics.json").read_text())["test"]
    predictions = [json.loads(line) for line in (run / "predictions_test.jsonl").read_text().splitlines()]
    gold = [t for p in predictions for t in p["gold_tags"]]
    majority_accuracy = gold.count("O") / len(gold)
    assert test["f1"] > 0.3, test
    assert test["accuracy"] > majority_accuracy, (test["accuracy"], majority_accuracy)
    assert set(test["per_type"]) >= {"LOC", "PER"}
