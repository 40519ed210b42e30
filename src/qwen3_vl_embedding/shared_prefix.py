"""Run a batch of sequences that begin alike by computing their common prefix once.

A reranker scores one query against many documents: every pair's prompt starts with the same system
text, instruction and query (images and videos included). With causal attention the prefix's keys
and values do not depend on what follows, so they are computed once (and kept for the next batch of
the same query), expanded over the batch, and only the documents' tokens run through the model,
with the M-RoPE positions of the whole sequences. The result equals the full forward pass up to
floating-point summation order (the tests check 1e-5 on scores).
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .model import Backbone
    from .preprocess import Sample

MIN_PREFIX = 32


def common_prefix(sequences: list[list[int]]) -> int:
    """Length of the longest prefix shared by all sequences."""
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for i in range(n):
        t = first[i]
        if any(s[i] != t for s in sequences):
            return i
    return n


def safe_cut(ids: list[int], cut: int, vision_ids: set[int]) -> int:
    """`cut` moved back before any vision span it would end inside (its pads or opening token)."""
    while cut > 0 and ids[cut - 1] in vision_ids:
        cut -= 1
    return cut


def runs(ids: list[int], token: int) -> int:
    """Number of maximal runs of `token` in `ids`."""
    return sum(1 for i, t in enumerate(ids) if t == token and (i == 0 or ids[i - 1] != token))


class PrefixRunner:
    """Last-token hidden states of a batch, sharing the common prefix's key/value cache."""

    def __init__(self, backbone: "Backbone", min_prefix: int = MIN_PREFIX):
        self.backbone = backbone
        self.min_prefix = min_prefix
        self._kept: tuple[tuple[int, ...], list[torch.Tensor], object] | None = None
        self._lock = threading.Lock()

    def _split(self, samples: list["Sample"]) -> int:
        bb = self.backbone
        ids = [s.input_ids for s in samples]
        cut = min(common_prefix(ids), min(len(x) for x in ids) - 1)
        vision = {bb.image_token_id, bb.video_token_id, bb.vision_start_id}
        return safe_cut(ids[0], cut, vision)

    def _prefix_cache(self, prefix_ids: list[int], images: list[torch.Tensor], videos: list[torch.Tensor],
                      positions: torch.Tensor):
        """The prefix's cache, computed or reused when the same prefix (same ids and media) came last."""
        key = tuple(prefix_ids)
        media = images + videos
        with self._lock:
            kept = self._kept
            if kept is not None and kept[0] == key and len(kept[1]) == len(media) and \
                    all(a is b for a, b in zip(kept[1], media)):
                return kept[2]
        bb = self.backbone
        ids = torch.tensor([prefix_ids], device=bb.device)
        types = torch.zeros_like(ids, dtype=torch.int32)
        types[ids == bb.image_token_id] = 1
        types[ids == bb.video_token_id] = 2
        kwargs = bb.pixel_inputs(images, videos)
        out = bb.model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=positions,
                       mm_token_type_ids=types, use_cache=True, **kwargs)
        cache = out.cache
        with self._lock:
            self._kept = (key, media, cache)
        return cache

    @torch.inference_mode()
    def last_hidden(self, samples: list["Sample"], pad_id: int) -> torch.Tensor:
        from transformers import DynamicCache

        bb = self.backbone
        cut = self._split(samples) if len(samples) > 1 else 0
        if cut < self.min_prefix:
            return bb.last_hidden(samples, pad_id)
        head = samples[0].input_ids[:cut]
        n_img = runs(head, bb.image_token_id)
        n_vid_groups = runs(head, bb.video_token_id)
        n_vid, groups = 0, 0
        for v in samples[0].videos:
            if groups + v.shape[0] // 2 > n_vid_groups:
                break
            groups += v.shape[0] // 2
            n_vid += 1
        if groups != n_vid_groups:  # a video split by the cut: no sharing
            return bb.last_hidden(samples, pad_id)

        full = bb.token_inputs(samples, pad_id)
        image_grid = bb.grids([im for s in samples for im in s.images])
        video_grid = bb.grids([v for s in samples for v in s.videos])
        positions, _ = bb.model.get_rope_index(full["input_ids"], full["mm_token_type_ids"], image_grid, video_grid,
                                               attention_mask=full["attention_mask"])
        cache = self._prefix_cache(head, samples[0].images[:n_img], samples[0].videos[:n_vid], positions[:, :1, :cut])

        n = len(samples)
        batch_cache = DynamicCache()
        for i, layer in enumerate(cache.layers):
            batch_cache.update(layer.keys.expand(n, -1, -1, -1).contiguous(),
                               layer.values.expand(n, -1, -1, -1).contiguous(), i)
        ids = full["input_ids"][:, cut:]
        mask = full["attention_mask"][:, cut:]
        types = full["mm_token_type_ids"][:, cut:]
        kwargs = bb.pixel_inputs([im for s in samples for im in s.images[n_img:]],
                                 [v for s in samples for v in s.videos[n_vid:]])
        out = bb.model(input_ids=ids, attention_mask=full["attention_mask"], position_ids=positions[:, :, cut:],
                       mm_token_type_ids=types, cache=batch_cache, use_cache=True, **kwargs)
        hidden = out.last_hidden_state
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(n, device=hidden.device), last].float()
