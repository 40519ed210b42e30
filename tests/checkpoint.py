"""Build randomly initialised Qwen3-VL checkpoints in the layout of the released models.

Used by the tests (tiny) and by the benchmarks (small, and the released 2B/8B shapes on a GPU):
config.json, model.safetensors, tokenizer.json, tokenizer_config.json, chat_template.jinja,
preprocessor_config.json, video_preprocessor_config.json, processor_config.json.
"""
from __future__ import annotations

import json
import lzma
import os
import shutil

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")

SHAPES = {
    # 2 text layers of width 64, 2 vision layers: the shape of the parity fixture.
    "tiny": dict(
        text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, mrope_section=[4, 2, 2]),
        vision=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                    deepstack_visual_indexes=[0, 1]),
    ),
    # A few times larger: for CPU benchmarks where the forward pass should dominate a little more.
    "small": dict(
        text=dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=64, mrope_section=[16, 8, 8]),
        vision=dict(depth=4, hidden_size=128, intermediate_size=256, num_heads=2, out_hidden_size=256,
                    deepstack_visual_indexes=[1, 2, 3]),
    ),
    "2b": dict(
        text=dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                  num_key_value_heads=8, head_dim=128, mrope_section=[24, 20, 20]),
        vision=dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2048,
                    deepstack_visual_indexes=[5, 11, 17]),
    ),
    "8b": dict(
        text=dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                  num_key_value_heads=8, head_dim=128, mrope_section=[24, 20, 20]),
        vision=dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096,
                    deepstack_visual_indexes=[8, 16, 24]),
    ),
}


def write_tokenizer(path: str) -> None:
    """The real Qwen tokenizer and processor configs, from tests/assets."""
    os.makedirs(path, exist_ok=True)
    with lzma.open(os.path.join(ASSETS, "tokenizer.json.xz")) as src, open(os.path.join(path, "tokenizer.json"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    for name in ("tokenizer_config.json", "chat_template.jinja", "preprocessor_config.json",
                 "video_preprocessor_config.json", "processor_config.json"):
        shutil.copy(os.path.join(ASSETS, name), os.path.join(path, name))


def build_checkpoint(path: str, shape: str = "tiny", *, tied: bool = True, seed: int = 0, dtype: str = "float32",
                     device: str = "cpu") -> str:
    """Write a random Qwen3-VL checkpoint of `shape` to `path` (created) and return `path`."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    spec = SHAPES[shape]
    text = dict(spec["text"])
    mrope = text.pop("mrope_section")
    rope = {"rope_type": "default", "mrope_section": mrope, "mrope_interleaved": True, "rope_theta": 5000000.0}
    config = Qwen3VLConfig(
        text_config=dict(text, vocab_size=151936, max_position_embeddings=32768, rms_norm_eps=1e-6,
                         hidden_act="silu", attention_bias=False, rope_parameters=rope, tie_word_embeddings=tied),
        vision_config=dict(spec["vision"], patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                           in_channels=3, hidden_act="gelu_pytorch_tanh", num_position_embeddings=2304),
        image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
        tie_word_embeddings=tied,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration(config)
    model = model.to(getattr(torch, dtype)).eval()
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    del model
    # The released layout also carries the 4.57-era rope keys in text_config.
    cfg_file = os.path.join(path, "config.json")
    with open(cfg_file) as f:
        cfg = json.load(f)
    cfg["text_config"]["rope_theta"] = 5000000.0
    cfg["text_config"]["rope_scaling"] = {"rope_type": "default", "mrope_section": mrope, "mrope_interleaved": True}
    with open(cfg_file, "w") as f:
        json.dump(cfg, f, indent=2)
    write_tokenizer(path)
    return path
