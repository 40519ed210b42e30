"""Items -> prompts: the embedding and reranking conversations of the official release.

A `Prompt` is a sequence of pieces: `Fixed` template text (never truncated), the user's
`TextPart`s (truncated from the end when a prompt is too long), and `ImagePart` / `VideoPart`
placeholders. Rendered, it equals the model's chat template applied to the reference's
conversation with ``add_generation_prompt=True`` (the tests check this against the template):

    <|im_start|>system\\n{instruction}<|im_end|>\\n<|im_start|>user\\n{parts}<|im_end|>\\n<|im_start|>assistant\\n
"""
from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass
from typing import Union

from .constants import (EMBED_INSTRUCTION, EMPTY_TEXT, IM_END, IM_START, RERANK_INSTRUCTION, RERANK_SYSTEM)
from .inputs import ImagePart, Item, Part, TextPart, VideoPart


@dataclass(frozen=True)
class Fixed:
    """Template text: kept whole whatever the length limit."""

    text: str


Piece = Union[Fixed, TextPart, ImagePart, VideoPart]
Prompt = tuple[Piece, ...]


def embedding_instruction(instruction: str | None, default: str = EMBED_INSTRUCTION) -> str:
    """The reference's rule: strip, and end with a '.' unless the last character is punctuation."""
    if instruction:
        instruction = instruction.strip()
        if instruction and not unicodedata.category(instruction[-1]).startswith("P"):
            instruction += "."
    return instruction or default


def user_parts(item: Item, fps: float | None, max_frames: int | None, frames_cap: int | None,
               field_prefix: str | None = None) -> list[Part]:
    """The item's parts with video settings filled in; an empty item is the text NULL.

    Video files take `fps`/`max_frames`; frame lists are capped by `frames_cap` (the reference
    caps them with the model's own max_frames, whatever the call asks)."""
    if not item.parts:
        return [TextPart(EMPTY_TEXT, "text")]
    out: list[Part] = []
    for p in item.parts:
        if isinstance(p, VideoPart):
            cap = frames_cap if p.is_frames else max_frames
            p = dataclasses.replace(p, fps=p.fps or fps, max_frames=p.max_frames or cap)
        if field_prefix:
            p = dataclasses.replace(p, field=f"{field_prefix}.{p.field}")
        out.append(p)
    return out


def embedding_prompt(item: Item, default_instruction: str = EMBED_INSTRUCTION,
                     fps: float | None = None, max_frames: int | None = None) -> Prompt:
    """The embedding conversation of one item; `fps`/`max_frames` fill video parts that set none."""
    instruction = embedding_instruction(item.instruction, default_instruction)
    return (
        Fixed(f"{IM_START}system\n{instruction}{IM_END}\n{IM_START}user\n"),
        *user_parts(item, fps, max_frames, max_frames),
        Fixed(f"{IM_END}\n{IM_START}assistant\n"),
    )


def reranking_prompt(query: Item, document: Item, instruction: str | None = None,
                     fps: float | None = None, max_frames: int | None = None,
                     frames_cap: int | None = None) -> Prompt:
    """The yes/no judgement conversation of one (query, document) pair."""
    frames_cap = max_frames if frames_cap is None else frames_cap
    return pair_prompt(user_parts(query, fps, max_frames, frames_cap),
                       user_parts(document, fps, max_frames, frames_cap), instruction)


def pair_prompt(query_parts: list[Part], document_parts: list[Part], instruction: str | None = None) -> Prompt:
    """The judgement conversation from already expanded parts (lets a query's parts be shared by many pairs)."""
    instruction = instruction or RERANK_INSTRUCTION
    return (
        Fixed(f"{IM_START}system\n{RERANK_SYSTEM}{IM_END}\n{IM_START}user\n<Instruct>: {instruction}<Query>:"),
        *query_parts,
        Fixed("\n<Document>:"),
        *document_parts,
        Fixed(f"{IM_END}\n{IM_START}assistant\n"),
    )


def to_conversation(prompt: Prompt) -> list[dict]:
    """The chat-template conversation a prompt stands for (used by tests and for debugging)."""
    head = prompt[0].text
    assert isinstance(prompt[0], Fixed) and head.startswith(f"{IM_START}system\n")
    system, _, user_head = head[len(f"{IM_START}system\n"):].partition(f"{IM_END}\n{IM_START}user\n")
    content: list[dict] = []
    if user_head:
        content.append({"type": "text", "text": user_head})
    for piece in prompt[1:-1]:
        if isinstance(piece, (Fixed, TextPart)):
            content.append({"type": "text", "text": piece.text})
        elif isinstance(piece, ImagePart):
            content.append({"type": "image", "image": "<image>"})
        else:
            content.append({"type": "video", "video": "<video>"})
    return [{"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": content}]
