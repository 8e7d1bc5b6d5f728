"""Packing on a GPU with the attention kernel the worker picks there (flash varlen or flex).

Skipped without CUDA; the CPU suite checks the same maths with sdpa (tests/unit/test_speed.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_packed_loss_and_gradients_match_the_padded_batch():
    from transformers import AutoModelForCausalLM, LlamaConfig

    from studio.tasks.generation.chat import CausalCollator
    from studio.training.speed import PackedCausalCollator, packing_attention

    attention = packing_attention(cuda=True)
    assert attention in ("flash_attention_2", "flex_attention")
    config = LlamaConfig(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=1024, use_cache=False)
    torch.manual_seed(0)
    padded_model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").cuda()
    packed_model = AutoModelForCausalLM.from_config(config, attn_implementation=attention).cuda()
    packed_model.load_state_dict(padded_model.state_dict())
    features = []
    for n in (5, 130, 17, 300, 64):
        ids = torch.randint(3, 512, (n,)).tolist()
        features.append({"input_ids": ids, "labels": [-100] * 2 + ids[2:]})
    losses, grads = [], []
    for model, collate in ((padded_model, CausalCollator(0)), (packed_model, PackedCausalCollator(0))):
        batch = {k: v.cuda() for k, v in collate(features).items()}
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        losses.append(loss.item())
        grads.append(model.model.layers[0].self_attn.q_proj.weight.grad.float())
    assert losses[1] == pytest.approx(losses[0], rel=2e-3)
    assert torch.nn.functional.cosine_similarity(grads[0].flatten(), grads[1].flatten(), dim=0) > 0.99
