"""Text budgets in model tokens: keep the first N tokens of a text, or of all the text parts of an item.

Media parts are never cut: only text is truncated (a rerank document's `max_tokens_per_doc`, an embed
input's `max_tokens`). The tokenizer is the model's fast tokenizer (`text_tokenizer`, a
`tokenizers.Tokenizer`); the cut falls at a token boundary of the original text, so what is kept is
exactly the text of those tokens. Pure functions.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .inputs import Item, TextPart


def first_tokens(text: str, tokenizer: Any, max_tokens: int) -> tuple[str, int]:
    """(the text of the first `max_tokens` tokens of `text`, the tokens kept)."""
    if max_tokens <= 0 or not text:
        return "", 0
    encoding = tokenizer.encode(text, add_special_tokens=False)
    offsets = encoding.offsets
    if len(offsets) <= max_tokens:
        return text, len(offsets)
    return text[:offsets[max_tokens - 1][1]], max_tokens


def truncate_item(item: Item, tokenizer: Any, max_tokens: int) -> Item:
    """`item` with its text parts cut so that together they hold at most `max_tokens` tokens (first ones
    first); images and videos kept, parts kept in order (a text part left empty stays, empty)."""
    left, parts = max_tokens, []
    for part in item.parts:
        if isinstance(part, TextPart):
            text, used = first_tokens(part.text, tokenizer, left)
            left -= used
            part = dataclasses.replace(part, text=text)
        parts.append(part)
    return dataclasses.replace(item, parts=tuple(parts))
