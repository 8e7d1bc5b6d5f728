import pytest

from studio.models.estimate import CPU_RUNTIME_BYTES, GIB, HEAP_RETAINED_SHARE, Shape, estimate, largest_batch

MINILM = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
          "intermediate_size": 1536, "vocab_size": 30522, "hidden_act": "gelu"}
QWEN_05B = {"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
            "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936, "hidden_act": "silu"}


def test_parameter_counts_match_known_models():
    minilm = estimate(MINILM, batch_size=1, seq_len=8)
    assert minilm.parameters == pytest.approx(22.7e6, rel=0.05)
    qwen = estimate(QWEN_05B, batch_size=1, seq_len=8)
    assert qwen.parameters == pytest.approx(494e6, rel=0.05)


def test_memory_terms_by_hand():
    est = estimate(MINILM, batch_size=16, seq_len=64)
    p = est.parameters
    assert est.weights_gib == pytest.approx(4 * p / GIB)
    assert est.gradients_gib == pytest.approx(4 * p / GIB)
    assert est.optimizer_gib == pytest.approx(8 * p / GIB)
    # activations: tokens x layers x 4 bytes x (17 h + 2 i), and on a CPU the attention scores:
    # layers x batch x heads x seq_len^2 x 10 bytes (5 at 16-bit)
    body = 16 * 64 * 6 * 4 * (17 * 384 + 2 * 1536)
    assert est.activations_gib == pytest.approx((body + 6 * 16 * 12 * 64**2 * 10) / GIB)
    assert estimate(MINILM, batch_size=16, seq_len=64, device="cuda").activations_gib == pytest.approx(body / GIB)


def test_the_cpu_allocator_term_counts_the_heap_that_gradients_do_not_refill():
    full = estimate(MINILM, batch_size=16, seq_len=64)
    lora = estimate(MINILM, batch_size=16, seq_len=64, lora_r=16)
    assert full.allocator_gib == pytest.approx(CPU_RUNTIME_BYTES / GIB)  # the gradients and moments refill the heap
    assert lora.allocator_gib == pytest.approx((CPU_RUNTIME_BYTES + HEAP_RETAINED_SHARE * lora.activations_gib * GIB
                                                - (lora.gradients_gib + lora.optimizer_gib) * GIB) / GIB)
    assert estimate(MINILM, batch_size=16, seq_len=64, lora_r=16, device="cuda").allocator_gib == 0
    # Hidden states too large for glibc's heap are mapped and unmapped whole: nothing is retained.
    big = estimate(MINILM, batch_size=256, seq_len=512, lora_r=16)
    assert big.allocator_gib == pytest.approx(CPU_RUNTIME_BYTES / GIB)


def test_lora_checkpointing_and_batch_move_the_estimate_the_right_way():
    full = estimate(QWEN_05B, batch_size=8, seq_len=512, causal_lm=True, half_precision=True, device="cuda")
    lora = estimate(QWEN_05B, batch_size=8, seq_len=512, causal_lm=True, half_precision=True, device="cuda", lora_r=16)
    body = estimate(QWEN_05B, batch_size=8, seq_len=512, half_precision=True, device="cuda")
    ckpt = estimate(QWEN_05B, batch_size=8, seq_len=512, half_precision=True, device="cuda", gradient_checkpointing=True)
    assert lora.trainable < full.trainable / 50 and lora.total_gib < full.total_gib
    assert ckpt.activations_gib < body.activations_gib / 3
    assert full.activations_gib > body.activations_gib  # the vocabulary-sized logits
    assert lora.flops_per_step < full.flops_per_step
    # On a CPU a LoRA step is timed as a full one (its adapters' memory-bound work outweighs the
    # weight gradients it skips), so a first LoRA estimate there is not a third too short.
    cpu = dict(batch_size=8, seq_len=128, causal_lm=True)
    assert estimate(QWEN_05B, lora_r=16, **cpu).flops_per_step == estimate(QWEN_05B, **cpu).flops_per_step
    assert Shape.from_config(QWEN_05B).lora_parameters(16) == pytest.approx(8.8e6, rel=0.05)


def test_largest_batch_fits():
    batch = largest_batch(QWEN_05B, memory_gib=40, seq_len=1024, causal_lm=True, half_precision=True, device="cuda")
    assert estimate(QWEN_05B, batch_size=batch, seq_len=1024, causal_lm=True, half_precision=True, device="cuda").total_gib <= 40
    assert estimate(QWEN_05B, batch_size=batch * 2, seq_len=1024, causal_lm=True, half_precision=True, device="cuda").total_gib > 40


def test_cpu_time_estimate_is_in_the_measured_range():
    # Measured on a 2-core CPU: about 0.5 s a step (batch 16, 64 tokens).
    est = estimate(MINILM, batch_size=16, seq_len=64, cpu_cores=2, steps=100)
    assert 0.2 < est.seconds_per_step < 1.5 and est.total_seconds == pytest.approx(100 * est.seconds_per_step)


def test_unknown_shape_gives_none():
    assert estimate({"model_type": "mystery"}, batch_size=1, seq_len=8) is None


SMOLLM2_135M = {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
                "num_key_value_heads": 3, "intermediate_size": 1536, "vocab_size": 49152, "hidden_act": "silu"}


@pytest.mark.parametrize("model, settings, measured_gib", [
    # Peaks above the worker's start (its ``memory`` event) measured with benchmarks/memory_profile.py
    # on a CPU, fp32, one thread: the SmolLM2 LoRA SFT job (r=16 on every linear layer) without and
    # with LoRA dropout (each adapter then keeps its own dropped copy of its input), and a full
    # fine-tune of MiniLM on the sentiment sample.
    (SMOLLM2_135M, dict(batch_size=8, seq_len=112, lora_r=16, causal_lm=True), 3.13),
    (SMOLLM2_135M, dict(batch_size=8, seq_len=112, lora_r=16, causal_lm=True, lora_dropout=0.05), 3.88),
    (MINILM, dict(batch_size=16, seq_len=49), 0.48),
    (MINILM, dict(batch_size=16, seq_len=49), 0.55),
    # LoRA keeps the heap's freed activation blocks that a full fine-tune's gradients refill.
    (MINILM, dict(batch_size=16, seq_len=49, lora_r=16), 0.50),
])
def test_cpu_memory_estimate_is_within_a_quarter_of_the_measured_peak(model, settings, measured_gib):
    assert 0.75 <= measured_gib / estimate(model, **settings).total_gib <= 1.25


def test_lora_dropout_copies_count_once_per_layer_with_checkpointing():
    plain = dict(batch_size=8, seq_len=112, lora_r=16, causal_lm=True)
    dropped = estimate(SMOLLM2_135M, lora_dropout=0.1, **plain).activations_gib - estimate(SMOLLM2_135M, **plain).activations_gib
    assert dropped * GIB == pytest.approx(8 * 112 * 30 * (6 * 576 + 1536) * 5)  # six hidden-wide inputs, one MLP-wide; fp32 + mask
    checkpointed = dict(plain, gradient_checkpointing=True)
    assert (estimate(SMOLLM2_135M, lora_dropout=0.1, **checkpointed).activations_gib
            - estimate(SMOLLM2_135M, **checkpointed).activations_gib) == pytest.approx(dropped / 30)
    assert estimate(SMOLLM2_135M, batch_size=8, seq_len=112, lora_dropout=0.1).activations_gib == \
        estimate(SMOLLM2_135M, batch_size=8, seq_len=112).activations_gib  # a full fine-tune has no adapters
