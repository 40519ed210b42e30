"""Sharing a common prefix's key/value cache: equal to the full forward pass, and never across different pixels."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from qwen3_vl_embedding.inputs import to_item
from qwen3_vl_embedding.preprocess import Sample
from qwen3_vl_embedding.shared_prefix import PrefixRunner, media_runs


def picture(seed: int, size=(64, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def samples_of(embedder, items, instruction=None) -> list[Sample]:
    prep = embedder.engine.preprocessor
    return [prep.prepare(embedder.prompt(to_item(x), instruction)) for x in items]


class CountingModel:
    """Records the width of every forward pass of the backbone's model."""

    def __init__(self, engine):
        self.model = engine.backbone.model
        self.widths: list[tuple[int, int]] = []

    def __enter__(self):
        real = self.model.forward

        def counting(*a, **kw):
            self.widths.append(tuple(kw["input_ids"].shape))
            return real(*a, **kw)

        self.model.forward = counting
        return self

    def __exit__(self, *exc):
        del self.model.forward


def full(engine, samples):
    return engine.backbone.last_hidden(samples, engine.preprocessor.pad_id)


def test_an_embedding_batch_shares_its_template_and_equals_the_full_pass(embedder):
    engine = embedder.engine
    samples = samples_of(embedder, ["a dog", "a red kite over the harbour at dusk", "x", "a dog"])
    runner = PrefixRunner(engine.backbone)
    with CountingModel(engine) as counted:
        shared = runner.last_hidden(samples, engine.preprocessor.pad_id)
    prefix = counted.widths[0][1]
    assert counted.widths[0][0] == 1 and prefix >= 8  # system text and instruction, once
    assert counted.widths[1] == (4, max(s.length for s in samples) - prefix)
    assert (shared - full(engine, samples)).abs().max() < 1e-5


def test_a_single_input_reuses_the_kept_prefix(embedder):
    engine = embedder.engine
    runner = PrefixRunner(engine.backbone)
    runner.last_hidden(samples_of(embedder, ["one", "two words"]), engine.preprocessor.pad_id)
    single = samples_of(embedder, ["a query of its own"])
    with CountingModel(engine) as counted:
        got = runner.last_hidden(single, engine.preprocessor.pad_id)
    assert len(counted.widths) == 1 and counted.widths[0][1] < single[0].length
    assert (got - full(engine, single)).abs().max() < 1e-5
    other = samples_of(embedder, ["another instruction"], instruction="Find the caption")
    with CountingModel(engine) as counted:  # begins otherwise: the whole sequence runs
        got = runner.last_hidden(other, engine.preprocessor.pad_id)
    assert counted.widths == [(1, other[0].length)]
    assert (got - full(engine, other)).abs().max() < 1e-5


def test_images_of_one_size_are_never_shared(embedder):
    """Two different pictures of the same size give the same token ids: only the pixels differ."""
    engine = embedder.engine
    samples = samples_of(embedder, [{"image": picture(1)}, {"image": picture(2)}, {"image": picture(3)}])
    assert samples[0].input_ids == samples[1].input_ids == samples[2].input_ids
    runner = PrefixRunner(engine.backbone)
    shared = runner.last_hidden(samples, engine.preprocessor.pad_id)
    want = full(engine, samples)
    assert (shared - want).abs().max() < 1e-5
    assert (want[0] - want[1]).abs().max() > 1e-3  # the pictures do make a difference
    # the kept prefix stops before the image, so a later picture of that size is not taken for it
    later = samples_of(embedder, [{"image": picture(4)}])
    assert (runner.last_hidden(later, engine.preprocessor.pad_id) - full(engine, later)).abs().max() < 1e-5


def test_a_reranker_query_image_is_shared_only_when_it_is_the_same_tensor(reranker):
    engine = reranker.engine
    prep = engine.preprocessor
    query = {"image": picture(5), "text": "what is this"}
    docs = ["first", "second document", "third"]
    samples = [prep.prepare(p) for p in reranker.pair_prompts(query, [to_item(d) for d in docs])]
    assert all(s.images[0] is samples[0].images[0] for s in samples)  # the recent-media cache
    runner = PrefixRunner(engine.backbone)
    with CountingModel(engine) as counted:
        shared = runner.last_hidden(samples, prep.pad_id)
    assert counted.widths[0][0] == 1 and counted.widths[1][1] < samples[0].length - 8
    assert (shared - full(engine, samples)).abs().max() < 1e-5
    # the same ids with another picture: the kept prefix does not apply
    other = [prep.prepare(p) for p in reranker.pair_prompts({"image": picture(6), "text": "what is this"},
                                                            [to_item("first")])]
    assert other[0].input_ids == samples[0].input_ids and other[0].images[0] is not samples[0].images[0]
    with CountingModel(engine) as counted:
        got = runner.last_hidden(other, prep.pad_id)
    assert counted.widths == [(1, other[0].length)]
    assert (got - full(engine, other)).abs().max() < 1e-5


def test_text_positions_are_the_models_own(embedder):
    engine = embedder.engine
    samples = samples_of(embedder, ["short", "a somewhat longer text than that"])
    inputs = engine.backbone.token_inputs(samples, engine.preprocessor.pad_id)
    ours = PrefixRunner(engine.backbone)._positions(samples, inputs)
    theirs, _ = engine.backbone.model.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                                     attention_mask=inputs["attention_mask"])
    mask = inputs["attention_mask"].bool()
    assert torch.equal(ours[:, mask], theirs[:, mask])


@pytest.mark.parametrize("ids, groups, want", [
    ([1, 7, 7, 2, 7, 3], [], [(1, "images", 0), (4, "images", 1)]),
    ([8, 8, 1, 8, 1, 8, 8, 7], [2, 1], [(0, "videos", 0), (3, "videos", 0), (5, "videos", 1), (7, "images", 0)]),
    ([1, 2, 3], [], []),
])
def test_media_runs(ids, groups, want):
    assert list(media_runs(ids, 7, 8, groups)) == want
