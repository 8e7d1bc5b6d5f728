"""Words as sub-tokens, and sentences longer than ``max_length`` cut into overlapping windows.

Each word is encoded on its own, after a space (as it appears in running text); only the first
sub-token of a word carries the label, the others and the special tokens are ignored by the loss.
A sentence longer than ``max_length`` sub-tokens is cut into overlapping windows of whole words,
never truncated: each word is labeled (and predicted) in exactly one window, the one where it has
the most context on both sides, so the windows' predictions join back into one tag per word.
"""

from __future__ import annotations

from typing import Any

from studio.errors import DataError


def special_layout(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one sequence ([CLS] … [SEP])."""
    full = list(tokenizer("a")["input_ids"])
    bare = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return full[:i], full[i + len(bare) :]
    return [], []


def word_pieces(tokenizer, sentences: list[list[str]], chunk: int = 20_000) -> list[list[list[int]]]:
    """Sub-token ids of every word, encoded one word at a time after a space (as it appears in
    running text); a word the tokenizer drops entirely becomes the unknown token."""
    flat = [" " + str(w) for words in sentences for w in words]
    ids: list[list[int]] = []
    for start in range(0, len(flat), chunk):
        part = flat[start : start + chunk]
        if part:
            ids.extend(tokenizer(part, add_special_tokens=False)["input_ids"])
    fallback = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else (tokenizer.pad_token_id or 0)
    out: list[list[list[int]]] = []
    position = 0
    for words in sentences:
        out.append([list(ids[position + i]) or [fallback] for i in range(len(words))])
        position += len(words)
    return out


def make_windows(lengths: list[int], budget: int, context: int | None = None) -> list[tuple[int, int]]:
    """Cut a sentence (sub-token counts per word, each <= budget) into windows of whole words of
    at most ``budget`` sub-tokens; consecutive windows share up to ``context`` sub-tokens."""
    n = len(lengths)
    if n == 0:
        return [(0, 0)]
    context = budget // 4 if context is None else context
    windows = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and used + lengths[end] <= budget:
            used += lengths[end]
            end += 1
        windows.append((start, end))
        if end >= n:
            return windows
        nxt, back = end, 0
        while nxt - 1 > start and back + lengths[nxt - 1] <= context:
            nxt -= 1
            back += lengths[nxt]
        start = nxt


def owners(windows: list[tuple[int, int]], n: int) -> list[int]:
    """For each word, the window where it is farthest from an edge (most context both sides)."""
    best = [-1] * n
    margin = [-1] * n
    for index, (start, end) in enumerate(windows):
        for i in range(start, end):
            m = min(i - start, end - 1 - i)
            if m > margin[i]:
                best[i], margin[i] = index, m
    return best


def encode_sentences(tokenizer, sentences: list[list[str]], max_length: int) -> list[dict[str, Any]]:
    """Model inputs for sentences of words: one entry per window with ``input_ids``, the sentence
    index ``row``, the word range ``words`` and ``positions``: for each word of the window, the
    position of its first sub-token, or -1 when another window owns the word."""
    prefix, suffix = special_layout(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    if budget < 1:
        raise DataError(f"training.max_length {max_length} leaves no room for words after the model's special tokens")
    pieces = word_pieces(tokenizer, sentences)
    encoded: list[dict[str, Any]] = []
    for row, words in enumerate(pieces):
        words = [p[:budget] for p in words]  # one absurdly long "word" (a URL) keeps its first pieces
        windows = make_windows([len(p) for p in words], budget)
        owner = owners(windows, len(words))
        for index, (start, end) in enumerate(windows):
            ids = list(prefix)
            positions = []
            for i in range(start, end):
                positions.append(len(ids) if owner[i] == index else -1)
                ids.extend(words[i])
            ids.extend(suffix)
            encoded.append({"row": row, "words": (start, end), "positions": positions, "input_ids": ids})
    return encoded


def features(tokenizer, window: dict[str, Any]) -> dict[str, list[int]]:
    ids = window["input_ids"]
    features = {"input_ids": ids, "attention_mask": [1] * len(ids)}
    if "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
        features["token_type_ids"] = [0] * len(ids)
    return features
