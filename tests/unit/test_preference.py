"""Preference pairs: the two data shapes, what is wrong with a row (file and row in every message),
QLoRA refused without a CUDA GPU, and its 4-bit memory estimate."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from studio.config import RunConfig
from studio.errors import ConfigError, DataError
from studio.tasks import get_task

CONFIG = RunConfig.from_dict({"task": {"name": "preference"}})


def normalize(df, config=CONFIG, source="pairs.csv"):
    return get_task("preference").normalize(df, config, source)


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_text_columns_become_a_prompt_conversation_and_two_answers():
    out, problems = normalize(pd.DataFrame({"question": ["Capital of Peru?"], "better": ["Lima."], "worse": ["Quito."]}))
    assert out.to_dict("records") == [{"_row": 1, "prompt": [user("Capital of Peru?")], "chosen": "Lima.", "rejected": "Quito."}]
    assert out.attrs["columns"] == {"prompt": "question", "chosen": "better", "rejected": "worse"} and not problems


def test_unusable_pairs_are_dropped_with_the_file_and_rows_named():
    df = pd.DataFrame({"prompt": ["a", "", "c", "d", "e"], "chosen": ["x", "y", "", "same", "ok"],
                       "rejected": ["z", "w", "q", "same", None]})
    out, problems = normalize(df)
    assert list(out["_row"]) == [1]
    messages = {p.level: [] for p in problems}
    for p in problems:
        messages[p.level].append(p.message)
    assert messages == {"warning": [
        "pairs.csv: dropped 2 pair(s) with an empty chosen or rejected answer, nothing to compare (rows 3, 5)",
        "pairs.csv: dropped 1 pair(s) whose chosen and rejected answers are the same text, nothing to prefer (rows 4)",
        "pairs.csv: dropped 1 pair(s) with an empty prompt (rows 2)",
    ]}


def test_no_usable_pair_and_missing_columns_are_refused():
    with pytest.raises(DataError, match="no row has a prompt with two different answers"):
        normalize(pd.DataFrame({"prompt": ["a"], "chosen": ["same"], "rejected": ["same"]}))
    with pytest.raises(DataError, match=r"file pairs.csv has no column for the rejected answer.*columns found: prompt, chosen"):
        normalize(pd.DataFrame({"prompt": ["a"], "chosen": ["x"]}))


def test_chat_pairs_share_their_conversation_before_the_answers():
    system = {"role": "system", "content": "Be brief."}
    rows = [
        {"chosen": [system, user("hi"), assistant("Hello!")], "rejected": [system, user("hi"), assistant("Go away.")]},
        # JSON text in a CSV cell, and TRL's conversational shape: a prompt list, answers alone
        {"prompt": json.dumps([user("2+2?")]), "chosen": json.dumps([assistant("4")]), "rejected": json.dumps([assistant("5")])},
    ]
    out, problems = normalize(pd.DataFrame(rows), source="chat.jsonl")
    assert out["prompt"].tolist() == [[system, user("hi")], [user("2+2?")]]
    assert out["chosen"].tolist() == ["Hello!", "4"] and out["rejected"].tolist() == ["Go away.", "5"]
    assert out.attrs["format"] == "chat" and not problems


@pytest.mark.parametrize("chosen, rejected, words", [
    ([user("hi"), assistant("a")], [user("hello"), assistant("b")], "row 1: chosen and rejected do not share the same conversation"),
    ([user("hi")], [user("hi"), assistant("b")], "row 1: the chosen conversation ends with a user message"),
    ([assistant("a"), user("hi"), assistant("b")], [user("hi"), assistant("b")], "chosen: row 1, message 1: the conversation starts with an assistant"),
])
def test_malformed_chat_pairs_name_the_file_row_and_message(chosen, rejected, words):
    with pytest.raises(DataError) as info:
        normalize(pd.DataFrame({"chosen": [chosen], "rejected": [rejected]}), source="chat.jsonl")
    assert f"chat.jsonl: {words}" in str(info.value)


def test_a_good_row_beside_a_malformed_one_reports_the_error():
    rows = [{"chosen": [user("hi"), assistant("a")], "rejected": [user("hello"), assistant("b")]},
            {"chosen": [user("hi"), assistant("a")], "rejected": [user("hi"), assistant("b")]}]
    out, problems = normalize(pd.DataFrame(rows), source="chat.jsonl")
    assert len(out) == 1 and [p.level for p in problems] == ["error"] and "row 1" in problems[0].message


def test_options_default_to_dpo_and_refuse_a_non_positive_beta():
    task = get_task("preference")
    assert (task.options_of(CONFIG).objective, task.options_of(CONFIG).beta) == ("dpo", 0.1)
    with pytest.raises(ConfigError, match="'task.beta'"):
        task.options_of(RunConfig.from_dict({"task": {"name": "preference", "beta": 0}}))
    with pytest.raises(ConfigError, match="'task.objective'"):
        task.options_of(RunConfig.from_dict({"task": {"name": "preference", "objective": "ppo"}}))


def test_qlora_is_refused_at_submit_without_a_cuda_gpu(monkeypatch):
    from studio.training import prepare

    config = RunConfig.from_dict({"method": {"kind": "qlora"}})
    monkeypatch.setattr(prepare, "detected_gpus", lambda: [])
    with pytest.raises(ConfigError) as info:
        prepare.check_method_fits(config)
    assert "method.kind qlora needs a CUDA GPU" in str(info.value) and "no CUDA GPU is visible" in str(info.value)
    assert "method.kind: lora" in info.value.hint
    monkeypatch.setattr(prepare, "detected_gpus", lambda: ["0"])
    prepare.check_method_fits(config)  # a GPU: accepted
    with pytest.raises(ConfigError, match="training.device is cpu"):
        prepare.check_method_fits(RunConfig.from_dict({"method": {"kind": "qlora"}, "training": {"device": "cpu"}}))


def test_the_worker_refuses_qlora_without_cuda_with_the_same_words():
    from studio.training.worker import classify_failure, qlora_kwargs

    with pytest.raises(ConfigError) as info:
        qlora_kwargs("cpu")
    assert "method.kind qlora needs a CUDA GPU" in str(info.value)
    assert classify_failure(info.value)[0] == ConfigError.kind  # reported as a configuration error, not a crash


QWEN_7B = {"model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28, "vocab_size": 152064,
           "intermediate_size": 18944, "num_attention_heads": 28, "num_key_value_heads": 4, "hidden_act": "silu"}


def test_the_qlora_estimate_counts_four_bit_weights():
    from studio.models.estimate import GIB, estimate

    common = dict(batch_size=1, seq_len=512, lora_r=16, half_precision=True, causal_lm=True, device="cuda")
    lora = estimate(QWEN_7B, **common)
    qlora = estimate(QWEN_7B, weight_bits=4, **common)
    embeddings = QWEN_7B["vocab_size"] * QWEN_7B["hidden_size"]
    body = lora.parameters - embeddings
    assert qlora.weights_gib == pytest.approx((body * 4.127 / 8 + embeddings * 2) / GIB)
    assert 4.0 < qlora.weights_gib < 5.5 and 13 < lora.weights_gib < 15  # a 7B model: ~4.6 GB in NF4, ~14 GB in bf16
    assert qlora.total_gib < lora.total_gib - 8 and qlora.trainable == lora.trainable


def test_the_run_estimate_uses_four_bits_for_a_qlora_run():
    from studio.training.speed import Hardware, memory_estimator

    hw = Hardware(cuda=True, bf16=True, tf32=True, memory_gib=80.0, name="gpu")
    lora = memory_estimator(QWEN_7B, RunConfig.from_dict({"method": {"kind": "lora"}}), hw, "decoder")(1, 512, False)
    qlora = memory_estimator(QWEN_7B, RunConfig.from_dict({"method": {"kind": "qlora"}}), hw, "decoder")(1, 512, False)
    assert qlora < lora - 8


def test_too_few_pairs_and_the_answered_cap_are_said_in_the_tasks_words():
    task = get_task("preference")
    config = RunConfig.from_dict({"task": {"name": "preference"}, "data": {"train": "pairs.jsonl"},
                                  "generation": {"max_eval_examples": 3}})
    pair = {"prompt": [[{"role": "user", "content": "hi"}]], "chosen": ["hello"], "rejected": ["go away"]}
    one, five = pd.DataFrame(pair), pd.DataFrame({k: v * 5 for k, v in pair.items()})
    problems = task.validate({"train": one, "test": five}, None, config)
    assert [(p.level, p.message) for p in problems] == [
        ("error", "the training data has 1 usable pair(s); preference tuning needs at least a few"),
        ("info", "after training the first 3 of 5 test prompts are answered by the starting and the tuned model "
                 "(generation.max_eval_examples); rewards cover them too")]
    generation = get_task("generation").validate({"train": five, "validation": five}, None, config)
    assert [p.message for p in generation] == ["the evaluation after training answers the first 3 of 5 test rows "
                                               "(generation.max_eval_examples); the loss uses them all"]
