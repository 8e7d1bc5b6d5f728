"""Memory and time estimates before launch, from a backbone's config.json alone (no torch).

Memory follows the usual accounting for mixed-precision training with AdamW: fp32 master
weights (4 bytes a parameter), gradients and two Adam moments for the trainable parameters
(4 + 8 bytes), and activations per token and layer after Korthikanti et al. (2022), with the
attention-score term dropped because SDPA/flash attention never materialise it (a CPU's
attention does, and its allocator keeps more than the live tensors: ``cpu_allocator_bytes``). Time is
6 FLOPs per non-embedding parameter and token (4 with LoRA on a GPU: no weight gradients; see
``train_flops_per_parameter`` for a CPU) over an assumed sustained rate for the device. Both are estimates; the worker records the measured peak
beside them so the gap is visible. On an H200 (benchmarks/gpu_speed.py) the memory estimate was
within 15% of the allocator's measured peak for Qwen2.5-0.5B/1.5B-shaped full and LoRA runs and
a BERT-base classifier (the CUDA context and allocator caching come on top of that peak).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

GIB = 1024**3

# Sustained training throughput assumed per device kind, in FLOP/s (a fraction of the peak).
ASSUMED_FLOPS = {"cpu_core": 50e9, "cuda": 989e12 * 0.30}
CUDA_CONTEXT_BYTES = 0.6 * GIB
LOGIT_BYTES = 16
NF4_OVERHEAD_BITS = 0.127  # QLoRA paper: 8-bit block constants per 64 weights, fp32 ones per 256 blocks
ATTENTION_SCORE_BYTES = 5  # per entry of one head's seq_len x seq_len scores at 16-bit (scores, softmax, dropout mask)
# On a CPU the process's peak counts more than live tensors (see ``cpu_allocator_bytes``).
CPU_RUNTIME_BYTES = 0.075 * GIB
HEAP_RETAINED_SHARE = 0.4
GLIBC_MMAP_CEILING = 32 * 1024**2  # glibc's largest dynamic mmap threshold on 64-bit: bigger blocks go back at once


def train_flops_per_parameter(lora: bool, device: str) -> int:
    """FLOPs a non-embedding parameter and token of a training step: 2 forward, 2 for the
    activations' gradients, 2 for the weights' gradients, which LoRA skips. On a CPU a LoRA step
    costs as much as a full one all the same: each adapted layer's dropout and two thin matmuls
    are memory-bound work that the FLOP count misses (measured on 2 cores: a MiniLM LoRA step
    took 1.05-1.1x the CPU time of a full one), so it is counted as a full step there."""
    return 4 if lora and device == "cuda" else 6


def memory_text(gib: float) -> str:
    """A memory size for people: '67.4 GB', '512 MB' (binary units, as allocators count)."""
    return f"{gib:.1f} GB" if gib >= 1 else f"{max(1, round(gib * 1024))} MB"


@dataclass
class Shape:
    hidden: int
    layers: int
    vocab: int
    intermediate: int
    heads: int
    kv_heads: int
    gated_mlp: bool
    decoder_layers: int = 0

    @classmethod
    def from_config(cls, config: dict) -> "Shape | None":
        def get(*keys, default=None):
            return next((config[k] for k in keys if isinstance(config.get(k), int)), default)

        hidden = get("hidden_size", "d_model", "n_embd", "dim")
        layers = get("num_hidden_layers", "num_layers", "n_layer", "n_layers", "encoder_layers")
        vocab = get("vocab_size")
        if not (hidden and layers and vocab):
            return None
        heads = get("num_attention_heads", "num_heads", "n_head", "encoder_attention_heads", default=max(1, hidden // 64))
        model_type = str(config.get("model_type", ""))
        return cls(
            hidden=hidden, layers=layers, vocab=vocab,
            intermediate=get("intermediate_size", "d_ff", "n_inner", "ffn_dim", "encoder_ffn_dim", default=4 * hidden),
            heads=heads, kv_heads=get("num_key_value_heads", default=heads),
            gated_mlp=config.get("hidden_act") == "silu" or model_type in ("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "t5"),
            decoder_layers=get("num_decoder_layers", "decoder_layers", default=0) if config.get("is_encoder_decoder") else 0,
        )

    @property
    def layer_parameters(self) -> int:
        head_dim = self.hidden // self.heads
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * self.kv_heads * head_dim
        mlp = (3 if self.gated_mlp else 2) * self.hidden * self.intermediate
        return attention + mlp

    @property
    def body_parameters(self) -> int:
        """Parameters that cost FLOPs (everything but the embedding lookup)."""
        return (self.layers + 2 * self.decoder_layers) * self.layer_parameters

    def lora_parameters(self, r: int) -> int:
        """LoRA on every linear layer of every block (peft's 'all-linear')."""
        head_dim = self.hidden // self.heads
        kv = self.kv_heads * head_dim
        linear = [(self.hidden, self.hidden)] * 2 + [(self.hidden, kv)] * 2
        linear += [(self.hidden, self.intermediate)] * (2 if self.gated_mlp else 1) + [(self.intermediate, self.hidden)]
        per_layer = sum(r * (a + b) for a, b in linear)
        return (self.layers + 2 * self.decoder_layers) * per_layer

    def lora_dropout_bytes(self, act_bytes: int) -> int:
        """Bytes a token and layer that LoRA dropout keeps for backward: each adapted layer drops
        its own copy of its input (q, k, v share an input, yet each keeps a copy) and keeps the
        mask (a byte an entry). Without dropout every adapter reads the shared input: nothing.
        Measured on SmolLM2-135M (batch 8 x 112 tokens, fp32): 0.74 GiB of a 3.9 GiB peak."""
        inputs = (4 + (2 if self.gated_mlp else 1)) * self.hidden + self.intermediate
        return inputs * (act_bytes + 1)


def cpu_allocator_bytes(heap_activations: float, tensor_bytes: float, refilled: float, allocator: str = "glibc") -> float:
    """What a CPU run's resident peak holds beyond its live tensors: the runtime's own buffers
    (autograd engine, oneDNN scratch, thread pools; a 1-layer, 32-wide encoder's run peaks 0.09 GiB
    above its start) and the freed activation blocks glibc's heap keeps mapped between steps.
    Blocks under glibc's mmap ceiling come from the heap, which fragments; the whole model's
    gradients and Adam moments, allocated as activations are freed, fill those holes, so the
    retention shows when few parameters train (LoRA). Measured with benchmarks/memory_profile.py
    (fp32, one thread): a MiniLM LoRA step peaked 0.50 GiB above its start, 0.39 with a fixed 1 MiB
    mmap threshold, against 0.28 GiB of tensors; a full one 0.55 against 0.53; SmolLM2 LoRA held
    about 0.7 GiB more than with the fixed threshold. Four tenths of the heap's activations fits all.
    jemalloc (``studio.allocator``, preloaded into CPU workers where the system has it) keeps
    none of that: its size classes reuse the freed blocks."""
    heap_kept = allocator == "glibc" and tensor_bytes < GLIBC_MMAP_CEILING
    retained = HEAP_RETAINED_SHARE * heap_activations if heap_kept else 0.0
    return CPU_RUNTIME_BYTES + max(0.0, retained - refilled)


@dataclass
class Estimate:
    parameters: int
    trainable: int
    weights_gib: float
    gradients_gib: float
    optimizer_gib: float
    activations_gib: float
    allocator_gib: float
    total_gib: float
    tokens_per_step: int
    flops_per_step: float
    seconds_per_step: float | None
    total_seconds: float | None

    def to_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def estimate(
    config: dict,
    *,
    batch_size: int,
    seq_len: int,
    lora_r: int | None = None,
    half_precision: bool = False,
    gradient_checkpointing: bool = False,
    causal_lm: bool = False,
    device: str = "cpu",
    cpu_cores: int = 1,
    steps: int | None = None,
    parameters: int | None = None,
    weight_bits: int | None = None,
    lora_dropout: float = 0.0,
    allocator: str = "glibc",
) -> Estimate | None:
    """Estimate peak training memory and step time; None when the config has no usable shape.
    ``weight_bits=4``: QLoRA's frozen base in NF4 (with ``lora_r``); ``allocator``: a CPU run's
    malloc, 'glibc' or 'jemalloc' (``cpu_allocator_bytes``)."""
    shape = Shape.from_config(config)
    if shape is None:
        return None
    total_params = parameters or (shape.vocab * shape.hidden + shape.body_parameters)
    trainable = shape.lora_parameters(lora_r) if lora_r else total_params
    act_bytes = 2 if half_precision else 4
    tokens = batch_size * seq_len
    layers = shape.layers + 2 * shape.decoder_layers

    # Full-precision master weights; with LoRA a half-precision copy of the frozen base is enough.
    weights = total_params * (2 if (lora_r and half_precision) else 4)
    if weight_bits == 4 and lora_r:
        # NF4: half a byte a weight, plus the quantisation constants (one fp32 scale per block of 64,
        # themselves quantised to 8 bits by double quantisation: ~0.13 bits a weight). The
        # embeddings and the output layer stay in 16-bit.
        embeddings = shape.vocab * shape.hidden
        body = max(0, total_params - embeddings)
        weights = body * (4 + NF4_OVERHEAD_BITS) / 8 + embeddings * 2
    gradients = trainable * 4
    optimizer = trainable * 8
    # Activations kept for backward: ~17 hidden-sized tensors a token and layer (34 bytes at 16-bit)
    # plus the MLP's wider intermediate; checkpointing keeps one layer input instead.
    per_token_layer = act_bytes * (17 * shape.hidden + 2 * shape.intermediate)
    if gradient_checkpointing:
        activations = tokens * (layers * act_bytes * shape.hidden + per_token_layer)
    else:
        activations = tokens * layers * per_token_layer
    if lora_r and lora_dropout > 0:
        # Checkpointing recomputes them in backward, a layer at a time.
        activations += tokens * (1 if gradient_checkpointing else layers) * shape.lora_dropout_bytes(act_bytes)
    if device != "cuda":
        # On a CPU attention materialises its scores, softmax and dropout mask for backward
        # (about 5 bytes an entry at 16-bit, per head and layer: seq_len squared), where a GPU's
        # fused kernels keep none: the term that dominates long texts there.
        activations += layers * batch_size * shape.heads * seq_len**2 * ATTENTION_SCORE_BYTES * act_bytes / 2
    allocator_bytes = 0.0
    if device != "cuda":
        # The per-layer activations come from the heap; the logits below are too large for it.
        allocator_bytes = cpu_allocator_bytes(activations, tokens * shape.hidden * act_bytes, gradients + optimizer, allocator)
    if causal_lm:
        # The logits of every token dominate for large vocabularies: the model's output (2 bytes
        # at 16-bit), the loss's fp32 upcast and log-softmax (4 + 4), then two fp32 gradients in
        # the backward pass: about 16 bytes a token and vocabulary entry at the peak.
        activations += tokens * shape.vocab * LOGIT_BYTES
    total = weights + gradients + optimizer + activations + allocator_bytes
    if device == "cuda":
        total += CUDA_CONTEXT_BYTES

    flops = train_flops_per_parameter(bool(lora_r), device) * shape.body_parameters * tokens
    if causal_lm:
        flops += 6 * shape.vocab * shape.hidden * tokens
    rate = ASSUMED_FLOPS["cuda"] if device == "cuda" else ASSUMED_FLOPS["cpu_core"] * max(1, cpu_cores)
    seconds = flops / rate
    return Estimate(
        parameters=total_params, trainable=trainable,
        weights_gib=weights / GIB, gradients_gib=gradients / GIB, optimizer_gib=optimizer / GIB,
        activations_gib=activations / GIB, allocator_gib=allocator_bytes / GIB, total_gib=total / GIB,
        tokens_per_step=tokens, flops_per_step=flops, seconds_per_step=seconds,
        total_seconds=seconds * steps if steps else None,
    )


def largest_batch(config: dict, *, memory_gib: float, seq_len: int, start: int = 512, **kwargs) -> int:
    """The largest power-of-two batch (>= 1) whose estimate fits in ``memory_gib``."""
    batch = start
    while batch > 1:
        est = estimate(config, batch_size=batch, seq_len=seq_len, **kwargs)
        if est is None or est.total_gib <= memory_gib:
            return batch
        batch //= 2
    return 1
