"""Quantisation, Matryoshka truncation and binary search against brute-force references."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen3_vl_embedding.pooling import check_dim, l2_normalize, matryoshka
from qwen3_vl_embedding.quantize import (QuantRanges, binary_search, dequantize, hamming_distances, quantize,
                                         rescore)


def unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_matryoshka_takes_the_prefix_and_renormalises():
    x = torch.randn(5, 256)
    y = matryoshka(x, 64)
    assert y.shape == (5, 64)
    assert torch.allclose(y, torch.nn.functional.normalize(x[:, :64], dim=-1), atol=1e-6)
    assert torch.equal(matryoshka(x, 64, normalize=False), x[:, :64])
    assert torch.allclose(l2_normalize(x), torch.nn.functional.normalize(x, dim=-1))


def test_check_dim():
    assert check_dim(None, 2048) == 2048 and check_dim(64, 2048) == 64
    for bad in (63, 2049, 0, 1.5, True):
        with pytest.raises(ValueError, match="64 to 2048"):
            check_dim(bad, 2048)


def test_int8_and_uint8_round_trip_error_is_bounded():
    x = unit(200, 128)
    ranges = QuantRanges.from_embeddings(x)
    step = (ranges.high - ranges.low) / 255
    for precision, dtype in (("int8", np.int8), ("uint8", np.uint8)):
        q = quantize(x, precision, ranges)
        assert q.dtype == dtype and q.shape == x.shape
        back = dequantize(q, precision, ranges)
        assert np.all(np.abs(back - x) <= step / 2 + 1e-6)


def test_int8_levels_brute_force():
    x = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]], dtype=np.float32)
    r = QuantRanges(np.zeros(3, np.float32), np.ones(3, np.float32))
    assert quantize(x, "uint8", r).tolist() == [[0, 255, 128], [255, 0, 64]]
    assert quantize(x, "int8", r).tolist() == [[-128, 127, 0], [127, -128, -64]]


def test_values_outside_the_range_clip():
    r = QuantRanges(np.zeros(2, np.float32), np.ones(2, np.float32))
    assert quantize(np.array([[-5.0, 5.0]]), "uint8", r).tolist() == [[0, 255]]


def test_int8_needs_ranges_and_ranges_save(tmp_path):
    with pytest.raises(ValueError, match="calibration"):
        quantize(unit(2, 8), "int8")
    r = QuantRanges.from_embeddings(unit(10, 8))
    r.save(str(tmp_path / "r.npy"))
    loaded = QuantRanges.load(str(tmp_path / "r.npy"))
    assert np.array_equal(loaded.low, r.low) and np.array_equal(loaded.high, r.high)
    assert quantize(unit(3, 4), "int8", r).shape == (3, 4)  # truncated ranges for MRL prefixes


def test_binary_packing_brute_force():
    x = np.array([[0.3, -0.1, 0.0, 2.0, -3.0, 0.1, 0.2, -0.2, 1.0]], dtype=np.float32)
    bits = [1, 0, 0, 1, 0, 1, 1, 0, 1]
    want = [int("".join(map(str, bits[:8])), 2), int("1" + "0" * 7, 2)]
    assert quantize(x, "ubinary").tolist() == [want]
    assert quantize(x, "binary").tolist() == [[v - 128 for v in want]]
    assert quantize(x, "float16").dtype == np.float16


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(1, 30), st.integers(1, 9), st.integers(0, 10_000))
def test_hamming_equals_brute_force(nq, nc, nbytes, seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(nq, nbytes * 8))
    c = rng.normal(size=(nc, nbytes * 8))
    d = hamming_distances(quantize(q, "binary"), quantize(c, "ubinary"))
    brute = np.array([[int(np.sum((qi > 0) != (cj > 0))) for cj in c] for qi in q])
    assert np.array_equal(d, brute)


def test_binary_search_then_rescore_finds_the_true_neighbours():
    corpus = unit(500, 256, 1)
    queries = corpus[:5] + 0.05 * unit(5, 256, 2)
    ids, dist = binary_search(quantize(queries, "ubinary"), quantize(corpus, "ubinary"), 50)
    assert ids.shape == (5, 50) and np.all(np.diff(dist, axis=1) >= 0)
    ranges = QuantRanges.from_embeddings(corpus)
    top, scores = rescore(queries, ids, quantize(corpus, "int8", ranges), "int8", ranges, k=1)
    assert top[:, 0].tolist() == [0, 1, 2, 3, 4]
    exact, _ = rescore(queries, ids, corpus, k=3)
    assert exact[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_unknown_precision():
    with pytest.raises(ValueError, match="precision"):
        quantize(unit(1, 8), "int4")
