"""Token classification (NER): parsing each input format, BIO checks, sub-word alignment,
windowing, metrics and predictions. No training here; the CLI tests train."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from studio.config import RunConfig
from studio.data.loading import load_task_data
from studio.errors import DataError
from studio.tasks import get_task
from studio.tasks.base import TaskMeta
from studio.tasks.tokens.conll import parse_conll
from studio.tasks.tokens.metrics import sequence_metrics
from studio.tasks.tokens.spans import join_words, split_words
from studio.tasks.tokens.tags import repair_bio, tags_to_spans
from studio.tasks.base import IGNORE
from studio.tasks.tokens.windows import encode_sentences, make_windows, owners
from tests.conftest import ASSETS

task = get_task("ner")
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
META = TaskMeta("ner", {"labels": LABELS, "entity_types": ["LOC", "PER"]})


def config(**data):
    return RunConfig.from_dict({"task": {"name": "ner"}, "data": data})


def normalize(df, cfg=None, labeled=True, source="data.jsonl"):
    return task.normalize(df, cfg or config(), source, labeled=labeled)


def messages(problems, level=None):
    return [p.message for p in problems if level is None or p.level == level]


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    """A WordPiece tokenizer whose splits are known: Lovelace -> love ##lace, London -> lon ##don."""
    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("wordpiece")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "ada", "love", "##lace", "lived", "in", "lon", "##don", "."]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True, model_max_length=64)


# ---- CoNLL ---------------------------------------------------------------------------------------
CONLL = (
    "-DOCSTART- -X- -X- O\n"
    "\n"
    "EU NNP B-NP B-ORG\n"
    "rejects\tVBZ\tB-VP\tO\n"
    "German JJ B-NP B-MISC\n"
    "call NN I-NP O\n"
    "\n"
    "\n"
    "Peter\tB-PER\n"
    "Blackburn\tI-PER\n"
)


def test_conll_reads_first_and_last_columns_and_skips_docstart():
    df = parse_conll(CONLL, "train.conll")
    assert df["tokens"].tolist() == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    assert df["tags"].tolist() == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"]]
    assert df["_line"].tolist() == [3, 9]


def test_conll_tab_separated_tokens_may_hold_spaces_and_a_header_is_skipped():
    notes = []
    df = parse_conll("token\ttag\nNew York\tB-LOC\nrocks\tO\n", "t.tsv", notes)
    assert df["tokens"].tolist() == [["New York", "rocks"]]
    assert any("header" in n for n in notes)


def test_conll_word_without_tag_names_the_line():
    with pytest.raises(DataError) as info:
        parse_conll("Ada B-PER\nLovelace I-PER\nlived\nin O\n", "train.conll")
    assert "train.conll" in str(info.value) and "line 3: 'lived'" in str(info.value)


def test_conll_with_one_column_is_prediction_input():
    df = parse_conll("Ada\nLovelace\n\nLondon\n", "new.conll")
    assert "tags" not in df and df["tokens"].tolist() == [["Ada", "Lovelace"], ["London"]]
    out, _ = normalize(df, labeled=False, source="new.conll")
    assert out["text"].tolist() == ["Ada Lovelace", "London"]
    with pytest.raises(DataError, match="tags"):
        normalize(df, source="new.conll")


def test_read_file_picks_conll_or_table_by_content(tmp_path):
    (tmp_path / "a.conll").write_text(CONLL, encoding="utf-8")
    (tmp_path / "b.txt").write_text(CONLL, encoding="utf-8")
    (tmp_path / "c.txt").write_text("text,label\nhello there,x\n", encoding="utf-8")
    (tmp_path / "d.jsonl").write_text(json.dumps({"tokens": ["Ada"], "tags": ["B-PER"]}) + "\n", encoding="utf-8")
    assert task.read_file(tmp_path / "a.conll").format == "conll"
    assert task.read_file(tmp_path / "b.txt").format == "conll"
    assert list(task.read_file(tmp_path / "c.txt").df.columns) == ["text", "label"]
    assert task.read_file(tmp_path / "d.jsonl").df["tokens"].tolist() == [["Ada"]]


def test_bundled_samples_read_and_validate():
    for name, rows in (("ner_en.conll", 300), ("ner_en_spans.jsonl", 150)):
        cfg = RunConfig.load(ASSETS / "configs" / name.replace(".conll", ".yaml").replace(".jsonl", ".yaml"))
        data = load_task_data(cfg, task)
        assert sum(len(df) for df in data.splits.values()) == rows
        assert data.meta.info["entity_types"] == ["LOC", "MISC", "ORG", "PER"]
        assert not [p for p in data.problems if p.level != "info"], data.problems
    # Chinese, one character a line: read, validated, its three entity types found.
    data = load_task_data(RunConfig.load(ASSETS / "configs" / "ner_zh.yaml"), task)
    assert sum(len(df) for df in data.splits.values()) == 240
    assert data.meta.info["entity_types"] == ["LOC", "ORG", "PER"]
    assert not [p for p in data.problems if p.level != "info"], data.problems


# ---- token/tag tables ----------------------------------------------------------------------------
def test_jsonl_lists_and_csv_strings_give_the_same_rows():
    lists = pd.DataFrame({"tokens": [["Ada", "Lovelace", "lived"]], "tags": [["B-PER", "I-PER", "O"]]})
    json_text = pd.DataFrame({"words": ['["Ada", "Lovelace", "lived"]'], "ner_tags": ['["B-PER", "I-PER", "O"]']})
    spaced = pd.DataFrame({"tokens": ["Ada Lovelace lived"], "tags": ["B-PER I-PER O"]})
    outs = [normalize(df)[0] for df in (lists, json_text, spaced)]
    for out in outs:
        assert out["tokens"].tolist() == [["Ada", "Lovelace", "lived"]]
        assert out["tags"].tolist() == [["B-PER", "I-PER", "O"]]
        assert out["text"].tolist() == ["Ada Lovelace lived"]
        assert out["offsets"].tolist() == [[[0, 3], [4, 12], [13, 18]]]
    assert outs[1].attrs["columns"] == {"tokens": "words", "tags": "ner_tags"}


def test_length_mismatch_is_an_error_naming_the_row():
    df = pd.DataFrame({"tokens": [["a", "b"], ["c", "d", "e"], ["f"]], "tags": [["O", "O"], ["O", "B-PER"], ["O"]]})
    out, problems = normalize(df)
    errors = messages(problems, "error")
    assert errors == ["data.jsonl: 1 row(s) have a different number of tokens and tags (row 2: 3 tokens but 2 tags); "
                      "each word needs exactly one tag"]
    assert out["_row"].tolist() == [1, 3]


def test_empty_sentences_are_dropped_with_a_warning():
    df = pd.DataFrame({"tokens": [["a"], [], None, ["b"]], "tags": [["O"], [], None, ["B-PER"]]})
    out, problems = normalize(df)
    assert len(out) == 2
    assert messages(problems, "warning") == ["data.jsonl: dropped 2 empty sentence(s) with no words (row 2; row 3)"]


def test_missing_columns_name_what_was_found():
    with pytest.raises(DataError) as info:
        normalize(pd.DataFrame({"tokens": [["a"]], "foo": [["O"]]}))
    assert "'tags'" in str(info.value) and "tokens, foo" in str(info.value)
    with pytest.raises(DataError, match="roles are: tokens, tags, text, entities"):
        normalize(pd.DataFrame({"tokens": [["a"]]}), config(columns={"label": "x"}))


# ---- tag schemes ---------------------------------------------------------------------------------
def test_i_after_o_is_repaired_to_b_with_a_warning_naming_the_line():
    df = parse_conll("The O\nUN I-ORG\nmet O\nin O\nRome B-LOC\nand O\nParis I-LOC\n", "t.conll")
    out, problems = normalize(df, source="t.conll")
    assert out["tags"].iat[0] == ["O", "B-ORG", "O", "O", "B-LOC", "O", "B-LOC"]
    [warning] = messages(problems, "warning")
    assert warning.startswith("t.conll: 2 I- tag(s) do not continue an entity of the same type")
    assert "line 2: 'I-ORG' after 'O'" in warning and "line 7: 'I-LOC' after 'O'" in warning


def test_iob1_is_recognised_and_converted():
    # IOB1: I- begins entities; B- only splits two adjacent entities of the same type.
    df = pd.DataFrame({"tokens": [["Ada", "Alan", "met", "in", "Paris"]], "tags": [["I-PER", "B-PER", "O", "O", "I-LOC"]]})
    out, problems = normalize(df)
    assert out["tags"].iat[0] == ["B-PER", "B-PER", "O", "O", "B-LOC"]
    assert messages(problems) == ["data.jsonl: tags read as IOB1 and converted to IOB2 (B- begins every entity)"]


def test_bioes_is_converted():
    df = pd.DataFrame({"tokens": [["New", "York", "City", "and", "Rome"]], "tags": [["B-LOC", "I-LOC", "E-LOC", "O", "S-LOC"]]})
    out, problems = normalize(df)
    assert out["tags"].iat[0] == ["B-LOC", "I-LOC", "I-LOC", "O", "B-LOC"]
    assert "read as BIOES" in messages(problems)[0]


def test_unknown_tag_format_is_refused_with_examples():
    df = pd.DataFrame({"tokens": [["The", "cat", "sat"], ["Dogs"]], "tags": [["DT", "NN", "VBD"], ["NNS"]]})
    with pytest.raises(DataError) as info:
        normalize(df)
    text = str(info.value)
    assert text.startswith("data.jsonl: unknown tag format: 'DT' (1×, first at row 1, word 1)")
    assert "'NNS' (1×, first at row 2, word 1)" in text and "B-PER" in text


def test_numeric_tags_get_their_own_message():
    df = pd.DataFrame({"tokens": [["EU", "rejects"]], "ner_tags": [[3, 0]]})
    with pytest.raises(DataError, match=r"the tags are numbers \(0, 3\), not tag names"):
        normalize(df)


def test_repair_and_spans_helpers():
    assert repair_bio(["I-PER", "I-PER", "B-LOC", "I-ORG"]) == (["B-PER", "I-PER", "B-LOC", "B-ORG"], [0, 3])
    assert tags_to_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC"]) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "LOC")]


# ---- raw text with character spans ---------------------------------------------------------------
def test_split_words_keeps_offsets():
    text = "Dr. O'Neil met 张伟 in São Paulo!"
    words = split_words(text)
    assert [w for w, _, _ in words] == ["Dr", ".", "O", "'", "Neil", "met", "张", "伟", "in", "São", "Paulo", "!"]
    assert all(text[s:e] == w for w, s, e in words)


def test_spans_become_bio_tags_in_every_shape():
    text = "Maria Lopez moved to New York."
    dicts = [{"start": 0, "end": 11, "label": "PER"}, {"start": 21, "end": 29, "label": "LOC"}]
    df = pd.DataFrame({"text": [text] * 3, "entities": [dicts, json.dumps(dicts), [[0, 11, "PER"], [21, 29, "LOC"]]]})
    out, problems = normalize(df)
    assert problems == []
    for tags in out["tags"]:
        assert tags == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]
    assert out["tokens"].iat[0] == ["Maria", "Lopez", "moved", "to", "New", "York", "."]
    assert out["offsets"].iat[0][5] == [25, 29]


def test_spans_in_a_csv_file(tmp_path):
    path = tmp_path / "spans.csv"
    pd.DataFrame({"sentence": ["Ada met Alan.", "Nothing here."],
                  "spans": ['[{"start": 0, "end": 3, "label": "PER"}, {"start": 8, "end": 12, "label": "PER"}]', "[]"]}
                 ).to_csv(path, index=False)
    out, problems = normalize(task.read_file(path).df, source="spans.csv")
    assert out["tags"].tolist() == [["B-PER", "O", "B-PER", "O"], ["O", "O", "O"]]
    assert out.attrs["columns"] == {"text": "sentence", "entities": "spans"}


def test_spans_out_of_range_overlapping_or_unreadable_are_errors_naming_the_row():
    text = "Ada Lovelace lived in London"
    df = pd.DataFrame({"text": [text] * 5, "entities": [
        [{"start": 0, "end": 12, "label": "PER"}],
        [{"start": 22, "end": 40, "label": "LOC"}],
        [{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 12, "label": "LOC"}],
        [{"begin": 0, "label": "PER"}],
        [{"start": 5, "end": 5, "label": "PER"}],
    ]})
    out, problems = normalize(df)
    assert len(out) == 1
    errors = messages(problems, "error")
    assert ("data.jsonl: 2 row(s) with entity spans outside the text or empty (row 2: span [22, 40) 'LOC' ends at 40, "
            "past the end of the text (28 characters); row 5: span [5, 5) 'PER' is empty or reversed (start 5 >= end 5))") in errors[1]
    assert errors[2].startswith("data.jsonl: 1 row(s) with overlapping entity spans (row 3: spans [0, 12) 'PER' 'Ada Lovelace' "
                                "and [4, 12) 'LOC' 'Lovelace' overlap)")
    assert errors[0].startswith("data.jsonl: 1 row(s) whose entities cannot be read (row 4: span 1")
    with pytest.raises(DataError, match="cannot be used as it is:\n  - data.jsonl: 1 row"):
        load_task_data_from(df, config(split={"validation": 0.0, "test": 0.0}))


def load_task_data_from(df, cfg):
    """load_task_data on an in-memory frame (the reader is bypassed)."""
    from unittest import mock

    table = SimpleNamespace(df=df, notes=[])
    cfg.data.train = "data.jsonl"
    with mock.patch.object(type(task), "read_file", lambda self, path, **options: table):
        return load_task_data(cfg, task)


def test_spans_inside_words_are_extended_with_a_warning_and_edge_spaces_trimmed():
    df = pd.DataFrame({"text": ["I love Parisians and Rome"], "entities": [[[7, 12, "LOC"], [20, 25, "LOC"]]]})
    out, problems = normalize(df)
    assert out["tags"].iat[0] == ["O", "O", "B-LOC", "O", "B-LOC"]
    assert messages(problems, "warning") == [
        "data.jsonl: 1 entity span(s) start or end inside a word and were extended to whole words "
        "(row 1: [7, 12) 'LOC' 'Paris' → 'Parisians'); check the offsets if that is not what you meant"
    ]


def test_raw_text_is_enough_for_prediction():
    out, problems = normalize(pd.DataFrame({"text": ["Ada lives in London.", ""]}), labeled=False)
    assert problems and "empty text" in problems[0].message
    assert out["tokens"].tolist() == [["Ada", "lives", "in", "London", "."]] and "tags" not in out


# ---- splits and validation -----------------------------------------------------------------------
def test_tag_set_is_inferred_and_test_types_absent_from_train_are_reported(tmp_path):
    train = tmp_path / "train.conll"
    test = tmp_path / "test.conll"
    train.write_text("Ada B-PER\nLovelace I-PER\n\nin O\nRome B-LOC\n\nBob B-PER\n\nOslo B-LOC\n\nParis B-LOC\n\nEve B-PER\n", encoding="utf-8")
    test.write_text("Acme B-ORG\nCorp I-ORG\nhired O\nAda B-PER\n", encoding="utf-8")
    cfg = config(train=str(train), test=str(test), split={"validation": 0.0, "test": 0.0})
    data = load_task_data(cfg, task)
    assert data.meta.info["labels"] == LABELS
    warning = next(m for m in messages(data.problems, "warning") if "absent" in m)
    assert warning.startswith("the test split has entity type(s) absent from the training data: 'ORG' (1)")
    info = messages(data.problems, "info")[0]
    assert "tag set (IOB2): O, B-LOC, I-LOC, B-PER, I-PER" in info and "train: PER 3, LOC 3" in info


def test_training_data_without_entities_is_refused(tmp_path):
    train = tmp_path / "train.conll"
    train.write_text("\n\n".join("a O\nb O" for _ in range(10)), encoding="utf-8")
    with pytest.raises(DataError, match="no entities"):
        load_task_data(config(train=str(train)), task)


# ---- alignment and windows -----------------------------------------------------------------------
def test_first_subtoken_is_labeled_and_the_rest_ignored(wordpiece):
    df = pd.DataFrame({"tokens": [["Ada", "Lovelace", "lived", "in", "London", "."]],
                       "tags": [["B-PER", "I-PER", "O", "O", "B-LOC", "O"]]})
    ds = task.tokenize(df, wordpiece, META, max_length=32)
    assert wordpiece.convert_ids_to_tokens(ds[0]["input_ids"]) == [
        "[CLS]", "ada", "love", "##lace", "lived", "in", "lon", "##don", ".", "[SEP]"]
    # [CLS] ada love ##lace lived in lon ##don . [SEP]
    assert ds[0]["labels"] == [IGNORE, 3, 4, IGNORE, 0, 0, 1, IGNORE, 0, IGNORE]
    assert task.text_lengths(df, wordpiece) == [10]


def test_tags_unknown_to_the_model_are_ignored_not_guessed(wordpiece):
    df = pd.DataFrame({"tokens": [["Ada", "in", "London"]], "tags": [["B-ORG", "O", "B-LOC"]]})
    assert task.tokenize(df, wordpiece, META, max_length=32)[0]["labels"] == [IGNORE, IGNORE, 0, 1, IGNORE, IGNORE]


def test_windows_cover_every_word_once():
    lengths = [1, 2, 1, 1, 3, 1, 1, 2, 1]
    windows = make_windows(lengths, budget=5, context=2)
    # (0, 4) holds 5 sub-tokens; the next starts 2 sub-tokens back (words 2-3); word 4 (3 pieces)
    # cannot be shared within 2 sub-tokens of context, so the third window starts after it.
    assert windows == [(0, 4), (2, 5), (5, 9)]
    assert all(sum(lengths[s:e]) <= 5 for s, e in windows)
    assert owners(windows, len(lengths)) == [0, 0, 0, 1, 1, 2, 2, 2, 2]


def test_long_sentences_are_windowed_not_truncated(wordpiece):
    words = ["Ada", "Lovelace", "lived", "in", "London", "."] * 5
    tags = ["B-PER", "I-PER", "O", "O", "B-LOC", "O"] * 5
    df = pd.DataFrame({"tokens": [words], "tags": [tags]})
    ds = task.tokenize(df, wordpiece, META, max_length=12)
    assert len(ds) > 1 and all(len(ids) <= 12 for ids in ds["input_ids"])
    labeled = [l for row in ds["labels"] for l in row if l != IGNORE]
    assert labeled == [LABELS.index(t) for t in tags]  # each word exactly once, in order
    windows = encode_sentences(wordpiece, [words], 12)
    assert windows[0]["words"][0] == 0 and windows[-1]["words"][1] == len(words)


class KeywordModel:
    """Stands in for a token classifier: tags a sub-token by its id (ada -> B-PER, lon -> B-LOC)."""

    def __init__(self, tokenizer):
        import torch

        self.rules = {tokenizer.convert_tokens_to_ids("ada"): 3, tokenizer.convert_tokens_to_ids("lon"): 1,
                      tokenizer.convert_tokens_to_ids("love"): 4}
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):
        return iter([self.weight])

    def eval(self):
        return self

    def __call__(self, input_ids, **_):
        import torch

        logits = torch.zeros(*input_ids.shape, len(LABELS))
        logits[..., 0] = 1.0
        for token_id, label in self.rules.items():
            logits[..., label] += 5.0 * (input_ids == token_id)
        return SimpleNamespace(logits=logits)


def test_predict_merges_windows_and_gives_character_spans(wordpiece):
    words = ["Ada", "Lovelace", "lived", "in", "London", "."] * 4
    text, offsets = join_words(words)
    df = pd.DataFrame({"tokens": [words], "tags": [["B-PER", "I-PER", "O", "O", "B-LOC", "O"] * 4],
                       "text": [text], "offsets": [offsets]})
    [pred] = task.predict(KeywordModel(wordpiece), wordpiece, df, META, max_length=10, batch_size=2)
    assert pred["pred_tags"] == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"] * 4
    assert pred["correct"] is True and len(pred["entities"]) == 8
    first = pred["entities"][0]
    assert {k: first[k] for k in ("start", "end", "label", "text")} == {"start": 0, "end": 12, "label": "PER", "text": "Ada Lovelace"}
    assert 0 < first["score"] <= 1
    assert pred["entities"] == [dict(e, score=pred["entities"][i]["score"]) for i, e in enumerate(pred["gold_entities"])]


def test_predict_on_raw_text_keeps_the_original_offsets(wordpiece):
    df, _ = normalize(pd.DataFrame({"text": ["Ada  lived in London, a."]}), labeled=False)
    [pred] = task.predict(KeywordModel(wordpiece), wordpiece, df, META, max_length=32)
    assert [(e["start"], e["end"], e["label"], e["text"]) for e in pred["entities"]] == [(0, 3, "PER", "Ada"), (14, 20, "LOC", "London")]
    assert "gold_tags" not in pred
    row = task.render(pred)
    assert row == {"text": "Ada  lived in London, a.", "entities": "Ada [PER]; London [LOC]",
                   "tokens": "Ada lived in London , a .", "tags": "B-PER O O B-LOC O O O"}


# ---- metrics -------------------------------------------------------------------------------------
def test_entity_metrics_match_hand_computed_values():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"]]
    # entities: gold {PER 0-2, LOC 3, ORG 0, PER 2}, predicted {PER 0-2, ORG 3, ORG 0}: 2 correct.
    m = sequence_metrics(gold, pred, per_type=True)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["per_type"]["PER"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_type"]["ORG"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)
    assert (m["gold_entities"], m["predicted_entities"]) == (4, 3)


def test_an_i_tag_after_o_in_predictions_counts_as_an_entity_start():
    assert sequence_metrics([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]])["f1"] == 1.0


def test_all_o_scores_zero_not_nan():
    m = sequence_metrics([["O", "O"]], [["O", "O"]])
    assert m["f1"] == 0.0 and m["accuracy"] == 1.0


def test_compute_metrics_skips_ignored_positions():
    compute = task.compute_metrics(META)
    logits = np.zeros((2, 5, len(LABELS)))
    predicted = [[0, 3, 4, 0, 1], [0, 0, 1, 2, 0]]
    for r, row in enumerate(predicted):
        for p, label in enumerate(row):
            logits[r, p, label] = 1.0
    labels = np.array([[IGNORE, 3, 4, IGNORE, 1], [IGNORE, 0, 1, 2, IGNORE]])
    m = compute(SimpleNamespace(predictions=logits, label_ids=labels))
    # kept positions: gold [B-PER I-PER B-LOC], [O B-LOC I-LOC]; the predictions agree there.
    assert m["f1"] == 1.0 and m["accuracy"] == 1.0
    labels[1, 2] = 3  # gold [O B-PER I-LOC]: entities PER and LOC where LOC (2 words) was predicted
    m = compute(SimpleNamespace(predictions=logits, label_ids=labels))
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 4)
    assert m["accuracy"] == pytest.approx(5 / 6)


def test_full_metrics_reads_stored_predictions():
    rows = [{"gold_tags": ["B-PER", "O"], "pred_tags": ["B-PER", "O"]}, {"pred_tags": ["O"]}]
    m = task.full_metrics(rows, META)
    assert m["f1"] == 1.0 and set(m["per_type"]) == {"PER"}
    assert task.full_metrics([{"pred_tags": ["O"]}], META) == {}
    assert task.metric_names(META) == ("f1", True)


def test_conll_header_line_is_recognised_by_its_names():
    notes = []
    df = parse_conll("word\tentity\nOslo\tB-LOC\n", "h.tsv", notes)
    assert df["tokens"].tolist() == [["Oslo"]] and notes == ["h.tsv: skipped the header line 1 ('word\\tentity')"]


def test_lora_trains_adapters_and_the_new_tagging_head(tiny_encoder):
    from studio.training.worker import apply_lora

    cfg = RunConfig.from_dict({"task": {"name": "ner"}, "method": {"kind": "lora", "lora": {"r": 4}}})
    model = apply_lora(task.load_model(str(tiny_encoder), META, cfg), cfg, task.peft_task_type)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert any("classifier" in name for name in trainable) and any("lora_" in name for name in trainable)
    assert model.base_model.model.config.id2label[3] == "B-PER"


def test_predict_accepts_bare_text_and_empty_boxes(wordpiece):
    preds = task.predict(KeywordModel(wordpiece), wordpiece, pd.DataFrame({"text": ["in London", ""]}), META, max_length=16)
    assert [e["text"] for e in preds[0]["entities"]] == ["London"] and preds[0]["entities"][0]["start"] == 3
    assert preds[1] == {"tokens": [], "text": "", "pred_tags": [], "entities": []}


def test_prediction_input_may_differ_from_the_training_columns():
    cfg = config(columns={"text": "sentence", "entities": "spans"})
    out, _ = normalize(pd.DataFrame({"tokens": [["Ada", "lived"]]}), cfg, labeled=False)
    assert out["tokens"].tolist() == [["Ada", "lived"]]
    with pytest.raises(DataError, match="'sentence'"):
        normalize(pd.DataFrame({"tokens": [["Ada"]], "tags": [["B-PER"]]}), cfg)
