"""Per-pair scores of a tuned model against its starting model: log-likelihoods of the chosen and
the rejected answer, the implicit rewards TRL trains on, and whether the chosen answer wins.

* DPO's reward of an answer is ``beta * (log p_tuned(answer) - log p_start(answer))`` (summed over
  the answer's tokens); ORPO's is ``beta * mean log p_tuned(answer)`` (per token, no reference),
  as TRL defines them for its logged ``rewards/*``.
* The preference accuracy of a model is the share of pairs whose chosen answer it finds more
  likely per token than the rejected one: measured for the starting and the tuned model alike,
  it shows what tuning changed (a DPO reward is 0 for every answer before training).
"""

from __future__ import annotations

import contextlib
from typing import Any

ANSWER_BATCH = 8


def answer_ids(tokenizer, prompt: list[dict[str, str]], answer: str) -> tuple[list[int], list[int]]:
    """(prompt tokens with the generation prompt, answer tokens) as the chat template writes them."""
    before = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": answer}], tokenize=False)
    prompt_ids = tokenizer(before, add_special_tokens=False)["input_ids"]
    whole_ids = tokenizer(whole, add_special_tokens=False)["input_ids"]
    return prompt_ids, whole_ids[len(prompt_ids):]


def answer_logps(model, tokenizer, prompts: list[list[dict[str, str]]], answers: list[str],
                 max_length: int) -> list[tuple[float, int]]:
    """(summed log-probability, token count) of each answer after its prompt; a prompt too long
    for ``max_length`` loses its start, an answer too long its end."""
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[tuple[float, int]] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(prompts), ANSWER_BATCH):
            rows = []
            for prompt, answer in zip(prompts[start:start + ANSWER_BATCH], answers[start:start + ANSWER_BATCH]):
                p, a = answer_ids(tokenizer, prompt, answer)
                a = a[: max(1, max_length // 2)] if len(p) + len(a) > max_length else a
                p = p[-max(1, max_length - len(a)):]
                rows.append((p + a, len(p)))
            width = max(len(ids) for ids, _ in rows)
            ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in rows], device=device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in rows], device=device)
            with torch.inference_mode():
                logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logps = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            for b, (x, p_len) in enumerate(rows):
                token_logps = logps[b, p_len - 1: len(x) - 1]
                out.append((float(token_logps.sum()), int(token_logps.numel())))
    finally:
        model.train(was_training)
    return out


@contextlib.contextmanager
def starting_model(model, reference) -> Any:
    """The model before tuning: ``reference`` when there is one, else ``model`` with its LoRA
    adapter switched off; None when neither exists (a full model without its copy)."""
    if reference is not None:
        yield reference
    elif hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            yield model
    else:
        yield None


def pair_scores(tuned: list[tuple[float, int]], start: list[tuple[float, int]] | None, objective: str,
                beta: float) -> list[dict[str, Any]]:
    """One dict per pair from the log-likelihoods of [chosen..., rejected...] under both models."""
    n = len(tuned) // 2
    rows = []
    for i in range(n):
        (c, c_len), (r, r_len) = tuned[i], tuned[n + i]
        row: dict[str, Any] = {"prefers_chosen": c / max(c_len, 1) > r / max(r_len, 1)}
        if start is not None:
            (sc, sc_len), (sr, sr_len) = start[i], start[n + i]
            row["base_prefers_chosen"] = sc / max(sc_len, 1) > sr / max(sr_len, 1)
        if objective == "orpo":
            chosen, rejected = beta * c / max(c_len, 1), beta * r / max(r_len, 1)
        elif start is not None:
            chosen, rejected = beta * (c - start[i][0]), beta * (r - start[n + i][0])
        else:
            rows.append(row)
            continue
        row.update(reward_chosen=round(chosen, 4), reward_rejected=round(rejected, 4),
                   reward_margin=round(chosen - rejected, 4), correct=chosen > rejected)
        rows.append(row)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Means over the pairs: reward accuracy and margin, preference accuracy tuned and at the start."""
    def mean(key: str) -> float | None:
        values = [float(r[key]) for r in rows if key in r]
        return round(sum(values) / len(values), 4) if values else None

    found = {"reward_accuracy": mean("correct"), "reward_margin": mean("reward_margin"),
             "reward_chosen": mean("reward_chosen"), "reward_rejected": mean("reward_rejected"),
             "preference_accuracy": mean("prefers_chosen"), "preference_accuracy_base": mean("base_prefers_chosen")}
    return {k: v for k, v in found.items() if v is not None}
