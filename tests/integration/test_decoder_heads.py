"""Decoder-only backbones (Llama-style) under a classification or tagging head: a tiny random
Llama whose tokenizer has no pad token trains, saves, reloads with plain transformers as
``…ForSequenceClassification`` / ``…ForTokenClassification`` and predicts; LoRA trains the head
in full and merges into a model transformers loads on its own."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from studio.cli import main
from tests.conftest import WORDS, only_run, toy_sentiment_rows, write_csv
from tests.integration.test_ner_cli import NAMES, PLACES, SURNAMES, toy_conll


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A 2-layer Llama with a word-level tokenizer that, like most decoder-only models, names no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    vocab = ["<unk>", "<s>", "</s>"] + sorted(set(WORDS) | set(NAMES) | set(SURNAMES) | set(PLACES) | {"and", "fun"})
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        model_max_length=128)
    assert tokenizer.pad_token is None
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=1, eos_token_id=2, pad_token_id=None)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def train(tmp_path, workspace, backbone, data, task, method="full"):
    config = {"name": f"decoder-{task}-{method}", "task": {"name": task}, "data": {"train": str(data)},
              "model": {"backbone": str(backbone)}, "method": {"kind": method, "lora": {"r": 4, "alpha": 8}},
              "training": {"epochs": 8, "learning_rate": 1e-2, "batch_size": 8, "early_stopping_patience": 0}}
    path = tmp_path / f"{task}-{method}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["train", str(path), "--workspace", str(workspace.root), "--quiet"]) == 0
    return only_run(workspace)


def test_a_decoder_classifier_trains_saves_and_reloads_with_plain_transformers(tmp_path, workspace, tiny_llama):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    data = write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(160))
    run = train(tmp_path, workspace, tiny_llama, data, "classification")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.8  # the cue words decide the label: the head learned them

    model = AutoModelForSequenceClassification.from_pretrained(run / "model")
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    assert type(model).__name__ == "LlamaForSequenceClassification"
    # The end-of-sequence token pads, and the model's config says so: a batch of uneven rows works.
    assert tokenizer.pad_token == "</s>" and model.config.pad_token_id == tokenizer.pad_token_id
    batch = tokenizer(["a wonderful film i loved it", "awful"], padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1).tolist()
    assert [model.config.id2label[i] for i in predicted] == ["positive", "negative"]

    inputs = write_csv(tmp_path / "new.csv", [{"text": "a superb story"}, {"text": "a dull boring plot"}])
    assert main(["predict", str(run), "--input", str(inputs), "--output", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["predicted"] for r in rows] == ["positive", "negative"]


def test_lora_tagging_on_a_decoder_trains_the_head_in_full_and_merges(tmp_path, workspace, tiny_llama):
    from peft import PeftModel  # noqa: F401  (the adapter needs peft; the merged model does not)
    from transformers import AutoModelForTokenClassification

    data = tmp_path / "train.conll"
    data.write_text(toy_conll(120), encoding="utf-8")
    run = train(tmp_path, workspace, tiny_llama, data, "ner", method="lora")
    adapter = json.loads((run / "model" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "TOKEN_CLS" and "score" in adapter["modules_to_save"]
    assert json.loads((run / "metrics.json").read_text())["test"]["f1"] > 0.5

    out = tmp_path / "merged"
    assert main(["export", str(run), "--output", str(out), "--merge"]) == 0
    model = AutoModelForTokenClassification.from_pretrained(out)
    assert type(model).__name__ == "LlamaForTokenClassification" and model.config.pad_token_id is not None
    assert {"B-PER", "B-LOC"} <= set(model.config.id2label.values())
