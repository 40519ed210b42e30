"""Model resolution (local folder, hub id, offline), runtime choices, and package import hygiene."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from qwen3_vl_embedding.errors import ModelNotFoundError
from qwen3_vl_embedding.model import is_hub_id, read_config, resolve_model_path
from qwen3_vl_embedding.runtime import parse_attention, parse_dtype, resolve_runtime


def test_local_folder_is_used_as_is(tiny_model_dir):
    assert resolve_model_path(tiny_model_dir) == tiny_model_dir


def test_missing_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_path(str(tmp_path / "nope" / "model"))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_path("./models/Qwen3-VL-Embedding-2B")


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelNotFoundError, match="config.json"):
        resolve_model_path(str(tmp_path))


def test_not_a_qwen3_vl_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="Qwen3-VL"):
        read_config(str(tmp_path))


def test_uncached_hub_id_offline_fails_at_once_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "cache"))
    from plugins import network

    refusals = len(network.refused)
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model_path("Qwen/Qwen3-VL-Embedding-2B")
    assert time.monotonic() - start < 5
    assert network.refused[refusals:] == []  # offline: not even an attempt to reach the hub
    message = str(info.value)
    assert "hf download Qwen/Qwen3-VL-Embedding-2B" in message
    assert "model_name_or_path='./models/Qwen3-VL-Embedding-2B'" in message


def test_unreachable_hub_fails_at_once(tmp_path):
    """With the hub pointed at a closed loopback port (no other address is contacted)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    code = ("import sys\nfrom qwen3_vl_embedding.model import resolve_model_path\n"
            "try:\n    resolve_model_path('Qwen/Qwen3-VL-Reranker-2B')\n"
            "except Exception as e:\n    print(type(e).__name__); print(e)\n")
    env = dict(os.environ, HF_HUB_OFFLINE="0", HF_ENDPOINT=f"http://127.0.0.1:{port}",
               HF_HUB_CACHE=str(tmp_path / "cache"), HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="2")
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - start < 60
    assert out.stdout.startswith("ModelNotFoundError"), out.stdout + out.stderr
    assert "hf download Qwen/Qwen3-VL-Reranker-2B" in out.stdout


def test_hub_id_pattern():
    assert is_hub_id("Qwen/Qwen3-VL-Embedding-2B")
    assert not is_hub_id("./models/x")
    assert not is_hub_id("/abs/path")
    assert not is_hub_id("a/b/c")


def test_runtime_defaults_and_parsing():
    rt = resolve_runtime()
    assert rt.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert rt.attn_implementation == "sdpa"
    cpu = torch.device("cpu")
    assert parse_dtype(None, cpu) == torch.float32
    assert parse_dtype(None, torch.device("cuda")) == torch.bfloat16
    assert parse_dtype("bf16", cpu) == torch.bfloat16 and parse_dtype(torch.float16, cpu) == torch.float16
    with pytest.raises(ValueError):
        parse_dtype("int8", cpu)
    with pytest.raises(ValueError):
        parse_attention("magic", cpu)
    assert parse_attention("flash_attention_2", cpu) == "sdpa"  # falls back with a warning


def test_import_does_no_work():
    code = ("import sys, time\nt = time.perf_counter()\nimport qwen3_vl_embedding as q\n"
            "print(round(time.perf_counter() - t, 3), 'torch' in sys.modules, 'transformers' in sys.modules, q.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.split()
    assert out[1:] == ["False", "False", "0.1.0"], out
