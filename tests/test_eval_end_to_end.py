"""End to end with the tiny checkpoint: `qvl eval`, the embedding cache, reranking, the dim x precision sweep."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from media_factory import scene
from qwen3_vl_embedding.cli import main
from qwen3_vl_embedding.evaluation import EmbeddingCache, EvalDataset, Query, evaluate, load_datasets, retrieval_metrics
from qwen3_vl_embedding.evaluation.beir import load_beir, plot_sweep, sweep
from qwen3_vl_embedding.recipes.demo import demo_eval_collection


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("demo-eval"))
    demo_eval_collection(root, colors=("red", "blue"))
    return root


def counting(monkeypatch, embedder):
    calls = []
    original = embedder.embed

    def embed(items, **kw):
        items = list(items)
        calls.append(len(items))
        return original(items, **kw)

    monkeypatch.setattr(embedder, "embed", embed)
    return calls


def test_qvl_eval_prints_the_table_and_writes_json(demo_root, tiny_model_dir, embedder, tmp_path, capsys):
    out = tmp_path / "result.json"
    status = main(["eval", demo_root, "--model", tiny_model_dir, "-o", str(out), "--cache-dir", str(tmp_path / "c"),
                   "-q"])
    assert status == 0
    table = capsys.readouterr().out
    for row in ("| shapes-t2i | image | retrieval | global | 6 | 6 | hit@1 |",
                "| shapes-cls | image | classification | local | 6 | 6 | hit@1 |",
                "| shapes-video | video | retrieval | global | 6 | 6 | hit@1 |",
                "| shapes-doc | visdoc | retrieval | global | 6 | 6 | ndcg_linear@5 |", "| **All** | 4 |"):
        assert row in table
    data = json.loads(out.read_text())
    scores = [d["score"] for d in data["datasets"]]
    assert data["all"] == pytest.approx(np.mean(scores))
    image = [d["score"] for d in data["datasets"] if d["category"] == "image"]
    assert len(image) == 2 and data["categories"]["image"] == pytest.approx(np.mean(image))
    # the library gives the same numbers without the cache
    report = evaluate(embedder, load_datasets(demo_root))
    assert [r.metrics for r in report.datasets] == [pytest.approx(d["metrics"]) for d in data["datasets"]]


def small_dataset(folder, instruction="Find the picture."):
    corpus = {}
    for i in range(3):
        path = os.path.join(folder, f"img{i}.png")
        if not os.path.exists(path):
            scene(64, 48, seed=10 + i).save(path)
        corpus[f"d{i}"] = {"image": path}
    return EvalDataset(name="small", category="image", instruction=instruction, corpus=corpus,
                       queries=tuple(Query(f"q{i}", f"picture number {i}") for i in range(3)),
                       qrels={f"q{i}": {f"d{i}": 1} for i in range(3)})


def test_second_run_embeds_nothing_and_changes_are_detected(embedder, tmp_path, monkeypatch):
    calls = counting(monkeypatch, embedder)
    ds = small_dataset(str(tmp_path))
    first = evaluate(embedder, [ds], cache=EmbeddingCache(str(tmp_path / "cache")))
    assert sum(calls) == 6
    calls.clear()
    cache = EmbeddingCache(str(tmp_path / "cache"))  # a new process would start like this
    second = evaluate(embedder, [ds], cache=cache)
    assert calls == [] and cache.hits == 3 and cache.misses == 0
    assert second.datasets[0].metrics == first.datasets[0].metrics
    scene(64, 48, seed=99).save(os.path.join(tmp_path, "img1.png"))  # one image edited
    evaluate(embedder, [ds], cache=cache)
    assert calls == [1]
    calls.clear()
    evaluate(embedder, [small_dataset(str(tmp_path), "Another task.")], cache=cache)
    assert calls == [3]  # only the queries: their instruction changed
    direct = embedder.embed([q.item for q in ds.queries], instruction="Another task.")
    cached = cache.embed(embedder, [q.item for q in ds.queries], instruction="Another task.")
    np.testing.assert_array_equal(cached, direct)


def test_reranking_the_top_k_with_the_tiny_reranker(embedder, reranker):
    docs = {f"d{i}": f"document about topic {i}" for i in range(5)}
    ds = EvalDataset(name="text", category="text", instruction="Find the document.", corpus=docs,
                     queries=tuple(Query(f"q{i}", f"topic {i}?") for i in range(3)),
                     qrels={f"q{i}": {f"d{i}": 1, f"d{i + 1}": 2} for i in range(3)})
    report = evaluate(embedder, [ds], reranker=reranker, rerank_top_k=3, ks=(1, 3, 5))
    before = report.datasets[0]
    # recompute: the embedder's order, then the reranker's scores over its first 3
    q = embedder.embed([x.item for x in ds.queries], instruction="Find the document.")
    d = embedder.embed(list(docs.values()))
    expected = {}
    for qi, query in enumerate(ds.queries):
        order = [list(docs)[j] for j in np.argsort(-(d @ q[qi]), kind="stable")]
        s = reranker.scores(query.item, [docs[x] for x in order[:3]], instruction="Find the document.")
        head = [order[j] for j in sorted(range(3), key=lambda j: (-s[j], j))]
        expected[query.id] = head + order[3:]
    assert before.reranked_metrics == pytest.approx(retrieval_metrics(expected, ds.qrels, (1, 3, 5, 10)))
    assert before.metric == "ndcg_linear@10" and 0 <= before.reranked_score <= 100


def beir_folder(root):
    os.makedirs(os.path.join(root, "qrels"), exist_ok=True)
    with open(os.path.join(root, "corpus.jsonl"), "w") as f:
        for i in range(6):
            f.write(json.dumps({"_id": f"d{i}", "title": f"Title {i}", "text": f"text of document {i}"}) + "\n")
    with open(os.path.join(root, "queries.jsonl"), "w") as f:
        for i in range(4):
            f.write(json.dumps({"_id": f"q{i}", "text": f"which document is {i}"}) + "\n")
    with open(os.path.join(root, "qrels", "test.tsv"), "w") as f:
        f.write("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(4)))
    return root


def test_sweep_over_precisions_plots_score_against_storage(embedder, tmp_path, monkeypatch, capsys):
    ds = load_beir(beir_folder(str(tmp_path / "beir")))
    calls = counting(monkeypatch, embedder)
    points = sweep(embedder, ds, precisions=("float32", "float16", "int8", "binary"))
    assert calls == [4, 6]  # one pass: queries and corpus at full size, every setting derived from it
    assert [(p.dim, p.precision, p.bytes_per_vector, p.index_bytes) for p in points] == [
        (64, "float32", 256, 1536), (64, "float16", 128, 768), (64, "int8", 64, 384), (64, "binary", 8, 48)]
    assert points[0].score == pytest.approx(evaluate(embedder, [ds]).datasets[0].score)
    png = plot_sweep(points, str(tmp_path / "plot" / "sweep.png"))
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 300
    with pytest.raises(ValueError, match="dim must be"):
        sweep(embedder, ds, dims=[32])
    monkeypatch.undo()
    out, plot = tmp_path / "sweep.json", tmp_path / "cli.png"
    assert main(["eval", str(tmp_path / "beir"), "--model", embedder.name, "--sweep", "--sweep-precisions",
                 "float32,binary", "--plot", str(plot), "-o", str(out), "--no-cache", "-q"]) == 0
    assert "| 64 | binary | 8 | 48 |" in capsys.readouterr().out
    assert plot.is_file() and [p["precision"] for p in json.loads(out.read_text())["sweep"]["beir"]["points"]] == \
        ["float32", "binary"]
    # Several datasets: still exactly the file named, a panel per dataset, and no other file.
    shutil.copytree(tmp_path / "beir", tmp_path / "two" / "beir-b")
    shutil.copytree(tmp_path / "beir", tmp_path / "two" / "beir-a")
    both = tmp_path / "out" / "both.png"
    assert main(["eval", str(tmp_path / "two" / "beir-a"), str(tmp_path / "two" / "beir-b"), "--model", embedder.name,
                 "--sweep", "--sweep-precisions", "float32", "--plot", str(both), "-o", str(tmp_path / "out" / "b.json"),
                 "--no-cache", "-q"]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["b.json", "both.png"]
    with Image.open(both) as image, Image.open(plot) as single:
        assert image.size[0] > single.size[0]  # two panels side by side


def test_qvl_eval_reports_layout_errors_before_loading_a_model(tmp_path, capsys):
    assert main(["eval", str(tmp_path), "--model", str(tmp_path / "no-model"), "-q"]) == 1
    assert "no dataset.json" in capsys.readouterr().err
