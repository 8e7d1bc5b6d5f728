"""Text generation: input formats, malformed data, templates, label masking, seq2seq pairs,
metrics against hand-computed values, and decoding with tiny random models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from studio.config import RunConfig
from studio.data.readers import read_table
from studio.errors import ConfigError, DataError
from studio.tasks import get_task
from studio.tasks.base import TaskMeta
from studio.models.architecture import architecture_of, guess_architecture
from studio.tasks.generation.chat import (
    DEFAULT_CHAT_TEMPLATE, IGNORE, CausalCollator, assistant_spans, encode_conversation, render_chat, seq2seq_pair,
)
from studio.tasks.generation.decoding import generate
from studio.tasks.generation.metrics import exact_match, generation_metrics, is_chinese, rouge
from tests.tiny_generation import CHATML, t5_tokenizer, tiny_causal_lm, tiny_t5, word_tokenizer


def config(**task) -> RunConfig:
    columns = task.pop("columns", {})
    return RunConfig.from_dict({"task": {"name": "generation", **task}, "data": {"columns": columns}})


def normalize(tmp_path, name: str, content: str, labeled: bool = True, **task):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return get_task("generation").normalize(read_table(path).df, config(**task), name, labeled=labeled)


def jsonl(*rows) -> str:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"


def chat(*turns, system=None):
    roles = ["user", "assistant"] * len(turns)
    messages = [{"role": r, "content": c} for r, c in zip(roles, turns)]
    return ([{"role": "system", "content": system}] if system else []) + messages


# ---- input formats --------------------------------------------------------------------------

def test_prompt_completion_csv_is_detected(tmp_path):
    df, problems = normalize(tmp_path, "qa.csv", "prompt,completion\nWhat is 2+2?,4\nName a colour.,Blue\n")
    assert problems == []
    assert df["_row"].tolist() == [1, 2]
    assert df["messages"][0] == chat("What is 2+2?", "4")
    assert df.attrs["format"] == "prompt_completion" and df.attrs["columns"] == {"prompt": "prompt", "completion": "completion"}


@pytest.mark.parametrize("header, mapping", [
    ("question,answer", {"prompt": "question", "completion": "answer"}),
    ("document,summary", {"prompt": "document", "completion": "summary"}),
    ("input,output", {"prompt": "input", "completion": "output"}),
])
def test_common_column_names_are_recognised(tmp_path, header, mapping):
    df, _ = normalize(tmp_path, "d.csv", f"{header}\nq one,a one\n")
    assert df.attrs["columns"] == mapping
    assert df["messages"][0] == chat("q one", "a one")


def test_user_maps_columns_and_template_shapes_the_prompt(tmp_path):
    df, _ = normalize(tmp_path, "en_zh.csv", "id,english,chinese\n1,Good morning.,早上好。\n",
                      columns={"prompt": "english", "completion": "chinese"},
                      prompt_template="Translate into Chinese:\n{prompt}", system_prompt="You translate.")
    assert df["messages"][0] == [
        {"role": "system", "content": "You translate."},
        {"role": "user", "content": "Translate into Chinese:\nGood morning."},
        {"role": "assistant", "content": "早上好。"},
    ]


def test_alpaca_with_and_without_input(tmp_path):
    rows = jsonl({"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
                 {"instruction": "Say hello.", "input": "", "output": "Hello!"})
    df, _ = normalize(tmp_path, "alpaca.jsonl", rows)
    assert df.attrs["format"] == "alpaca"
    assert df["messages"][0] == chat("Add the numbers.\n\n2 and 3", "5")
    assert df["messages"][1] == chat("Say hello.", "Hello!")
    df, _ = normalize(tmp_path, "alpaca.jsonl", rows, prompt_template="Task: {instruction}\nData: {input}")
    assert df["messages"][0][0]["content"] == "Task: Add the numbers.\nData: 2 and 3"


def test_multi_turn_chat_jsonl_keeps_every_turn_and_adds_the_system_prompt(tmp_path):
    rows = jsonl({"messages": chat("Hi", "Hello! How can I help?", "Plan a picnic", "Bring bread and fruit.")},
                 {"messages": chat("Hi", "Hey.", system="Be terse.")})
    df, problems = normalize(tmp_path, "chat.jsonl", rows, system_prompt="Be kind.")
    assert problems == []
    assert df.attrs["format"] == "chat"
    assert df["messages"][0] == [{"role": "system", "content": "Be kind."}] + chat("Hi", "Hello! How can I help?", "Plan a picnic", "Bring bread and fruit.")
    assert df["messages"][1][0] == {"role": "system", "content": "Be terse."}  # the row's own system message wins


def test_chat_as_json_text_in_a_csv_and_sharegpt_turns(tmp_path):
    cell = json.dumps(chat("Hi", "Hello")).replace('"', '""')
    df, _ = normalize(tmp_path, "chat.csv", f'id,messages\n1,"{cell}"\n')
    assert df["messages"][0] == chat("Hi", "Hello")
    share = jsonl({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]})
    df, _ = normalize(tmp_path, "share.jsonl", share)
    assert df["messages"][0] == chat("Hi", "Hello")
    python = str(chat("Hi", "It's me")).replace('"', '""')  # a list printed by Python: single quotes
    df, _ = normalize(tmp_path, "py.csv", f'messages\n"{python}"\n')
    assert df["messages"][0] == chat("Hi", "It's me")


def test_per_row_system_column(tmp_path):
    df, _ = normalize(tmp_path, "s.csv", "system,prompt,completion\nAnswer in French.,Hello,Bonjour\n,Bye,Goodbye\n",
                      system_prompt="Default.")
    assert df["messages"][0][0] == {"role": "system", "content": "Answer in French."}
    assert df["messages"][1][0] == {"role": "system", "content": "Default."}


def test_prediction_input_needs_no_answer(tmp_path):
    df, problems = normalize(tmp_path, "p.csv", "prompt\nWhat is 2+2?\n", labeled=False)
    assert problems == [] and df["messages"][0] == [{"role": "user", "content": "What is 2+2?"}]
    df, _ = normalize(tmp_path, "c.jsonl", jsonl({"messages": [{"role": "user", "content": "Hi"}]}), labeled=False)
    assert df["messages"][0] == [{"role": "user", "content": "Hi"}]
    # the training config maps answer columns a file to predict does not have
    df, _ = normalize(tmp_path, "a.jsonl", jsonl({"instruction": "Say hi."}), labeled=False,
                      columns={"instruction": "instruction", "input": "input", "output": "output"})
    assert df["messages"][0] == [{"role": "user", "content": "Say hi."}]


# ---- malformed data: specific messages with row numbers --------------------------------------

def errors(problems, level="error"):
    return [p.message for p in problems if p.level == level]


def test_chat_without_an_assistant_turn(tmp_path):
    rows = jsonl({"messages": chat("Hi", "Hello")}, {"messages": [{"role": "user", "content": "Anyone there?"}]},
                 {"messages": chat("Hi", "Hello")}, {"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "Hm"}]})
    df, problems = normalize(tmp_path, "chat.jsonl", rows)
    assert errors(problems) == ["chat.jsonl: conversation(s) without an assistant message, so there is nothing to learn "
                                "(rows 2, 4); add the assistant's reply"]
    assert df["_row"].tolist() == [1, 3]


@pytest.mark.parametrize("messages, expected", [
    ([{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"}],
     "row 2, message 2: unknown role 'bot'; use system, user or assistant"),
    ([{"role": "user", "content": "Hi"}, {"content": "Hello"}], "row 2, message 2: no 'role' (keys found: content)"),
    ([{"role": "user", "text": "Hi"}], "row 2, message 1: no 'content' (keys found: role, text)"),
    (["Hi", "Hello"], "row 2, message 1: expected an object with role and content, got 'Hi'"),
    ({"role": "user"}, "row 2: messages must be a list of {role, content} objects, not dict"),
    ([], "row 2: the conversation has no messages"),
    (chat("Hi", "Hello") + [{"role": "system", "content": "late"}], "row 2, message 3: a system message can only come first"),
    ([{"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Hi"}],
     "row 2, message 1: the conversation starts with an assistant message"),
    ([{"role": "user", "content": "Hi"}, {"role": "user", "content": "Again"}, {"role": "assistant", "content": "Yes"}],
     "row 2, messages 1-2: two user messages in a row"),
    ([{"role": "user", "content": " "}, {"role": "assistant", "content": "Yes"}], "row 2, message 1: the user message is empty"),
])
def test_malformed_messages_name_row_and_message(tmp_path, messages, expected):
    df, problems = normalize(tmp_path, "chat.jsonl", jsonl({"messages": chat("Hi", "Hello")}, {"messages": messages}))
    found = errors(problems)
    assert len(found) == 1 and found[0].startswith(f"chat.jsonl: {expected}"), found
    assert df["_row"].tolist() == [1]


def test_invalid_json_in_a_csv_cell(tmp_path):
    good = json.dumps(chat("Hi", "Hello")).replace('"', '""')
    df, problems = normalize(tmp_path, "chat.csv", f'messages\n"{good}"\n"[{{""role"": ""user"", }}"\n')
    (message,) = errors(problems)
    assert message.startswith("chat.csv: row 2: messages is not valid JSON (")
    assert "at character" in message


def test_empty_targets_are_dropped_with_their_rows(tmp_path):
    df, problems = normalize(tmp_path, "qa.csv", "prompt,completion\nA,1\nB,\nC,3\n,4\nE, \n")
    assert errors(problems, "warning") == [
        "qa.csv: dropped 2 row(s) with an empty completion, nothing to learn from them (rows 2, 5)",
        "qa.csv: dropped 1 row(s) with an empty prompt (rows 4)",
    ]
    assert df["_row"].tolist() == [1, 3]
    rows = jsonl({"messages": chat("Hi", "Hello")}, {"messages": chat("Hi", "")})
    _, problems = normalize(tmp_path, "chat.jsonl", rows)
    assert errors(problems, "warning") == ["chat.jsonl: dropped 1 row(s) with an empty assistant message, nothing to learn from them (rows 2)"]
    _, problems = normalize(tmp_path, "a.jsonl", jsonl({"instruction": "x", "output": "y"}, {"instruction": "x", "output": ""}))
    assert "with an empty output" in errors(problems, "warning")[0]


def test_nothing_usable_is_an_error_listing_the_rows(tmp_path):
    with pytest.raises(DataError) as info:
        normalize(tmp_path, "chat.jsonl", jsonl({"messages": [{"role": "user", "content": "a"}]}, {"messages": [{"role": "user", "content": "b"}]}))
    assert "rows 1, 2" in str(info.value) and "without an assistant message" in str(info.value)
    with pytest.raises(DataError, match="every row has an empty prompt or answer"):
        normalize(tmp_path, "qa.csv", "prompt,completion\nA,\nB,\n")


def test_missing_and_unrecognised_columns(tmp_path):
    with pytest.raises(DataError) as info:
        normalize(tmp_path, "d.csv", "english,chinese\nhi,你好\n", columns={"prompt": "englsh", "completion": "chinese"})
    assert "has no column 'englsh'" in str(info.value) and "data.columns.prompt" in str(info.value) and "did you mean 'english'" in str(info.value)
    with pytest.raises(DataError, match=r"cannot tell which columns hold the prompt and the answer; columns found: english, chinese"):
        normalize(tmp_path, "d.csv", "english,chinese\nhi,你好\n")
    with pytest.raises(DataError, match=r"has no column for the output role of the alpaca format"):
        normalize(tmp_path, "d.csv", "instruction,reply_text\nhi,hello\n")
    with pytest.raises(DataError, match=r"mixes the roles of different formats \(chat: messages; prompt/completion: prompt\)"):
        normalize(tmp_path, "d.csv", "a,b\nx,y\n", columns={"messages": "a", "prompt": "b"})
    with pytest.raises(DataError, match=r"role\(s\) label that text generation does not use"):
        normalize(tmp_path, "d.csv", "a,b\nx,y\n", columns={"label": "a"})


def test_errors_stop_the_run_with_every_message(tmp_path):
    from studio.data.loading import load_task_data

    path = tmp_path / "chat.jsonl"
    rows = [{"messages": chat(f"q{i}", f"a{i}")} for i in range(20)]
    rows[3] = {"messages": [{"role": "user", "content": "Hi"}, {"role": "robot", "content": "Hello"}]}
    path.write_text(jsonl(*rows), encoding="utf-8")
    cfg = config()
    cfg.data.train = str(path)
    with pytest.raises(DataError, match=r"row 4, message 2: unknown role 'robot'"):
        load_task_data(cfg, get_task("generation"))


# ---- templates and label masking ------------------------------------------------------------

def tokens(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens(ids)


def test_chat_template_masks_everything_but_assistant_turns():
    tokenizer = word_tokenizer(CHATML)
    ids, labels = encode_conversation(tokenizer, chat("hello", "hi there", "thanks", "bye"), max_length=64)
    assert tokens(tokenizer, ids) == [
        "<|im_start|>", "user", "hello", "<|im_end|>", "<|im_start|>", "assistant", "hi", "there", "<|im_end|>",
        "<|im_start|>", "user", "thanks", "<|im_end|>", "<|im_start|>", "assistant", "bye", "<|im_end|>",
    ]
    learned = [i for i, label in enumerate(labels) if label != IGNORE]
    assert learned == [6, 7, 8, 15, 16]  # both assistant turns, each with its end-of-turn token
    assert all(labels[i] == ids[i] for i in learned)


def test_default_template_for_a_tokenizer_without_one():
    tokenizer = word_tokenizer(chat_template=None)
    messages = chat("hello", "hi there", system="be brief")
    assert render_chat(tokenizer, messages) == "### System:\nbe brief\n\n### User:\nhello\n\n### Assistant:\nhi there</s>\n\n"
    assert render_chat(tokenizer, messages[:2], add_generation_prompt=True) == "### System:\nbe brief\n\n### User:\nhello\n\n### Assistant:\n"
    ids, labels = encode_conversation(tokenizer, messages, max_length=64)
    assert tokens(tokenizer, ids) == ["###", "System", ":", "be", "brief", "###", "User", ":", "hello",
                                      "###", "Assistant", ":", "hi", "there", "</s>"]
    assert [i for i, label in enumerate(labels) if label != IGNORE] == [12, 13, 14]


def test_spans_exclude_whitespace_after_the_end_of_turn():
    tokenizer = word_tokenizer(CHATML)
    text, spans = assistant_spans(tokenizer, chat("hello", "hi"))
    assert [text[a:b] for a, b in spans] == ["hi<|im_end|>"]


def test_a_template_that_refuses_system_messages_gets_it_merged_into_the_user_turn():
    tokenizer = word_tokenizer(
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    )
    text = render_chat(tokenizer, chat("hello", "hi", system="be brief"))
    assert text.startswith("<|im_start|>user\nbe brief\n\nhello<|im_end|>")


def test_truncation_keeps_answer_tokens():
    tokenizer = word_tokenizer(CHATML)
    messages = chat("one two three four five " * 6, "hi there")
    ids, labels = encode_conversation(tokenizer, messages, max_length=20)
    full_ids, _ = encode_conversation(tokenizer, messages, max_length=1000)
    assert len(full_ids) == 38 and len(ids) == 20 and ids == full_ids[-20:]
    assert [t for t, l in zip(tokens(tokenizer, ids), labels) if l != IGNORE] == ["hi", "there", "<|im_end|>"]
    # when the answer fits, the end is cut and the start kept
    ids, labels = encode_conversation(tokenizer, chat("hello", "one two three four five " * 4), max_length=12)
    assert tokens(tokenizer, ids)[:3] == ["<|im_start|>", "user", "hello"] and len(ids) == 12
    assert sum(l != IGNORE for l in labels) == 6


def test_collator_pads_labels_with_ignore_even_when_pad_is_the_end_token():
    tokenizer = word_tokenizer(CHATML)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    collate = CausalCollator(pad_token_id=end)  # like SmolLM2: pad token == end-of-turn token
    a = encode_conversation(tokenizer, chat("hello", "hi"), 64)
    b = encode_conversation(tokenizer, chat("hello there", "hi there"), 64)
    batch = collate([{"input_ids": a[0], "labels": a[1]}, {"input_ids": b[0], "labels": b[1]}])
    assert batch["input_ids"].shape == (2, 16)  # padded to a multiple of 8
    row = batch["labels"][0].tolist()
    assert row[: len(a[1])] == a[1] and row[len(a[1]):] == [IGNORE] * (16 - len(a[1]))
    assert a[1][-1] == end  # the answer's own end token still counts
    assert batch["attention_mask"][0].tolist() == [1] * len(a[0]) + [0] * (16 - len(a[0]))


def test_tokenize_sets_the_default_template_on_a_tokenizer_without_one(tmp_path):
    task = get_task("generation")
    tokenizer = word_tokenizer(chat_template=None)
    tokenizer.pad_token = None
    df = pd.DataFrame({"_row": [1], "messages": [chat("hello", "hi")]})
    dataset = task.tokenize(df, tokenizer, TaskMeta("generation", {"architecture": "causal"}), 32)
    assert tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE and tokenizer.pad_token == "</s>"
    assert [t for t, l in zip(tokens(tokenizer, dataset[0]["input_ids"]), dataset[0]["labels"]) if l != IGNORE] == ["hi", "</s>"]


# ---- seq2seq -------------------------------------------------------------------------------

def test_seq2seq_source_and_target():
    assert seq2seq_pair(chat("Summarize: a long text", "short")) == ("Summarize: a long text", "short")
    assert seq2seq_pair(chat("hi", "hello", system="be brief")) == ("be brief\n\nhi", "hello")
    assert seq2seq_pair(chat("hi", "hello", "and you?", "fine")) == ("User: hi\nAssistant: hello\nUser: and you?", "fine")
    assert seq2seq_pair([{"role": "user", "content": "hi"}]) == ("hi", None)


def test_seq2seq_tokenize_and_collate():
    task = get_task("generation")
    meta = TaskMeta("generation", {"architecture": "seq2seq"})
    tokenizer = t5_tokenizer()
    df = pd.DataFrame({"_row": [1, 2], "messages": [chat("hello", "hi"), chat("hello there", "hi there")]})
    dataset = task.tokenize(df, tokenizer, meta, 32)
    assert tokens(tokenizer, dataset[1]["labels"]) == ["hi", "there", "</s>"]
    batch = task.collator(tokenizer, meta)([dataset[0], dataset[1]])
    assert batch["labels"][0].tolist()[:3] == [tokenizer.convert_tokens_to_ids("hi"), 1, IGNORE]
    assert task.peft_task_type == "SEQ_2_SEQ_LM" and task.hf_auto_class == "AutoModelForSeq2SeqLM"


def test_architecture_comes_from_the_backbone_config(tmp_path):
    t5 = tiny_t5(tmp_path / "t5")
    llama = tiny_causal_lm(tmp_path / "llama")
    assert architecture_of(t5) == "seq2seq" and architecture_of(llama) == "causal"
    # configs that leave is_encoder_decoder out (it is written only where true)
    for name, fields, expected in (("bart", {"model_type": "bart", "encoder_layers": 6, "decoder_layers": 6}, "seq2seq"),
                                   ("t5-old", {"model_type": "t5", "num_layers": 6, "num_decoder_layers": 6}, "seq2seq"),
                                   ("qwen", {"model_type": "qwen2", "num_hidden_layers": 24}, "causal")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(fields))
        assert architecture_of(tmp_path / name) == expected, name
    assert guess_architecture(str(t5)) == "seq2seq"
    assert guess_architecture("flan-t5-small") == "seq2seq" and guess_architecture("opus-mt-en-zh") == "seq2seq"
    assert guess_architecture("SmolLM2-135M-Instruct") == "causal"
    task = get_task("generation")
    meta = TaskMeta("generation", {"architecture": "causal"})
    model = task.load_model(str(t5), meta, config())
    assert type(model).__name__ == "T5ForConditionalGeneration"
    assert meta.info["architecture"] == "seq2seq" and task.peft_task_type == "SEQ_2_SEQ_LM"
    model = task.load_model(str(llama), meta, config())
    assert type(model).__name__ == "LlamaForCausalLM" and task.peft_task_type == "CAUSAL_LM"


# ---- metrics -------------------------------------------------------------------------------

def test_rouge_by_hand():
    # pred: the cat sat on the mat / ref: the cat is on the mat (6 tokens each)
    scores = rouge("The cat sat on the mat.", "the cat is on the mat")
    assert scores["rouge1"] == pytest.approx(5 / 6)  # the x2, cat, on, mat
    assert scores["rouge2"] == pytest.approx(3 / 5)  # the cat, on the, the mat
    assert scores["rougeL"] == pytest.approx(5 / 6)  # LCS: the cat on the mat


def test_chinese_is_scored_by_character():
    assert is_chinese(["我喜欢狗", "你好"]) and not is_chinese(["hello", "world", "a 你"])
    scores = rouge("我喜欢猫", "我喜欢狗")
    assert scores["rouge1"] == pytest.approx(3 / 4) and scores["rouge2"] == pytest.approx(2 / 3)
    metrics = generation_metrics(["我喜欢猫"], ["我喜欢狗"])
    # BLEU on characters: p1 3/4, p2 2/3, p3 1/2, p4 0/1 -> smoothed 1/2; equal lengths (no brevity penalty)
    assert metrics["bleu"] == pytest.approx(100 * (3 / 4 * 2 / 3 * 1 / 2 * 1 / 2) ** 0.25)


def test_bleu_chrf_and_exact_match_by_hand():
    metrics = generation_metrics(["the cat sat on the mat", "Paris."], ["the cat is on the mat", " Paris.  "])
    # one corpus: p1 = (5+2)/(6+2), p2 = (3+1)/(5+1), p3 = (1+0)/(4+0), p4 = smoothed 1/(2*3)
    assert metrics["bleu"] == pytest.approx(100 * (7 / 8 * 4 / 6 * 1 / 4 * 1 / 6) ** 0.25)
    assert metrics["exact_match"] == 0.5
    assert metrics["rougeL"] == pytest.approx((5 / 6 + 1) / 2)
    # chrF: mean character n-gram precision and recall over orders 1..3 (2/3, 1/2, 0), beta 2
    assert generation_metrics(["abc"], ["abd"])["chrf"] == pytest.approx(100 * (2 / 3 + 1 / 2 + 0) / 3)
    assert exact_match("Paris", "paris") is False and exact_match("a  b", " a b ") is True


def test_perplexity_and_rows_scored_after_training():
    task = get_task("generation")
    assert task.loss_metrics(2.0)["perplexity"] == pytest.approx(math.e ** 2)
    assert task.loss_metrics(1000.0)["perplexity"] is None
    splits = {"train": pd.DataFrame({"a": range(9)}), "validation": pd.DataFrame({"a": range(4)}), "test": pd.DataFrame({"a": range(7)})}
    meta = TaskMeta("generation", {"generation": {"max_eval_examples": 5}})
    rows = task.prediction_rows(splits, meta)
    assert list(rows) == ["test"] and len(rows["test"]) == 5
    assert list(task.prediction_rows({k: v for k, v in splits.items() if k != "test"}, meta)) == ["validation"]
    assert task.prediction_rows(splits, TaskMeta("generation", {"generation": {"max_eval_examples": 0}})) == {}
    assert task.metric_names(meta) == ("loss", False) and task.compute_metrics(meta) is None
    assert task.full_metrics([{"generation": "x", "reference": None}], meta) == {}


# ---- decoding with tiny random models --------------------------------------------------------

@pytest.fixture(scope="module")
def causal(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_causal_lm(tmp_path_factory.mktemp("llama"))
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def test_batched_greedy_generation_matches_one_by_one(causal):
    model, tokenizer = causal
    prompts = [[{"role": "user", "content": "hello"}],
               [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what colour is the sky ?"}],
               chat("hi", "hello", "count to three")[:3]]
    meta = TaskMeta("generation", {"generation": {"max_new_tokens": 6}})
    together = generate(model, tokenizer, prompts, meta, batch_size=3)
    alone = [generate(model, tokenizer, [p], meta)[0] for p in prompts]
    assert together == alone and all(isinstance(t, str) for t in together)
    assert tokenizer.padding_side == "right"  # left padding is done by hand, the tokenizer is untouched


def test_sampling_is_seeded(causal):
    model, tokenizer = causal
    meta = TaskMeta("generation", {"seed": 3, "generation": {"strategy": "sampling", "temperature": 1.5, "max_new_tokens": 8}})
    prompt = [[{"role": "user", "content": "hello"}]]
    assert generate(model, tokenizer, prompt, meta) == generate(model, tokenizer, prompt, meta)


def test_predict_stores_prompt_reference_generation_and_context(causal):
    model, tokenizer = causal
    task = get_task("generation")
    df = pd.DataFrame({"_row": [1, 2], "messages": [chat("hello", "hi"), chat("hi", "hello", "count to three", "one two three")]})
    meta = TaskMeta("generation", {"generation": {"max_new_tokens": 3}})
    first, second = task.predict(model, tokenizer, df, meta, 64)
    assert first["prompt"] == "hello" and first["reference"] == "hi" and "context" not in first
    assert second["prompt"] == "count to three" and second["context"] == chat("hi", "hello")
    assert isinstance(second["rougeL"], float) and isinstance(second["exact_match"], bool)
    row = task.render(second)
    assert row["context"] == "user: hi\nassistant: hello" and list(row) == ["prompt", "context", "reference", "generation", "rougeL", "exact_match"]


# ---- configuration -------------------------------------------------------------------------

@pytest.mark.parametrize("data, words", [
    ({"task": {"name": "generation", "prompt_template": "Summarize {text}"}}, ["'task.prompt_template'", "{text}", "{prompt}"]),
    ({"task": {"name": "generation", "prompt_template": "Summarize:"}}, ["'task.prompt_template'", "no placeholder"]),
    ({"task": {"name": "generation", "prompt_template": "Summarize {"}}, ["'task.prompt_template'", "literal brace"]),
    ({"task": {"name": "generation", "prompt_templat": "{prompt}"}}, ["'task.prompt_templat'", "did you mean 'prompt_template'",
                                                                      "system_prompt, prompt_template"]),
    ({"generation": {"strategy": "beam"}}, ["'generation.strategy'", "greedy"]),
    ({"generation": {"temperature": 0}}, ["'generation.temperature'", "> 0"]),
    ({"generation": {"top_p": 1.5}}, ["'generation.top_p'"]),
    ({"generation": {"max_new_tokens": 0}}, ["'generation.max_new_tokens'"]),
    ({"generation": {"max_eval_examples": -1}}, ["'generation.max_eval_examples'"]),
    ({"generation": {"max_tokens": 5}}, ["'generation.max_tokens'", "did you mean 'max_new_tokens'"]),
])
def test_bad_generation_settings_name_the_key(data, words):
    from studio.tasks import with_defaults

    with pytest.raises(ConfigError) as info:
        with_defaults(RunConfig.from_dict(data))
    for word in words:
        assert word in str(info.value)


def test_generation_defaults_to_the_bundled_decoder():
    from studio.tasks import with_defaults

    assert with_defaults(RunConfig.from_dict({"task": {"name": "generation"}})).model.backbone == "SmolLM2-135M-Instruct"
    assert with_defaults(RunConfig()).model.backbone == "all-MiniLM-L6-v2"
    assert with_defaults(RunConfig.from_dict({"task": {"name": "ner"}})).model.backbone == "all-MiniLM-L6-v2"
    chosen = RunConfig.from_dict({"task": {"name": "generation"}, "model": {"backbone": "flan-t5-small"}})
    assert with_defaults(chosen).model.backbone == "flan-t5-small"
    assert RunConfig.from_dict({"task": {"name": "generation"}}).generation.strategy == "greedy"


def test_bundled_gguf_is_converted_to_a_dense_folder_once(tmp_path, monkeypatch):
    """The GGUF is loaded dequantized (a model left in GGUF blocks cannot be saved or trained) and
    written to the cache through a temporary folder; the second call reuses it. (The conversion
    runs in a child process; here in this one, where transformers is faked.)"""
    import transformers

    from studio.models import loading
    from studio.models.catalog import find
    from studio.models.loading import model_folder
    from studio.models.resolve import ResolvedBackbone

    calls = []

    class Saved:
        def save_pretrained(self, folder):
            (Path(folder) / "config.json").write_text("{}")

    def fake_model(path, **kwargs):
        calls.append(kwargs)
        return Saved()

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", staticmethod(fake_model))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", staticmethod(lambda *a, **k: Saved()))
    monkeypatch.setattr(loading, "convert_in_child", loading.convert_gguf)
    backbone = ResolvedBackbone(str(tmp_path), "bundled", find("SmolLM2-135M-Instruct"), 1, None, gguf_file="m.gguf")
    folder = model_folder(backbone, tmp_path / "cache")
    assert folder == str(tmp_path / "cache" / "models" / "SmolLM2-135M-Instruct")
    assert calls[0]["gguf_file"] == "m.gguf" and calls[0]["quantization_config"].dequantize is True
    assert model_folder(backbone, tmp_path / "cache") == folder and len(calls) == 1
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir()] == ["SmolLM2-135M-Instruct"]  # no leftovers
