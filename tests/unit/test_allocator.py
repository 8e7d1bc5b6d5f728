"""A CPU run's worker gets jemalloc when the system has it, and the memory estimate counts which."""

import pytest

from studio import allocator
from studio.allocator import GLIBC, JEMALLOC, allocator_env, worker_allocator
from studio.models.estimate import CPU_RUNTIME_BYTES, GIB, estimate
from studio.training.speed import describe

MINILM = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
          "intermediate_size": 1536, "vocab_size": 30522, "hidden_act": "gelu"}


@pytest.fixture
def has_jemalloc(monkeypatch):
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: "libjemalloc.so.2")


def test_jemalloc_is_preloaded_beside_what_was_there(has_jemalloc):
    assert allocator_env({"PATH": "/bin"}) == {"PATH": "/bin", "LD_PRELOAD": "libjemalloc.so.2"}
    assert allocator_env({"LD_PRELOAD": "libfoo.so"})["LD_PRELOAD"] == "libjemalloc.so.2 libfoo.so"
    already = {"LD_PRELOAD": "/opt/lib/libjemalloc.so.2"}
    assert allocator_env(already) == already and worker_allocator(already) == JEMALLOC


def test_the_system_malloc_is_kept_when_asked_or_when_there_is_no_jemalloc(has_jemalloc, monkeypatch):
    env = {"STUDIO_ALLOCATOR": "system"}
    assert allocator_env(env) == env and worker_allocator(env) == GLIBC
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: None)
    assert allocator_env({}) == {} and worker_allocator({}) == GLIBC


def test_the_estimate_counts_glibcs_kept_heap_only_under_glibc():
    lora = dict(batch_size=16, seq_len=64, lora_r=16)
    glibc = estimate(MINILM, allocator=GLIBC, **lora)
    jemalloc = estimate(MINILM, allocator=JEMALLOC, **lora)
    assert jemalloc.allocator_gib == pytest.approx(CPU_RUNTIME_BYTES / GIB)
    assert jemalloc.allocator_gib < glibc.allocator_gib
    assert glibc.total_gib - jemalloc.total_gib == pytest.approx(glibc.allocator_gib - jemalloc.allocator_gib)


def test_a_run_on_jemalloc_says_so_in_its_settings():
    assert describe({"precision": "fp32", "allocator": "jemalloc"}) == "fp32 · jemalloc"
    assert describe({"precision": "fp32", "allocator": "glibc"}) == "fp32"
