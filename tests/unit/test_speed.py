from studio.config import RunConfig
from studio.training.speed import Hardware, resolve, trainer_kwargs

CPU = Hardware(cuda=False, bf16=False, tf32=False, memory_gib=None, name="cpu")
AMX_CPU = Hardware(cuda=False, bf16=True, tf32=False, memory_gib=None, name="cpu")
H200 = Hardware(cuda=True, bf16=True, tf32=True, memory_gib=139.0, name="H200")


def fixed(gib):
    return lambda batch, seq_len, checkpointing=False: gib


def config(**training):
    return RunConfig.from_dict({"training": {"batch_size": 16, "max_length": 256, **training}})


def test_cpu_defaults():
    s = resolve(config(), CPU, [10, 80, 200, 15])
    assert (s.precision, s.tf32, s.dataloader_workers, s.group_by_length) == ("fp32", False, 0, True)


def test_gpu_uses_bf16_only_when_the_batch_is_large_enough():
    assert resolve(config(batch_size=128, batch_tokens=0), H200, [60] * 100, fixed(10.0)).precision == "bf16"
    # 8 x 60 tokens: launch-bound, bf16 would be slower than fp32
    assert resolve(config(batch_size=8, batch_tokens=0), H200, [60] * 100, fixed(10.0)).precision == "fp32"
    assert resolve(config(batch_size=8, batch_tokens=0, precision="bf16"), H200, [60] * 100, fixed(10.0)).precision == "bf16"


def test_a_cpu_with_bf16_units_uses_bf16_only_for_wide_models_and_big_steps():
    assert resolve(config(batch_size=16), AMX_CPU, [80] * 100, hidden_size=384).precision == "bf16"
    # a toy model (hidden 32), or 8 x 16 tokens a step: the casts cost more than the matmuls save
    assert resolve(config(batch_size=16), AMX_CPU, [80] * 100, hidden_size=32).precision == "fp32"
    assert resolve(config(batch_size=8), AMX_CPU, [16] * 100, hidden_size=384).precision == "fp32"
    assert resolve(config(batch_size=16), AMX_CPU, [80] * 100).precision == "fp32"  # width unknown
    # without the units bf16 is emulated and slow: never chosen, and an override falls back to fp32
    assert resolve(config(batch_size=16), CPU, [80] * 100, hidden_size=384).precision == "fp32"
    assert resolve(config(batch_size=16, precision="bf16"), CPU, [80] * 100).precision == "fp32"
    assert resolve(config(batch_size=8, precision="bf16"), AMX_CPU, [16] * 100).precision == "bf16"
    assert resolve(config(batch_size=16, precision="fp32"), AMX_CPU, [80] * 100, hidden_size=384).precision == "fp32"


def test_length_grouping_follows_the_spread_of_lengths_unless_set():
    assert resolve(config(), CPU, [64] * 50).group_by_length is False
    assert resolve(config(group_by_length=True), CPU, [64] * 50).group_by_length is True


def test_checkpointing_only_when_the_estimate_does_not_fit():
    assert resolve(config(), H200, [100], fixed(50.0)).gradient_checkpointing is False
    assert resolve(config(), H200, [100], fixed(200.0)).gradient_checkpointing is True
    assert resolve(config(gradient_checkpointing=False), H200, [100], fixed(200.0)).gradient_checkpointing is False


def test_trainer_kwargs_use_the_names_the_release_knows():
    s = resolve(config(batch_tokens=0), H200, [10, 300], fixed(10.0))
    new = trainer_kwargs(s, {"train_sampling_strategy", "bf16", "fp16", "optim", "tf32"})
    assert new["train_sampling_strategy"] == "group_by_length" and new["tf32"] is True and new["optim"] == "adamw_torch_fused"
    old = trainer_kwargs(s, {"group_by_length", "bf16"})
    assert old == {"group_by_length": True, "bf16": False}
    renamed = trainer_kwargs(s, {"gradient_checkpointing", "activation_checkpointing"})
    assert renamed == {"activation_checkpointing": False}
    assert trainer_kwargs(s, {"gradient_checkpointing"}) == {"gradient_checkpointing": False}


def test_gpu_batch_grows_to_a_token_budget_that_fits():
    lengths = [60] * 10_000
    s = resolve(config(batch_size=16, epochs=3), H200, lengths, fixed(10.0), n_train=len(lengths))
    assert s.batch_size == 128 and s.precision == "bf16"  # 16k-token budget, capped at 128 examples
    # the estimate says no bigger batch fits: keep the preset's batch
    assert resolve(config(batch_size=16), H200, lengths, fixed(120.0), n_train=len(lengths)).batch_size == 16
    # an explicit budget is taken as given; 0 keeps batch_size
    assert resolve(config(batch_size=16, batch_tokens=3000), H200, lengths, fixed(10.0), n_train=len(lengths)).batch_size == 50
    assert resolve(config(batch_size=16, batch_tokens=0), H200, lengths, fixed(10.0), n_train=len(lengths)).batch_size == 16
    # never on a CPU
    assert resolve(config(batch_size=16), CPU, lengths, fixed(1.0), n_train=len(lengths)).batch_size == 16


def test_small_datasets_keep_enough_optimizer_steps():
    lengths = [60] * 2000
    s = resolve(config(batch_size=16, epochs=3), H200, lengths, fixed(10.0), n_train=len(lengths))
    assert s.batch_size == 60  # 2000 x 3 epochs / 100 steps
    assert resolve(config(batch_size=16, epochs=1), H200, [60] * 500, fixed(10.0), n_train=500).batch_size == 16


def test_the_budget_counts_the_longest_example_when_batches_are_padded():
    seen = []

    def estimator(batch, seq_len, checkpointing=False):
        seen.append((batch, seq_len))
        return 10.0

    resolve(config(batch_size=8, max_steps=10), H200, [100] * 99 + [1000], estimator)
    assert all(seq == 1000 for _, seq in seen)


def test_packing_only_for_causal_lms_with_an_attention_that_keeps_examples_apart(monkeypatch):
    from studio.training import speed

    monkeypatch.setattr(speed, "packing_attention", lambda cuda: "flex_attention" if cuda else None)
    s = resolve(config(max_steps=10), H200, [30, 900, 300], fixed(10.0), causal_lm=True)
    assert (s.packing, s.attention, s.group_by_length) == (True, "flex_attention", False)
    assert resolve(config(), H200, [30, 900], fixed(10.0), causal_lm=False).packing is False
    assert resolve(config(), CPU, [30, 900], causal_lm=True).packing is False
    forced = resolve(config(packing=True), CPU, [30, 900], causal_lm=True)
    assert (forced.packing, forced.attention) == (True, "sdpa")  # correct, with a dense mask
    assert resolve(config(packing=False), H200, [30, 900], fixed(10.0), causal_lm=True).packing is False
    monkeypatch.setattr(speed, "packing_attention", lambda cuda: None)
    assert resolve(config(), H200, [30, 900], fixed(10.0), causal_lm=True).packing is False


def test_packed_collator_keeps_examples_apart():
    from studio.training.speed import PackedCausalCollator

    batch = PackedCausalCollator(pad_token_id=0, multiple=8)([
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
        {"input_ids": [8, 9], "labels": [8, 9]},
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2]]
    # the first token of each example is never a target (it would be predicted from the previous example)
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9, -100, -100, -100]]
    assert "attention_mask" not in batch


def test_packed_loss_equals_the_padded_loss():
    """Same maths: a packed row gives the loss of the same examples padded into a batch."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from studio.tasks.generation.chat import CausalCollator
    from studio.training.speed import PackedCausalCollator

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, use_cache=False), attn_implementation="sdpa")
    features = []
    for n in (5, 17, 9, 30):
        ids = torch.randint(3, 300, (n,)).tolist()
        features.append({"input_ids": ids, "labels": [-100] * 2 + ids[2:]})
    with torch.no_grad():
        padded = model(**CausalCollator(pad_token_id=0)(features)).loss
        packed = model(**PackedCausalCollator(pad_token_id=0)(features)).loss
    assert abs(padded.item() - packed.item()) < 1e-5


def test_the_estimate_of_a_checkpointed_run_counts_the_checkpointing():
    def estimator(batch, seq_len, checkpointing=False):
        return 60.0 if checkpointing else 130.0  # 130 > 0.9 x 139: too close without checkpointing

    s = resolve(config(batch_size=8, max_steps=10, batch_tokens=0), H200, [200] * 50, estimator)
    assert s.gradient_checkpointing is True
    assert (s.estimated_peak_gib, s.device_memory_gib) == (60.0, 139.0)
    kept = resolve(config(batch_size=8, max_steps=10, batch_tokens=0, gradient_checkpointing=False), H200, [200] * 50, estimator)
    assert (kept.gradient_checkpointing, kept.estimated_peak_gib) == (False, 130.0)
    assert resolve(config(), CPU, [10, 20]).device_memory_gib is None


def test_the_summary_names_the_choices_a_reader_cares_about():
    from studio.training.speed import describe, memory_gap

    gpu = resolve(config(max_steps=10, packing=True, attention="flex_attention"), H200, [300] * 500, fixed(10.0), causal_lm=True)
    text = describe(gpu.to_dict())
    assert text.startswith("bf16 · batch ")
    assert "packed rows (flex_attention)" in text and "TF32" in text and "4 loader workers" in text
    assert "length-grouped" not in text  # packed rows have no padding to group away
    cpu = describe(resolve(config(), CPU, [10, 80, 200, 15]).to_dict())
    assert cpu == "fp32 · batch 16 · length-grouped batches · adamw_torch_fused"
    assert round(memory_gap(10.0, 11.5), 3) == 0.15 and memory_gap(None, 1.0) is None
    assert memory_gap(0.001, 0.06) is None  # a tiny model: the runtime's fixed costs, not the estimate's error


def test_the_worker_warns_before_loading_a_model_whose_estimate_passes_the_gpus_memory():
    from types import SimpleNamespace

    from studio.training.worker import _warn_if_too_big

    said = []
    log = SimpleNamespace(write=lambda event: said.append((event.kind, getattr(event, "message", ""))))
    _warn_if_too_big(SimpleNamespace(device_memory_gib=80.0, estimated_peak_gib=79.0), log)
    _warn_if_too_big(SimpleNamespace(device_memory_gib=None, estimated_peak_gib=500.0), log)  # a CPU: RAM is not checked here
    assert said == []
    _warn_if_too_big(SimpleNamespace(device_memory_gib=80.0, estimated_peak_gib=96.5), log)
    assert said[0][0] == "log" and "estimated to need 96.5 GiB, more than the GPU's 80.0 GiB" in said[0][1]


def test_the_trainer_takes_bf16_on_a_cpu(tmp_path):
    from studio.training.worker import training_arguments

    settings = resolve(config(batch_size=16), AMX_CPU, [80] * 100, hidden_size=384)
    args, _ = training_arguments(config(batch_size=16, max_steps=10), tmp_path, 100, False, "loss", False, settings)
    assert args.bf16 and args.use_cpu and args.device.type == "cpu"


def test_an_evaluation_takes_more_rows_at_once_except_under_a_language_model_head(tmp_path):
    from studio.config import RunConfig
    from studio.training.worker import training_arguments

    classifier, _ = training_arguments(config(batch_size=8, max_steps=10), tmp_path, 100, True, "loss", False)
    assert classifier.per_device_eval_batch_size == 32
    generation = RunConfig.from_dict({"task": {"name": "generation"}, "data": {"train": "x.jsonl"},
                                      "training": {"batch_size": 8, "max_steps": 10}})
    lm, _ = training_arguments(generation, tmp_path, 100, True, "loss", False)
    assert lm.per_device_eval_batch_size == 8  # vocabulary-sized logits a row: not the run's memory peak
