"""Generation end to end through the CLI with tiny random models (seconds): a causal LM (chat
template, LoRA, chat JSONL, export, predict) and an encoder-decoder (seq2seq)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from studio.cli import main
from studio.runs.events import read_events
from tests.conftest import only_run, train_quietly, write_csv
from tests.tiny_generation import colour_rows, tiny_causal_lm, tiny_t5


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory) -> Path:
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def causal_lm_without_template(tmp_path_factory) -> Path:
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama-base"), chat_template=None)


@pytest.fixture(scope="module")
def seq2seq_lm(tmp_path_factory) -> Path:
    return tiny_t5(tmp_path_factory.mktemp("tiny-t5"))


def make_config(tmp_path: Path, backbone: Path, train: Path, *, generation=None, task=None, **training) -> Path:
    config = {
        "name": "gen",
        "task": {"name": "generation", **(task or {})},
        "data": {"train": str(train), "split": {"validation": 0.1, "test": 0.15}},
        "model": {"backbone": str(backbone)},
        "training": {"epochs": 4, "learning_rate": 5e-3, "batch_size": 8, "early_stopping_patience": 0,
                     "warmup": 0, **training},
        "generation": {"max_new_tokens": 8, "max_eval_examples": 6, **(generation or {})},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def padded_run(tmp_path_factory, causal_lm):
    """The tiny Llama trained for 2 epochs on 100 colour rows in padded batches (packing off, as on
    a CPU by default), trained once: one test reads the finished run, another trains a packed run
    on the same data in the same workspace and compares the two (and must find the padded run's
    tokenized data in the workspace's cache). Every run starts a worker process (seconds)."""
    folder = tmp_path_factory.mktemp("padded")
    data = write_csv(folder / "colours.csv", colour_rows(100))
    trained = train_quietly(make_config(folder, causal_lm, data, epochs=2, packing=False), folder)
    trained.data = data
    return trained


def test_causal_lm_trains_and_is_compared_with_its_base(padded_run):
    out = padded_run.out
    assert "test: loss=" in out and "rougeL=" in out and "test, base model before fine-tuning: loss=" in out

    run = padded_run.run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["headline"] == {"name": "loss", "greater_is_better": False}
    test, base = metrics["test"], metrics["test_base"]
    for scores in (test, base):
        assert {"loss", "perplexity", "rouge1", "rouge2", "rougeL", "bleu", "chrf", "exact_match", "examples"} <= set(scores)
        assert scores["examples"] == 6  # generation.max_eval_examples
        assert scores["perplexity"] == pytest.approx(2.718281828 ** scores["loss"], rel=1e-6)
    assert test["loss"] < base["loss"] - 1.0  # a random model has learned the toy language
    assert "rougeL" not in metrics["validation"] and "perplexity" in metrics["validation"]  # loss only

    predictions = read_jsonl(run / "predictions_test.jsonl")
    base_predictions = read_jsonl(run / "predictions_test_base.jsonl")
    assert len(predictions) == len(base_predictions) == 6
    assert [p["prompt"] for p in predictions] == [p["prompt"] for p in base_predictions]
    first = predictions[0]
    assert {"prompt", "reference", "generation", "rougeL", "exact_match"} <= set(first)
    assert first["prompt"].startswith("what colour is the") and first["reference"].endswith(" .")
    assert not (run / "predictions_validation.jsonl").exists()

    events, _ = read_events(run)
    statuses = [e["status"] for e in events if e["kind"] == "status"]
    assert statuses == ["starting", "running", "completed"]
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["split"] for e in evals][0] == "test_base" and evals[0]["step"] == 0
    during = [e for e in evals if e["split"] == "validation" and "runtime" not in e["metrics"]]
    assert len(during) >= 2 and all("loss" in e["metrics"] and "rougeL" not in e["metrics"] for e in during)  # loss only

    # The saved model is a plain causal LM folder with the chat template it was trained with.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    AutoModelForCausalLM.from_pretrained(run / "model")
    assert "AutoModelForCausalLM" in (run / "README.md").read_text()


def test_base_model_without_chat_template_gets_the_default_one(tmp_path, causal_lm_without_template, workspace):
    data = write_csv(tmp_path / "colours.csv", colour_rows(80, seed=1))
    cfg = make_config(tmp_path, causal_lm_without_template, data, epochs=1, task={"system_prompt": "be brief"})
    assert main(["train", str(cfg), "--workspace", str(workspace.root), "--quiet"]) == 0
    run = only_run(workspace)
    from transformers import AutoTokenizer

    from studio.tasks.generation.chat import DEFAULT_CHAT_TEMPLATE

    assert AutoTokenizer.from_pretrained(run / "model").chat_template == DEFAULT_CHAT_TEMPLATE
    split = read_jsonl(run / "data" / "train.jsonl")[0]
    assert split["messages"][0] == {"role": "system", "content": "be brief"}


def test_lora_chat_jsonl_then_predict_and_export(tmp_path, causal_lm, workspace):
    rows = []
    for i, row in enumerate(colour_rows(50, seed=2)):
        messages = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"},
                    {"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["completion"]}]
        if i % 2:
            messages = messages[2:]
        rows.append({"messages": messages})
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    cfg = make_config(tmp_path, causal_lm, data, epochs=1, learning_rate=1e-2)
    assert main(["train", str(cfg), "--workspace", str(workspace.root), "--quiet",
                 "--set", "method.kind=lora", "--set", "method.lora.r=4"]) == 0
    run = only_run(workspace)
    adapter = json.loads((run / "model" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "CAUSAL_LM"
    predictions = read_jsonl(run / "predictions_test.jsonl")
    assert all(p["prompt"].startswith("what colour") for p in predictions)
    assert any(p.get("context") for p in predictions) or len(predictions) < 3

    # predict: prompts in, generations out (no reference column needed)
    inputs = write_csv(tmp_path / "prompts.csv", [{"prompt": "what colour is the sky ?"}, {"prompt": "what colour is the rose ?"}])
    out = tmp_path / "answers.jsonl"
    assert main(["predict", str(run), "--input", str(inputs), "--output", str(out), "--workspace", str(workspace.root)]) == 0
    answers = read_jsonl(out)
    assert [a["prompt"] for a in answers] == ["what colour is the sky ?", "what colour is the rose ?"]
    assert all(isinstance(a["generation"], str) for a in answers) and "reference" not in answers[0]

    # export --merge: one standalone model that loads without peft and matches the adapter's outputs
    merged = tmp_path / "merged"
    assert main(["export", str(run), "--merge", "--output", str(merged), "--workspace", str(workspace.root)]) == 0
    assert (merged / "config.json").exists() and not (merged / "adapter_config.json").exists()
    import torch
    from transformers import AutoModelForCausalLM

    from studio.inference.loading import load_trained

    trained = load_trained(run)
    plain = AutoModelForCausalLM.from_pretrained(merged)
    ids = torch.tensor([[4, 10, 20, 5]])
    with torch.no_grad():
        assert torch.allclose(trained.model(input_ids=ids).logits, plain(input_ids=ids).logits, atol=1e-4)
    assert main(["export", str(run), "--merge", "--output", str(merged), "--workspace", str(workspace.root)]) == 2


def test_seq2seq_backbone_is_detected_from_its_config(tmp_path, seq2seq_lm, workspace):
    rows = [{"question": r["prompt"], "answer": r["completion"]} for r in colour_rows(60, seed=3)]
    data = write_csv(tmp_path / "qa.csv", rows)
    cfg = make_config(tmp_path, seq2seq_lm, data, epochs=2, learning_rate=1e-2, task={"prompt_template": "question : {prompt}"})
    assert main(["train", str(cfg), "--workspace", str(workspace.root), "--quiet", "--set", "method.kind=lora",
                 "--set", "method.lora.r=4"]) == 0
    run = only_run(workspace)
    task = json.loads((run / "model" / "task.json").read_text())
    assert task["architecture"] == "seq2seq" and task["format"] == "prompt_completion"
    assert json.loads((run / "model" / "adapter_config.json").read_text())["task_type"] == "SEQ_2_SEQ_LM"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["loss"] < metrics["test_base"]["loss"]
    predictions = read_jsonl(run / "predictions_test.jsonl")
    assert predictions[0]["prompt"].startswith("question : what colour")


def test_packed_training_keeps_examples_apart_learns_and_reuses_the_tokenized_data(tmp_path, causal_lm, padded_run):
    padded, workspace = padded_run.run, padded_run.workspace
    events, _ = read_events(padded)
    assert not any("reused from the cache" in e.get("message", "") for e in events)

    packed_cfg = make_config(tmp_path, causal_lm, padded_run.data, epochs=2, packing=True)
    assert main(["train", str(packed_cfg), "--workspace", str(workspace.root), "--quiet"]) == 0
    packed = next(p for p in workspace.runs.iterdir() if not p.name.startswith(".") and p != padded)
    settings = json.loads((packed / "settings.json").read_text())
    assert (settings["packing"], settings["attention"]) == (True, "sdpa")  # on a CPU: the dense-mask kernel
    events, _ = read_events(packed)
    assert any("reused from the cache (train, validation, test)" in e.get("message", "") for e in events)
    metrics = json.loads((packed / "metrics.json").read_text())
    # The base model scored on packed rows gives the padded batches' loss: examples in a row do
    # not see each other.
    base = json.loads((padded / "metrics.json").read_text())["test_base"]["loss"]
    assert metrics["test_base"]["loss"] == pytest.approx(base, rel=1e-5)
    assert metrics["test"]["loss"] < metrics["test_base"]["loss"] - 1.0
