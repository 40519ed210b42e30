"""Run a batch of sequences that begin alike by computing their common prefix once.

A reranker scores one query against many documents: every pair's prompt starts with the same system
text, instruction and query (images and videos included). An embedder's prompts all start with the
same system text and instruction, which for a short query is half its tokens. With causal attention
the prefix's keys and values do not depend on what follows, so they are computed once, expanded over
the batch, and only the rest of each sequence runs through the model, with the M-RoPE positions of
the whole sequences. The last prefix is kept: a later batch, or a single sequence, that begins with
it (the same ids and the very same image and video tensors) reuses it. The result equals the full
forward pass up to floating-point summation order (the tests check 1e-5).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .model import Backbone
    from .preprocess import Sample

MIN_PREFIX = 8


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


def media_runs(ids: list[int], image_token: int, video_token: int, video_groups: list[int]):
    """(start, "images" | "videos", which) for each run of image or video pads in `ids`; a video
    spans `video_groups[which]` runs (one per pair of frames)."""
    images = runs_seen = 0
    for i, t in enumerate(ids):
        if (t != image_token and t != video_token) or (i > 0 and ids[i - 1] == t):
            continue
        if t == image_token:
            yield i, "images", images
            images += 1
        else:
            total = 0
            for which, n in enumerate(video_groups):
                total += n
                if runs_seen < total:
                    yield i, "videos", which
                    break
            runs_seen += 1


@dataclass(frozen=True)
class Prefix:
    """A computed prefix: its token ids, the image and video tensors inside it, its key/value cache."""

    ids: tuple[int, ...]
    images: list[torch.Tensor]
    videos: list[torch.Tensor]
    cache: object

    def begins(self, sample: "Sample") -> bool:
        """Whether `sample` starts with this prefix (and has a token after it), media included."""
        k = len(self.ids)
        return (len(sample.input_ids) > k and tuple(sample.input_ids[:k]) == self.ids
                and len(sample.images) >= len(self.images) and len(sample.videos) >= len(self.videos)
                and all(a is b for a, b in zip(sample.images, self.images))
                and all(a is b for a, b in zip(sample.videos, self.videos)))


class PrefixRunner:
    """Last-token hidden states of a batch, sharing the common prefix's key/value cache."""

    def __init__(self, backbone: "Backbone", min_prefix: int = MIN_PREFIX):
        self.backbone = backbone
        self.min_prefix = min_prefix
        self._kept: Prefix | None = None
        self._lock = threading.Lock()

    def _split(self, samples: list["Sample"]) -> int:
        """Length of the prefix the samples share: the same ids and, for every image or video in it,
        the very same tensor (two images of one size have the same ids, not the same pixels)."""
        bb = self.backbone
        ids = [s.input_ids for s in samples]
        cut = min(common_prefix(ids), min(len(x) for x in ids) - 1)
        first = samples[0]
        for start, kind, k in media_runs(ids[0][:cut], bb.image_token_id, bb.video_token_id,
                                         [v.shape[0] // 2 for v in first.videos]):
            mine = getattr(first, kind)[k]
            if any(len(getattr(s, kind)) <= k or getattr(s, kind)[k] is not mine for s in samples):
                cut = start
                break
        return safe_cut(ids[0], cut, {bb.image_token_id, bb.video_token_id, bb.vision_start_id})

    def _media_before(self, sample: "Sample", cut: int) -> tuple[int, int] | None:
        """Images and videos of `sample` wholly inside its first `cut` tokens; None when a video is split."""
        bb = self.backbone
        head = sample.input_ids[:cut]
        n_img = runs(head, bb.image_token_id)
        n_vid_groups = runs(head, bb.video_token_id)
        n_vid, groups = 0, 0
        for v in sample.videos:
            if groups + v.shape[0] // 2 > n_vid_groups:
                break
            groups += v.shape[0] // 2
            n_vid += 1
        return (n_img, n_vid) if groups == n_vid_groups else None

    def _compute(self, sample: "Sample", cut: int, n_img: int, n_vid: int, positions: torch.Tensor) -> Prefix:
        bb = self.backbone
        ids = torch.tensor([sample.input_ids[:cut]], device=bb.device)
        types = torch.zeros_like(ids, dtype=torch.int32)
        types[ids == bb.image_token_id] = 1
        types[ids == bb.video_token_id] = 2
        images, videos = list(sample.images[:n_img]), list(sample.videos[:n_vid])
        out = bb.model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=positions,
                       mm_token_type_ids=types, use_cache=True, **bb.pixel_inputs(images, videos))
        prefix = Prefix(tuple(sample.input_ids[:cut]), images, videos, out.cache)
        with self._lock:
            self._kept = prefix
        return prefix

    def _choose(self, samples: list["Sample"]) -> tuple[Prefix | None, int]:
        """The kept prefix when every sample begins with it and a fresh one would not be much longer;
        else (None, the length of a fresh common prefix), 0 meaning no sharing."""
        with self._lock:
            kept = self._kept
        cut = self._split(samples) if len(samples) > 1 else 0
        if kept is not None and len(kept.ids) + self.min_prefix > cut and all(kept.begins(s) for s in samples):
            return kept, len(kept.ids)
        return None, (cut if cut >= self.min_prefix else 0)

    def _positions(self, samples: list["Sample"], full: dict) -> torch.Tensor:
        """M-RoPE positions (3, batch, width) of the whole right-padded sequences. Without images or
        videos every axis counts tokens, as the model itself does for text (the slow per-token walk of
        `get_rope_index` is needed only for vision spans)."""
        bb = self.backbone
        images = [im for s in samples for im in s.images]
        videos = [v for s in samples for v in s.videos]
        ids = full["input_ids"]
        if not images and not videos:
            return torch.arange(ids.shape[1], device=ids.device).view(1, 1, -1).expand(3, ids.shape[0], -1)
        positions, _ = bb.model.get_rope_index(ids, full["mm_token_type_ids"], bb.grids(images), bb.grids(videos),
                                               attention_mask=full["attention_mask"])
        return positions

    @torch.inference_mode()
    def last_hidden(self, samples: list["Sample"], pad_id: int) -> torch.Tensor:
        from transformers import DynamicCache

        bb = self.backbone
        prefix, cut = self._choose(samples)
        if prefix is None:
            media = self._media_before(samples[0], cut) if cut else None
            if media is None:
                return bb.last_hidden(samples, pad_id)
            n_img, n_vid = media
        else:
            n_img, n_vid = len(prefix.images), len(prefix.videos)

        full = bb.token_inputs(samples, pad_id)
        positions = self._positions(samples, full)
        if prefix is None:
            prefix = self._compute(samples[0], cut, n_img, n_vid, positions[:, :1, :cut])

        n = len(samples)
        batch_cache = DynamicCache()
        for i, layer in enumerate(prefix.cache.layers):
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
