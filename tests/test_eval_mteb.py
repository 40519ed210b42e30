"""The mteb wrappers, evaluated by mteb itself on tasks built from local data (nothing downloaded)."""
from __future__ import annotations

import pytest

from media_factory import scene
from qwen3_vl_embedding.evaluation import EvalDataset, Query, evaluate

mteb = pytest.importorskip("mteb")

from datasets import Dataset  # noqa: E402
from mteb.abstasks.retrieval import AbsTaskRetrieval  # noqa: E402
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402

from qwen3_vl_embedding.evaluation.mteb_adapter import MTEBCrossEncoder, MTEBEncoder, batch_items  # noqa: E402

N = 4
CAPTIONS = [f"picture number {i}" for i in range(N)]
META = dict(description="built from local data in the tests", reference="https://example.org",
            dataset={"path": "local/test", "revision": "1"}, eval_splits=["test"], eval_langs=["eng-Latn"],
            date=("2024-01-01", "2024-01-01"), dialect=[], domains=[], task_subtypes=[], license="cc-by-4.0",
            annotations_creators="derived", sample_creation="found", bibtex_citation="",
            category="t2i", modalities=["text", "image"])


def split(with_top_ranked: bool):
    images = [scene(64, 48, seed=20 + i) for i in range(N)]
    return RetrievalSplitData(
        queries=Dataset.from_dict({"id": [f"q{i}" for i in range(N)], "text": CAPTIONS}),
        corpus=Dataset.from_dict({"id": [f"d{i}" for i in range(N)], "image": images}),
        relevant_docs={f"q{i}": {f"d{i}": 1} for i in range(N)},
        top_ranked={f"q{i}": [f"d{j}" for j in range(N)] for i in range(N)} if with_top_ranked else None)


class LocalTextToImage(AbsTaskRetrieval):
    metadata = TaskMetadata(type="Any2AnyRetrieval", name="QvlLocalTextToImage", main_score="ndcg_at_10",
                            prompt={"query": "Find the picture."}, **META)

    def load_data(self, num_proc=None, **kwargs):
        self.dataset = {"default": {"test": split(False)}}
        self.data_loaded = True


class LocalReranking(AbsTaskRetrieval):
    metadata = TaskMetadata(type="Reranking", name="QvlLocalReranking", main_score="ndcg_at_10",
                            prompt={"query": "Find the picture."}, **META)

    def load_data(self, num_proc=None, **kwargs):
        self.dataset = {"default": {"test": split(True)}}
        self.data_loaded = True


def scores_of(result):
    return result.task_results[0].scores["test"][0]


def test_encoder_wrapper_scores_like_our_runner(embedder, tmp_path):
    result = mteb.evaluate(MTEBEncoder(embedder), LocalTextToImage(), cache=None, show_progress_bar=False)
    ours = scores_of(result)
    paths = []
    for i in range(N):
        paths.append(str(tmp_path / f"{i}.png"))
        scene(64, 48, seed=20 + i).save(paths[-1])
    ds = EvalDataset(name="local", category="image", instruction="Find the picture.", corpus={f"d{i}": {"image": p}
                     for i, p in enumerate(paths)}, queries=tuple(Query(f"q{i}", c) for i, c in enumerate(CAPTIONS)),
                     qrels={f"q{i}": {f"d{i}": 1} for i in range(N)})
    metrics = evaluate(embedder, [ds], ks=(1, 3, 10)).datasets[0].metrics
    # binary relevance: mteb's ndcg and recall are ours; the PNG round trip is lossless
    assert ours["ndcg_at_10"] == pytest.approx(metrics["ndcg_linear@10"], abs=1e-5)
    assert ours["recall_at_1"] == pytest.approx(metrics["recall@1"], abs=1e-5)
    assert ours["recall_at_3"] == pytest.approx(metrics["recall@3"], abs=1e-5)


def test_encoder_instructions_per_side(embedder):
    import numpy as np
    from mteb.types import PromptType

    enc = MTEBEncoder(embedder, instructions={"QvlLocalReranking": "Custom instruction."})
    kw = dict(hf_split="test", hf_subset="default")
    batch = [{"text": CAPTIONS[:2]}]
    query = enc.encode(batch, task_metadata=LocalTextToImage.metadata, prompt_type=PromptType.query, **kw)
    doc = enc.encode(batch, task_metadata=LocalTextToImage.metadata, prompt_type=PromptType.document, **kw)
    custom = enc.encode(batch, task_metadata=LocalReranking.metadata, prompt_type=PromptType.query, **kw)
    own = enc.encode([{"text": CAPTIONS[:2], "instruction": ["Row instruction.", ""]}],
                     task_metadata=LocalTextToImage.metadata, prompt_type=PromptType.query, **kw)
    np.testing.assert_allclose(query, embedder.embed(CAPTIONS[:2], instruction="Find the picture."), atol=1e-6)
    np.testing.assert_allclose(doc, embedder.embed(CAPTIONS[:2]), atol=1e-6)
    np.testing.assert_allclose(custom, embedder.embed(CAPTIONS[:2], instruction="Custom instruction."), atol=1e-6)
    np.testing.assert_allclose(own[0], embedder.embed(CAPTIONS[:1], instruction="Row instruction.")[0], atol=1e-6)
    np.testing.assert_allclose(own[1], query[1], atol=1e-6)
    assert not np.allclose(query, doc, atol=1e-4)


def test_cross_encoder_wrapper_is_evaluated_by_mteb(reranker):
    wrapper = MTEBCrossEncoder(reranker)
    result = mteb.evaluate(wrapper, LocalReranking(), cache=None, show_progress_bar=False)
    assert 0.0 <= scores_of(result)["ndcg_at_10"] <= 1.0
    # predict() groups consecutive pairs by query and uses the task instruction
    images = [scene(64, 48, seed=20 + i) for i in range(2)]
    queries = [{"id": ["q0", "q0", "q1"], "text": ["a", "a", "b"]}]
    docs = [{"id": ["d0", "d1", "d0"], "image": [images[0], images[1], images[0]]}]
    got = wrapper.predict(queries, docs, task_metadata=LocalReranking.metadata, hf_split="test", hf_subset="default")
    expected = reranker.scores("a", [{"image": images[0]}, {"image": images[1]}], instruction="Find the picture.") + \
        reranker.scores("b", [{"image": images[0]}], instruction="Find the picture.")
    assert got.tolist() == pytest.approx(expected)


def test_batch_items_turns_mteb_columns_into_items():
    import numpy as np

    frames = np.zeros((2, 3, 8, 8), np.uint8)
    items = batch_items({"id": ["a", "b"], "text": ["hello", ""], "image": [None, {"bytes": b"png", "path": None}],
                         "video": [frames, None]})
    assert items[0]["text"] == "hello" and len(items[0]["video"]) == 2 and items[0]["video"][0].size == (8, 8)
    assert items[1] == {"image": b"png"}
    conversation = batch_items({"text": [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]]})
    assert conversation == [{"text": "hi\nyo"}]
    assert batch_items({"text": ["", None]}) == [{"text": "NULL"}] * 2  # as the reference embeds empty rows
