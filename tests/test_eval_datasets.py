"""Local dataset layouts (JSONL, Parquet, inline relevance, relative media) and BEIR folders."""
from __future__ import annotations

import json
import os

import pytest

from qwen3_vl_embedding.evaluation import EvalDataset, Query, load_dataset, load_datasets, write_dataset
from qwen3_vl_embedding.evaluation.beir import is_beir_folder, load_beir


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def make_folder(root, meta, queries, corpus, qrels=None):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump(meta, f)
    write_jsonl(os.path.join(root, "queries.jsonl"), queries)
    write_jsonl(os.path.join(root, "corpus.jsonl"), corpus)
    if qrels is not None:
        write_jsonl(os.path.join(root, "qrels.jsonl"), qrels)
    return str(root)


def test_roundtrip_through_the_layout(tmp_path):
    ds = EvalDataset(name="rt", category="video", ranking="local", instruction="Pick the label.", task="classification",
                     queries=(Query("q1", {"video": "/abs/clip.mp4"}, "Own instruction.", ("a", "b")),
                              Query("q2", "text query", None, ("b",))),
                     corpus={"a": "label a", "b": {"text": "label b", "image": "/abs/b.png"}},
                     qrels={"q1": {"a": 2.0, "b": 0.0}, "q2": {"b": 1.0}}, extra={"source": "unit test"})
    loaded = load_dataset(write_dataset(ds, str(tmp_path / "rt")))
    assert loaded == ds
    assert loaded.headline_metric == "hit@1" and loaded.query_instruction(loaded.queries[1]) == "Pick the label."


def test_inline_relevance_columns_and_relative_media(tmp_path):
    root = make_folder(
        tmp_path / "ds", {"name": "inline", "category": "VisDoc", "instruction": "Find the page."},
        queries=[{"id": 1, "text": "q one", "labels": ["p1", "p1", "p2"], "grades": [2, 2, 1]},
                 {"id": "2", "item": {"content": [{"type": "image", "image": "img/q.png"},
                                                  {"type": "text", "text": "what?"}]}, "qrels": {"p2": 3}}],
        corpus=[{"id": "p1", "image": "pages/1.png"}, {"_id": "p2", "image": ["pages/2a.png", "http://x/2b.png"]}],
        qrels=[{"query_id": "2", "doc_id": "p1", "grade": 1}])
    ds = load_dataset(root)
    assert ds.category == "visdoc" and ds.headline_metric == "ndcg_linear@5" and ds.ranking == "global"
    assert ds.qrels == {"1": {"p1": 2.0, "p2": 1.0}, "2": {"p1": 1.0, "p2": 3.0}}
    assert ds.corpus["p1"] == {"image": os.path.join(root, "pages", "1.png")}
    assert ds.corpus["p2"] == {"image": [os.path.join(root, "pages", "2a.png"), "http://x/2b.png"]}
    assert ds.queries[0].item == {"text": "q one"}
    assert ds.queries[1].item["content"][0]["image"] == os.path.join(root, "img", "q.png")


def test_parquet_files_read_like_jsonl(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    jsonl = make_folder(tmp_path / "j", {"name": "x", "category": "image", "ranking": "local"},
                        queries=[{"id": "q", "item": {"image": "a.png", "text": "hi"}, "candidates": ["c1", "c2"],
                                  "labels": ["c2"]}],
                        corpus=[{"id": "c1", "item": "one"}, {"id": "c2", "item": "two"}])
    root = tmp_path / "p"
    os.makedirs(root)
    with open(os.path.join(jsonl, "dataset.json")) as f, open(root / "dataset.json", "w") as g:
        g.write(f.read())
    pq.write_table(pa.Table.from_pylist([{"id": "q", "item": json.dumps({"image": "a.png", "text": "hi"}),
                                          "candidates": ["c1", "c2"], "labels": ["c2"]}]), root / "queries.parquet")
    pq.write_table(pa.Table.from_pylist([{"id": "c1", "text": "one"}, {"id": "c2", "text": "two"}]),
                   root / "corpus.parquet")
    a, b = load_dataset(jsonl), load_dataset(str(root))
    assert b.qrels == a.qrels == {"q": {"c2": 1.0}}
    assert b.queries[0].candidates == a.queries[0].candidates == ("c1", "c2")
    assert b.queries[0].item == {"image": str(root / "a.png"), "text": "hi"}
    assert b.corpus == {"c1": {"text": "one"}, "c2": {"text": "two"}}


def test_collections_and_layout_errors(tmp_path):
    make_folder(tmp_path / "all" / "b", {"category": "image"}, [{"id": "q", "text": "t", "labels": ["d"]}],
                [{"id": "d", "text": "d"}])
    make_folder(tmp_path / "all" / "a", {"category": "video"}, [{"id": "q", "text": "t", "labels": ["d"]}],
                [{"id": "d", "text": "d"}])
    assert [d.name for d in load_datasets(str(tmp_path / "all"))] == ["a", "b"]  # named after their folders
    with pytest.raises(FileNotFoundError, match="no dataset.json"):
        load_datasets(str(tmp_path))
    bad = make_folder(tmp_path / "bad", {"ranking": "local"}, [{"id": "q", "text": "t"}], [{"id": "d", "text": "d"}])
    with pytest.raises(ValueError, match="no candidates"):
        load_dataset(bad)
    bad = make_folder(tmp_path / "bad2", {"ranking": "local"}, [{"id": "q", "text": "t", "candidates": ["zz"]}],
                      [{"id": "d", "text": "d"}])
    with pytest.raises(ValueError, match="not in the corpus"):
        load_dataset(bad)
    bad = make_folder(tmp_path / "bad3", {"ranking": "sideways"}, [{"id": "q", "text": "t"}],
                      [{"id": "d", "text": "d"}])
    with pytest.raises(ValueError, match="ranking must be"):
        load_dataset(bad)
    bad = make_folder(tmp_path / "bad5", {"metric": "ndcg@5"}, [{"id": "q", "text": "t"}], [{"id": "d", "text": "d"}])
    with pytest.raises(ValueError, match="metric must be one of"):
        load_dataset(bad)
    bad = make_folder(tmp_path / "bad4", {}, [{"id": "q"}], [{"id": "d", "text": "d"}])
    with pytest.raises(ValueError, match="no 'item' and no text/image/video"):
        load_dataset(bad)
    os.remove(os.path.join(bad, "corpus.jsonl"))
    with pytest.raises(FileNotFoundError, match="corpus.jsonl nor corpus.parquet"):
        load_dataset(bad)


def test_beir_folder_with_text_and_images(tmp_path):
    root = tmp_path / "beir"
    os.makedirs(root / "qrels")
    write_jsonl(root / "corpus.jsonl", [{"_id": "d1", "title": "Cats", "text": "Cats purr."},
                                        {"_id": "d2", "text": "", "image": "imgs/dog.png"}])
    write_jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "purring"}, {"_id": "q2", "text": "dogs"},
                                         {"_id": "q3", "text": "not judged"}])
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n")
    assert is_beir_folder(str(root))
    ds = load_beir(str(root), instruction="Find the passage.")
    assert ds.category == "image" and ds.ranking == "global" and ds.headline_metric == "ndcg_linear@10"
    assert [q.id for q in ds.queries] == ["q1", "q2"]
    assert ds.corpus == {"d1": {"text": "Cats Cats purr."}, "d2": {"image": str(root / "imgs" / "dog.png")}}
    assert ds.qrels == {"q1": {"d1": 1.0}, "q2": {"d2": 2.0}}
    with pytest.raises(FileNotFoundError, match=r"splits found: \['test'\]"):
        load_beir(str(root), split="dev")
