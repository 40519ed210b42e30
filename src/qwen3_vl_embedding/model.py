"""Load a Qwen3-VL checkpoint and run it: the forward pass that embedder and reranker share.

`Backbone` holds the vision tower and the language model (no lm_head), and returns the final hidden
state of the last real token of each prepared sample. Pixels arrive as resized uint8 tensors and are
normalised and cut into patches on the device.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass

import torch

from .constants import HUB_ID_PATTERN
from .errors import ModelNotFoundError
from .preprocess import Sample
from .runtime import Runtime

logger = logging.getLogger(__name__)

WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "tokenizer*"]


def is_hub_id(name: str) -> bool:
    """True for names of the form owner/name (not a relative or absolute path)."""
    return re.fullmatch(HUB_ID_PATTERN, name) is not None


def resolve_model_path(name_or_path: str | os.PathLike, revision: str | None = None) -> str:
    """A local folder holding the checkpoint: `name_or_path` itself, or a hub snapshot (cached or downloaded).

    Honours HF_HUB_OFFLINE. Raises ModelNotFoundError at once, with the commands to fix it, when the
    model is neither local nor cached and the hub cannot be reached."""
    name = os.fspath(name_or_path)
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        if not os.path.isfile(os.path.join(expanded, "config.json")):
            raise ModelNotFoundError(f"{expanded} has no config.json: it is not a model folder in the released layout")
        return expanded
    if not is_hub_id(name):
        raise ModelNotFoundError(
            f"model folder {name!r} does not exist. Pass a local folder holding the released files "
            f"(config.json, *.safetensors, tokenizer and processor configs) or a hub id such as "
            f"'Qwen/Qwen3-VL-Embedding-2B'.")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, revision=revision, allow_patterns=WEIGHT_PATTERNS)
    except Exception as e:  # offline, unreachable, unknown repo, gated: all end the same way
        reason = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        folder = f"./models/{name.split('/')[-1]}"
        raise ModelNotFoundError(
            f"cannot load {name!r}: it is not in the Hugging Face cache and the hub could not provide it "
            f"({type(e).__name__}: {reason}).\n"
            f"  Download it where the hub is reachable:  hf download {name} --local-dir {folder}\n"
            f"  (or: huggingface-cli download {name} --local-dir {folder})", folder=folder) from None


@contextlib.contextmanager
def _quiet_imports():
    """Importing transformers' models imports torchao when it is installed, which logs two warnings about
    its enums on current torch: not ours to show."""
    pytree = logging.getLogger("torch.utils._pytree")
    level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        yield
    finally:
        pytree.setLevel(level)


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def read_config(path: str) -> dict:
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    if config.get("model_type") != "qwen3_vl":
        raise ValueError(f"{path} holds a {config.get('model_type')!r} model; expected a Qwen3-VL checkpoint (qwen3_vl)")
    return config


@dataclass(frozen=True)
class PixelSpec:
    patch_size: int = 16
    merge_size: int = 2
    temporal_patch_size: int = 2
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    rescale: float = 1 / 255

    @classmethod
    def from_folder(cls, path: str, config: dict) -> "PixelSpec":
        vision = config.get("vision_config", {})
        pre = {}
        for name in ("preprocessor_config.json", "processor_config.json"):
            file = os.path.join(path, name)
            if os.path.isfile(file):
                with open(file) as f:
                    data = json.load(f)
                pre = data.get("image_processor", data)
                break
        return cls(
            patch_size=vision.get("patch_size", 16),
            merge_size=vision.get("spatial_merge_size", 2),
            temporal_patch_size=vision.get("temporal_patch_size", 2),
            mean=tuple(pre.get("image_mean", (0.5, 0.5, 0.5))),
            std=tuple(pre.get("image_std", (0.5, 0.5, 0.5))),
            rescale=pre.get("rescale_factor", 1 / 255),
        )


def patchify(frames: torch.Tensor, spec: PixelSpec) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """uint8 frames (T, C, H, W) -> normalised patches (t*h*w, C*tp*p*p) and the grid (t, h, w).

    A single image (T=1) is repeated to fill one temporal patch; videos are padded with their last frame."""
    p, m, tp = spec.patch_size, spec.merge_size, spec.temporal_patch_size
    x = frames.float() * spec.rescale
    mean = torch.tensor(spec.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, -1, 1, 1)
    x = (x - mean) / std
    if x.shape[0] % tp:
        x = torch.cat([x, x[-1:].expand(tp - x.shape[0] % tp, -1, -1, -1)])
    t, c, h, w = x.shape
    gt, gh, gw = t // tp, h // p, w // p
    x = x.view(gt, tp, c, gh // m, m, p, gw // m, m, p).permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, c * tp * p * p), (gt, gh, gw)


class Backbone:
    """The Qwen3-VL vision tower and language model, on one device, in eval mode (with int8 linear
    layers when `runtime.quantize` is "int8": int8_weights.py)."""

    def __init__(self, path: str, runtime: Runtime):
        with _quiet_imports():
            from transformers import Qwen3VLModel

        self.path = path
        self.runtime = runtime
        self.config = read_config(path)
        self.pixels = PixelSpec.from_folder(path, self.config)
        with _quiet_transformers():
            model = Qwen3VLModel.from_pretrained(path, dtype=runtime.dtype,
                                                 attn_implementation=runtime.attn_implementation)
        self.model = model.to(runtime.device).eval()
        if runtime.quantize == "int8":
            from .int8_weights import quantize_linear_layers

            quantize_linear_layers(self.model)
        self.hidden_size = self.model.config.text_config.hidden_size
        self.image_token_id = self.config.get("image_token_id", 151655)
        self.video_token_id = self.config.get("video_token_id", 151656)
        self.vision_start_id = self.config.get("vision_start_token_id", 151652)

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    def _pixels(self, frames: list[torch.Tensor]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if not frames:
            return None, None
        patches, grids = [], []
        for f in frames:
            x, grid = patchify(f.to(self.device, non_blocking=True), self.pixels)
            patches.append(x)
            grids.append(grid)
        return torch.cat(patches), torch.tensor(grids, device=self.device)

    def grids(self, frames: list[torch.Tensor]) -> torch.Tensor | None:
        """The (t, h, w) patch grids of resized images or videos, without computing their patches."""
        if not frames:
            return None
        p, tp = self.pixels.patch_size, self.pixels.temporal_patch_size
        return torch.tensor([[-(-f.shape[0] // tp), f.shape[-2] // p, f.shape[-1] // p] for f in frames],
                            device=self.device)

    def token_inputs(self, samples: list[Sample], pad_id: int) -> dict:
        """Right-padded input_ids, attention_mask and mm_token_type_ids (rebuilt for the padded ids)."""
        n, width = len(samples), max(s.length for s in samples)
        ids = torch.full((n, width), pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, s in enumerate(samples):
            ids[i, : s.length] = torch.as_tensor(s.input_ids, dtype=torch.long)
            mask[i, : s.length] = 1
        types = torch.zeros_like(ids, dtype=torch.int32)
        types[(ids == self.image_token_id) & (mask == 1)] = 1
        types[(ids == self.video_token_id) & (mask == 1)] = 2
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device),
                "mm_token_type_ids": types.to(self.device)}

    def pixel_inputs(self, images: list[torch.Tensor], videos: list[torch.Tensor]) -> dict:
        """pixel_values / image_grid_thw and pixel_values_videos / video_grid_thw for the model."""
        out = {}
        pixel_values, image_grid = self._pixels(images)
        if pixel_values is not None:
            out.update(pixel_values=pixel_values, image_grid_thw=image_grid)
        video_values, video_grid = self._pixels(videos)
        if video_values is not None:
            out.update(pixel_values_videos=video_values, video_grid_thw=video_grid)
        return out

    def batch_inputs(self, samples: list[Sample], pad_id: int) -> dict:
        """All model inputs of a right-padded batch."""
        return {**self.token_inputs(samples, pad_id),
                **self.pixel_inputs([im for s in samples for im in s.images], [v for s in samples for v in s.videos])}

    @torch.inference_mode()
    def last_hidden(self, samples: list[Sample], pad_id: int) -> torch.Tensor:
        """Final-layer hidden state (after the last norm) of each sample's last token, float32, on the device."""
        inputs = self.batch_inputs(samples, pad_id)
        out = self.model(**inputs, use_cache=False)
        hidden = out.last_hidden_state
        last = inputs["attention_mask"].sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()

    def lm_head_rows(self, token_ids: list[int]) -> torch.Tensor:
        """Rows of the output projection (lm_head) for `token_ids`, float32, without loading the whole head."""
        tied = self.config.get("tie_word_embeddings", self.config.get("text_config", {}).get("tie_word_embeddings"))
        if tied:
            weight = self.model.get_input_embeddings().weight
            return weight[token_ids].detach().float().clone()
        from safetensors import safe_open

        index = os.path.join(self.path, "model.safetensors.index.json")
        if os.path.isfile(index):
            with open(index) as f:
                file = json.load(f)["weight_map"]["lm_head.weight"]
        else:
            file = "model.safetensors"
        with safe_open(os.path.join(self.path, file), framework="pt") as f:
            rows = f.get_slice("lm_head.weight")
            return torch.stack([rows[i: i + 1][0] for i in token_ids]).float().to(self.device)
