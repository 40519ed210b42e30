"""Qwen3VLReranker on a tiny checkpoint with a separate lm_head: scores, batching, ordering."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from qwen3_vl_embedding import InputError, Qwen3VLReranker


def test_score_is_sigmoid_of_yes_minus_no_logits(reranker, tiny_untied_dir):
    """Against the full causal LM: sigmoid(logit[yes] - logit[no]) at the last position."""
    from transformers import AutoTokenizer, Qwen3VLForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(tiny_untied_dir)
    lm = Qwen3VLForConditionalGeneration.from_pretrained(tiny_untied_dir, dtype=torch.float32).eval()
    from qwen3_vl_embedding.inputs import to_item
    from qwen3_vl_embedding.prompts import reranking_prompt

    prompt = reranking_prompt(to_item({"text": "a red square"}), to_item({"text": "A red block slides."}),
                              reranker.default_instruction)
    sample = reranker.engine.preprocessor.prepare(prompt)
    ids = torch.tensor([sample.input_ids])
    with torch.no_grad():
        logits = lm(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1]
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    want = torch.sigmoid(logits[yes] - logits[no]).item()
    got = reranker.process({"query": {"text": "a red square"}, "documents": [{"text": "A red block slides."}]})
    assert abs(got[0] - want) < 1e-6


def test_only_two_lm_head_rows_are_kept(reranker):
    assert reranker.score_weight.shape == (reranker.engine.hidden_size,)
    assert not any("lm_head" in n for n, _ in reranker.engine.backbone.model.named_parameters())


def test_batched_scores_equal_one_pair_at_a_time(reranker, media):
    query = {"text": "a red square moving right"}
    docs = [{"text": "A red block slides across."}, {"image": media["scene.jpg"]},
            {"text": "shapes", "image": media["scene.jpg"]}, {"video": media["frames"][:4]},
            {"text": "a much longer document " * 30}, {}]
    batched = reranker.process({"query": query, "documents": docs})
    singles = [reranker.process({"query": query, "documents": [d]})[0] for d in docs]
    assert len(batched) == len(docs)
    assert max(abs(a - b) for a, b in zip(batched, singles)) < 1e-5
    assert all(0 < s < 1 for s in batched)


def test_image_and_video_queries(reranker, media):
    docs = [{"text": "a photo"}, {"image": media["noise.png"]}]
    for query in ({"image": media["scene.jpg"]}, {"video": media["clip.mp4"]}, {"video": media["frames"][:3]}):
        scores = reranker.process({"query": query, "documents": docs, "fps": 2.0, "max_frames": 4})
        assert len(scores) == 2 and all(0 < s < 1 for s in scores)


def test_rerank_sorts_and_limits(reranker):
    docs = ["alpha", "beta gamma", "delta", "epsilon zeta eta"]
    scores = reranker.scores("query text", docs)
    results = reranker.rerank("query text", docs, top_k=3, return_documents=True)
    assert len(results) == 3
    assert [r.score for r in results] == sorted(scores, reverse=True)[:3]
    assert all(docs[r.index] == r.document and math.isclose(scores[r.index], r.score) for r in results)
    assert reranker.rerank("query text", docs)[0].document is None
    with pytest.raises(ValueError):
        reranker.rerank("q", docs, top_k=0)


def test_instruction_matters(reranker):
    a = reranker.process({"query": {"text": "q"}, "documents": [{"text": "d"}]})
    b = reranker.process({"query": {"text": "q"}, "documents": [{"text": "d"}], "instruction": "Judge topicality."})
    assert a != b


def test_process_edge_cases(reranker, media):
    assert reranker.process({"query": {"text": "q"}, "documents": []}) == []
    with pytest.raises(InputError, match="query is empty"):
        reranker.process({"query": {}, "documents": [{"text": "d"}]})
    with pytest.raises(InputError, match="unknown keys"):
        reranker.process({"query": {"text": "q"}, "docs": []})
    with pytest.raises(InputError) as info:
        reranker.process({"query": {"text": "q"}, "documents": [{"text": "d"}, {"image": media["corrupt.jpg"]}]})
    assert info.value.index == 1 and info.value.field == "image"
    with pytest.raises(InputError) as info:
        reranker.process({"query": {"image": media["corrupt.jpg"]}, "documents": [{"text": "d"}]})
    assert info.value.field == "query.image"


def test_skip_mode_scores_the_rest(reranker, media):
    results = reranker.rerank("q", [{"text": "d"}, {"image": media["corrupt.jpg"]}, "e"], on_error="skip")
    assert sorted(r.index for r in results) == [0, 2]
    assert reranker.last_stats.failures[0].index == 1


def test_tied_checkpoint_reranks(tiny_model_dir):
    rr = Qwen3VLReranker(tiny_model_dir, workers=1)
    emb = rr.engine.backbone.model.get_input_embeddings().weight
    tok = rr.engine.tokenizer
    want = emb[tok.convert_tokens_to_ids("yes")] - emb[tok.convert_tokens_to_ids("no")]
    assert torch.allclose(rr.score_weight, want.float())
    assert len(rr.process({"query": {"image": Image.new("RGB", (64, 64))}, "documents": ["x"]})) == 1


def test_shared_prefix_equals_the_full_forward(reranker, media):
    """Image and video queries, image and video documents: the common prefix computed once."""
    from qwen3_vl_embedding.shared_prefix import PrefixRunner

    engine = reranker.engine
    docs = [{"text": "A red block."}, {"image": media["noise.png"], "text": "x"}, {"video": media["frames"][:4]},
            {"text": "a longer document " * 12}, {"video": media["clip.mp4"]}]
    for query in ({"text": "a red square", "image": media["scene.jpg"]}, {"video": media["frames"][:6], "text": "q"},
                  {"text": "just text"}):
        prompts = reranker.pair_prompts(query, docs, fps=2.0, max_frames=6)
        samples = [engine.preprocessor.prepare(p) for p in prompts]
        runner = PrefixRunner(engine.backbone)
        calls = []
        real = engine.backbone.model.forward

        def counting(*a, **kw):
            calls.append(kw["input_ids"].shape)
            return real(*a, **kw)

        engine.backbone.model.forward = counting
        try:
            shared = runner.last_hidden(samples, engine.preprocessor.pad_id)
            again = runner.last_hidden(samples[:2], engine.preprocessor.pad_id)
        finally:
            del engine.backbone.model.forward
        full = engine.backbone.last_hidden(samples, engine.preprocessor.pad_id)
        assert (shared - full).abs().max() < 1e-4
        assert (again - full[:2]).abs().max() < 1e-4
        # one prefix pass, one batch pass, then the kept prefix is reused: one more pass
        assert len(calls) == 3 and calls[0][0] == 1 and calls[1][0] == len(docs)
        scores_shared = torch.sigmoid(shared @ reranker.score_weight)
        scores_full = torch.sigmoid(full @ reranker.score_weight)
        assert (scores_shared - scores_full).abs().max() < 1e-5


def test_prefix_helpers():
    from qwen3_vl_embedding.shared_prefix import common_prefix, runs, safe_cut

    assert common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix([[5], [6]]) == 0
    assert safe_cut([1, 9, 8, 8, 8, 7], 4, {9, 8}) == 1  # inside a vision span: back before it
    assert safe_cut([1, 9, 8, 7, 2], 4, {9, 8}) == 4
    assert runs([8, 8, 1, 8, 2, 8, 8], 8) == 3
