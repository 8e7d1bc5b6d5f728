"""Twenty-odd kinds of broken input through ``studio train``: each gets a specific message, exit
code 2, no traceback, and no run directory (not even a half-written one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from studio.cli import main
from tests.conftest import toy_sentiment_rows, write_csv

GOOD = toy_sentiment_rows(40)


def _csv(text: str, encoding: str = "utf-8"):
    return lambda d: _write(d / "train.csv", text.encode(encoding))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _rows(rows, name="train.csv"):
    return lambda d: write_csv(d / name, rows)


def _jsonl(lines: list[str]):
    return lambda d: _write(d / "train.jsonl", ("\n".join(lines) + "\n").encode())


CASES = {
    "binary file": (lambda d: _write(d / "train.csv", b"text,label\x00\x01\x02\xff\xfe" * 20), ["looks binary", "offset"]),
    "excel renamed to csv": (lambda d: _write(d / "train.csv", b"PK\x03\x04" + b"\x00" * 200), ["train.csv"]),
    "empty file": (_csv(""), ["train.csv", "empty"]),
    "header only": (_csv("text,label\n"), ["train.csv", "no data rows"]),
    "ragged row": (_csv("text,label\ngood film,positive\nbad, film,negative\n"), ["train.csv", "line 3", "3"]),
    "huge field": (_csv("text,label\n" + '"' + "x" * 1_100_000 + '",positive\n'), ["train.csv", "line 2"]),
    "jsonl bad line": (_jsonl(['{"text": "a", "label": "p"}', '{"text": "b", "label": }']), ["train.jsonl", "line 2"]),
    "jsonl non-object line": (_jsonl(['{"text": "a", "label": "p"}', '["b", "n"]']), ["train.jsonl", "line 2"]),
    "json not an array": (lambda d: _write(d / "train.json", b'"just a string"'), ["train.json"]),
    "duplicate columns": (_csv("text,text,label\na,b,c\n"), ["train.csv", "text"]),
    "not parquet": (lambda d: _write(d / "train.parquet", b"text,label\na,b\n"), ["train.parquet", "Parquet"]),
    "missing file": (lambda d: d / "nowhere.csv", ["nowhere.csv"]),
    "mapped column missing": (_rows([{"text": r["text"], "sentiment": r["label"]} for r in GOOD]), ["no column 'label'", "text, sentiment"],
                              {"text": "text", "label": "label"}),
    "single class": (_rows([{"text": r["text"], "label": "positive"} for r in GOOD]), ["single class ('positive')"]),
    "all labels empty": (_rows([{"text": r["text"], "label": ""} for r in GOOD]), ["no rows left"]),
    "free text labels": (_rows([{"text": f"t {i}", "label": f"a different sentence {i}"} for i in range(60)]), ["looks like free text"]),
    "too few rows to split": (_rows(GOOD[:2]), ["train"]),
    # (Undecodable text no longer exists: Latin-1 reads every byte. A binary file is refused.)
    "binary bytes": (lambda d: _write(d / "train.csv", b"text,label\nab\x00cd,x\n" * 40), ["train.csv", "looks binary"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_training_files(case, tmp_path, tiny_encoder, workspace, capsys):
    make, expected, *columns = CASES[case]
    train = make(tmp_path)
    cfg = {"data": {"train": str(train), "columns": columns[0] if columns else {}}, "model": {"backbone": str(tiny_encoder)}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code = main(["train", str(path), "--workspace", str(workspace.root), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("error: ")
    for word in expected:
        assert word.lower() in err.lower(), (word, err)
    assert list(workspace.runs.iterdir()) == []  # nothing half-written


def test_unseen_labels_in_a_separate_test_file(tmp_path, tiny_encoder, workspace, capsys):
    train = write_csv(tmp_path / "train.csv", GOOD)
    test = write_csv(tmp_path / "test.csv", [{"text": "so so", "label": "neutral"}])
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"data": {"train": str(train), "test": str(test)}, "model": {"backbone": str(tiny_encoder)}}))
    assert main(["train", str(path), "--workspace", str(workspace.root)]) == 2
    assert "absent from the training data: 'neutral'" in capsys.readouterr().err
    assert list(workspace.runs.iterdir()) == []


@pytest.mark.parametrize("overrides, expected", [
    (["training.lr=1"], "unknown config key 'training.lr'"),
    (["training.epochs=-1"], "'training.epochs'"),
    (["model.backbone=roberta-base"], "not in the local cache and the hub cannot be reached"),
    (["task.name=translation-magic"], "unknown task 'translation-magic'"),
    (["model.backbone=flan-t5-small"], "flan-t5-small is a seq2seq model; Text classification trains encoder or decoder models"),
])
def test_bad_config_values(overrides, expected, tmp_path, tiny_encoder, workspace, capsys):
    train = write_csv(tmp_path / "train.csv", GOOD)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"data": {"train": str(train)}, "model": {"backbone": str(tiny_encoder)}}))
    args = ["train", str(path), "--workspace", str(workspace.root)]
    for item in overrides:
        args += ["--set", item]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert list(workspace.runs.iterdir()) == []


def test_json_records_with_nested_labels_train(tmp_path, tiny_encoder, workspace):
    """The good path for a JSON array: the same reader that refuses bad JSON accepts good JSON."""
    train = tmp_path / "train.json"
    train.write_text(json.dumps(GOOD * 2))
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"data": {"train": str(train)}, "model": {"backbone": str(tiny_encoder)},
                                    "training": {"max_steps": 2}}))
    assert main(["train", str(path), "--workspace", str(workspace.root), "--quiet"]) == 0
