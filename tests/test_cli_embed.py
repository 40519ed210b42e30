"""`qvl embed` (JSONL / .npy / Parquet, dims, int8 calibration, failures) and `qvl rerank`."""
from __future__ import annotations

import json

import numpy as np
import pytest

from qwen3_vl_embedding.quantize import QuantRanges, quantize


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, media):
    folder = tmp_path_factory.mktemp("embed")
    items = [{"text": "a cat on a mat"}, {"text": "find me", "instruction": "Find images of this."},
             {"content": [{"type": "image", "image": media["scene.jpg"]}, {"type": "text", "text": "scene"}]}]
    jsonl = folder / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps(x) for x in items) + "\n\n")
    note = folder / "note.md"
    note.write_text("# Notes\nkites over the harbour")
    library = [*items, {"image": media["noise.png"]}, {"text": note.read_text()}, {"text": "plain"}]
    argv = [str(jsonl), media["noise.png"], str(note), "--text", "plain"]
    return folder, argv, library


def test_jsonl_npy_parquet_agree_with_the_library(qvl, embedder, inputs):
    import pyarrow.parquet as pq

    folder, argv, library = inputs
    want = embedder.embed(library)
    out = qvl("embed", *argv)
    assert out.code == 0, out.err
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert [x["index"] for x in lines] == list(range(6)) and lines[0]["source"].endswith("in.jsonl:1")
    assert np.allclose([x["embedding"] for x in lines], want, atol=1e-5)
    assert qvl("embed", *argv, "-o", str(folder / "v.npy")).code == 0
    assert np.allclose(np.load(folder / "v.npy"), want, atol=1e-5)
    assert qvl("embed", *argv, "-o", str(folder / "v.parquet")).code == 0
    table = pq.read_table(folder / "v.parquet")
    assert table.column("index").to_pylist() == list(range(6))
    assert np.allclose(np.stack(table.column("embedding").to_numpy(zero_copy_only=False)), want, atol=1e-5)


def test_dim_and_int8_calibration(qvl, embedder, inputs):
    folder, argv, library = inputs
    assert qvl("embed", *argv, "--dim", "64", "--precision", "int8", "-o", str(folder / "q.npy")).code == 0
    floats = embedder.embed(library, dim=64)
    ranges = QuantRanges.load(str(folder / "q.ranges.npy"))
    assert np.array_equal(np.load(folder / "q.npy"), quantize(floats, "int8", QuantRanges.from_embeddings(floats)))
    again = qvl("embed", "--text", "x", "--precision", "int8", "--ranges", str(folder / "q.ranges.npy"))
    assert again.code == 0
    got = json.loads(again.out)["embedding"]
    assert got == quantize(embedder.embed(["x"]), "int8", ranges)[0].tolist()
    bits = qvl("embed", "--text", "x", "--precision", "binary", "-o", str(folder / "b.npy"))
    assert bits.code == 0 and np.load(folder / "b.npy").shape == (1, 8)
    lonely = qvl("embed", "--text", "x", "--precision", "int8")
    assert lonely.code == 1 and "--ranges" in lonely.err


def test_failures_and_bad_arguments(qvl, media, inputs):
    folder, _, _ = inputs
    out = qvl("embed", media["corrupt.jpg"], "--text", "fine", "-o", str(folder / "f.npy"))
    assert out.code == 2 and "corrupt.jpg" in out.err
    rows = np.load(folder / "f.npy")
    assert np.isnan(rows[0]).all() and not np.isnan(rows[1]).any()
    assert qvl("embed", "--text", "x", "-o", str(folder / "x.csv")).code == 1
    assert "nothing to embed" in qvl("embed").err
    (folder / "bad.jsonl").write_text('{"text": "ok"}\nnot json\n')
    assert "line 2 is not JSON" in qvl("embed", str(folder / "bad.jsonl")).err


def test_rerank_command(qvl, reranker, media, tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("The harbour at dawn, with kites.")
    out = qvl("rerank", "kites at dawn", media["scene.jpg"], str(doc), "--doc", "Berlin is in Germany.", "--json")
    assert out.code == 0, out.err
    ranking = out.json()
    docs = [{"image": media["scene.jpg"]}, {"text": doc.read_text()}, {"text": "Berlin is in Germany."}]
    want = reranker.rerank({"text": "kites at dawn"}, docs)
    assert [r["index"] for r in ranking] == [w.index for w in want]
    assert [r["score"] for r in ranking] == pytest.approx([w.score for w in want], abs=1e-5)
    assert ranking[-1]["rank"] == 3 and {r["document"] for r in ranking} >= {"Berlin is in Germany."}
    image_query = qvl("rerank", "--image", media["scene.jpg"], media["noise.png"], str(doc), "-k", "1")
    assert image_query.code == 0 and len(image_query.out.strip().splitlines()) == 2
    assert qvl("rerank", "only a query").code == 1
