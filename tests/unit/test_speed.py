from studio.config import RunConfig
from studio.training.speed import Hardware, resolve, trainer_kwargs

CPU = Hardware(cuda=False, bf16=False, tf32=False, memory_gib=None, name="cpu")
H200 = Hardware(cuda=True, bf16=True, tf32=True, memory_gib=139.0, name="H200")


def config(**training):
    return RunConfig.from_dict({"training": {"batch_size": 16, "max_length": 256, **training}})


def test_cpu_defaults():
    s = resolve(config(), CPU, [10, 80, 200, 15], None)
    assert (s.precision, s.tf32, s.dataloader_workers, s.group_by_length) == ("fp32", False, 0, True)


def test_gpu_uses_bf16_only_when_the_batch_is_large_enough():
    assert resolve(config(batch_size=128), H200, [60] * 100, 10.0).precision == "bf16"
    # 8 x 60 tokens: launch-bound, bf16 would be slower than fp32
    assert resolve(config(batch_size=8), H200, [60] * 100, 10.0).precision == "fp32"
    assert resolve(config(batch_size=8, precision="bf16"), H200, [60] * 100, 10.0).precision == "bf16"


def test_length_grouping_follows_the_spread_of_lengths_unless_set():
    assert resolve(config(), CPU, [64] * 50, None).group_by_length is False
    assert resolve(config(group_by_length=True), CPU, [64] * 50, None).group_by_length is True


def test_checkpointing_only_when_the_estimate_does_not_fit():
    assert resolve(config(), H200, [100], 50.0).gradient_checkpointing is False
    assert resolve(config(), H200, [100], 200.0).gradient_checkpointing is True
    assert resolve(config(gradient_checkpointing=False), H200, [100], 200.0).gradient_checkpointing is False


def test_trainer_kwargs_use_the_names_the_release_knows():
    s = resolve(config(), H200, [10, 300], 10.0)
    new = trainer_kwargs(s, {"train_sampling_strategy", "bf16", "fp16", "optim", "tf32"})
    assert new["train_sampling_strategy"] == "group_by_length" and new["tf32"] is True and new["optim"] == "adamw_torch_fused"
    old = trainer_kwargs(s, {"group_by_length", "bf16"})
    assert old == {"group_by_length": True, "bf16": False}
