"""Careless and hostile inputs to the library: invalid Unicode, empty items, wrong top-level types,
and a bad input inside a merged run."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from qwen3_vl_embedding.errors import InputError
from qwen3_vl_embedding.inputs import Item, TextPart, to_item, to_items

LONE = "a\ud800b"  # a lone surrogate: what json.loads makes of "a\\ud800b"


# invalid Unicode ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("obj,field", [
    (LONE, "text"), ({"text": LONE}, "text"), ({"text": ["ok", LONE]}, "text[1]"),
    ({"content": [{"type": "text", "text": "ok"}, {"type": "text", "text": LONE}]}, "content[1]"),
    ({"text": "ok", "instruction": "find \udfff"}, "instruction"),
])
def test_lone_surrogates_are_input_errors_naming_the_item_and_field(obj, field):
    with pytest.raises(InputError, match="not valid Unicode: lone surrogate") as info:
        to_items(["fine", obj])
    assert info.value.index == 1 and info.value.field == field


def test_noncharacters_are_valid_text():
    assert to_item("a\ufffeb\uffff\U0010fffe").parts == (TextPart("a\ufffeb\uffff\U0010fffe"),)


def test_the_library_raises_input_error_not_type_error(embedder):
    for call in (lambda: embedder.process([{"text": "fine"}, {"text": LONE}]),
                 lambda: embedder.embed(["fine", LONE]),
                 lambda: list(embedder.iter_embed(["fine", LONE]))):
        with pytest.raises(InputError, match="lone surrogate") as info:
            call()
        assert info.value.index == 1
    result = embedder.embed(["fine", LONE, "also fine"], on_error="skip")
    assert [(f.index, f.field) for f in result.failures] == [(1, "text")]
    assert np.isnan(result.embeddings[1]).all() and not np.isnan(result.embeddings[[0, 2]]).any()


def test_a_text_the_tokenizer_cannot_read_is_an_input_error_of_that_input(embedder):
    """Past the item checks (a job built by hand), the tokenizer's own TypeError still becomes an InputError."""
    from qwen3_vl_embedding.prompts import embedding_prompt

    bad = embedding_prompt(Item((TextPart(LONE),)))
    assert embedder.costed(bad) == (bad, 1)  # costing fails quietly; preparing says why
    with pytest.raises(InputError, match="cannot be tokenised .TypeError") as info:
        embedder.engine.preprocessor.prepare(bad)
    assert info.value.field == "text"


def test_a_merged_run_never_fails_because_of_another_clients_input(embedder, caplog):
    """The server's batcher merges requests into one run; a job only the tokenizer can refuse fails alone."""
    from qwen3_vl_embedding.prompts import embedding_prompt
    from qwen3_vl_embedding.server.batcher import Batcher

    batcher = Batcher("embedding", lambda jobs, stats: embedder.run_jobs(jobs, None, on_error="skip", stats=stats),
                      max_tokens=10_000, wait_s=0.5, max_queue=100)
    good = [embedder.prepare(t)[0] for t in ("first client", "second text")]
    bad = embedding_prompt(Item((TextPart(LONE),)))
    with caplog.at_level(logging.WARNING, logger="qwen3_vl_embedding"):
        futures = [batcher.submit(good[:1], 1), batcher.submit([bad], 1), batcher.submit(good[1:], 1)]
        results = [f.result(60) for f in futures]
    batcher.close()
    assert "one by one" not in caplog.text
    assert results[0].failures == [] and results[2].failures == []
    assert [(f.index, f.field) for f in results[1].failures] == [(0, "text")]
    assert isinstance(results[1].failures[0].error, InputError)
    alone = embedder.head(results[0].rows[0][None])
    assert np.allclose(alone.numpy(), embedder.embed(["first client"]), atol=1e-5)


# empty items -------------------------------------------------------------------------------------------
EMPTY = [{}, {"text": None}, {"image": None}, {"video": []}, {"video": None, "image": [], "text": []}, "",
         {"text": ""}, {"content": []}]


@pytest.mark.parametrize("item", EMPTY)
def test_empty_items_are_refused_by_embed_and_iter_embed(embedder, item):
    for call in (lambda: embedder.embed(["fine", item]), lambda: list(embedder.iter_embed(["fine", item])),
                 lambda: embedder.prepare(item)):
        with pytest.raises(InputError, match="empty input: no text, image or video"):
            call()
    result = embedder.embed(["fine", item, "fine too"], on_error="skip")
    assert [(f.index, f.cause) for f in result.failures] == [(1, "empty input: no text, image or video (give at least one)")]
    assert np.isnan(result.embeddings[1]).all()


def test_process_keeps_the_reference_null_and_warns_naming_the_items(embedder):
    with pytest.warns(UserWarning, match=r"input\(s\) 1, 3 have no text, image or video"):
        out = embedder.process([{"text": "a"}, {}, {"text": "b"}, {"image": None}])
    null = embedder.process([{"text": "NULL"}])
    assert np.allclose(out[1].numpy(), null[0].numpy(), atol=1e-6) and np.allclose(out[3], out[1], atol=1e-6)


def test_qvl_embed_skips_empty_jsonl_lines_naming_them(tmp_path, embedder, reranker, tiny_model_dir,
                                                       tiny_untied_dir):
    from index_cli import qvl_runner

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "a cat"}\n{}\n{"text": null}\n"a dog"\n', encoding="utf-8")
    with qvl_runner(embedder, reranker, tiny_model_dir, tiny_untied_dir) as qvl:
        result = qvl("embed", str(jsonl), "-o", str(tmp_path / "out.npy"))
    assert result.code == 2
    assert f"skipped {jsonl}:2: empty input" in result.err and f"skipped {jsonl}:3: empty input" in result.err
    vectors = np.load(tmp_path / "out.npy")
    assert np.isnan(vectors[[1, 2]]).all() and not np.isnan(vectors[[0, 3]]).any()


# wrong top-level types ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value,expected", [
    (None, "expected a list of inputs .dicts or strings., got NoneType"),
    (5, "expected a list of inputs .dicts or strings., got int"),
    (2.5, "got float"),
    ("a text", "expected a list of inputs, got a single str; wrap it in a list"),
    (b"bytes", "got a single bytes"),
    ({"text": "x"}, "got a single dict; wrap it in a list"),
])
def test_wrong_top_level_types_say_what_is_expected(embedder, reranker, value, expected):
    for call in (lambda: embedder.process(value), lambda: embedder.embed(value), lambda: list(embedder.iter_embed(value)),
                 lambda: embedder.embed(value, on_error="skip"), lambda: to_items(value)):
        with pytest.raises(InputError, match=expected):
            call()
    if value is not None:
        with pytest.raises(InputError, match=expected.replace("inputs", "documents")):
            reranker.rerank("query", value)


def test_reranker_process_documents_must_be_a_list(reranker):
    with pytest.raises(InputError, match="expected a list of documents, got a single str"):
        reranker.process({"query": "q", "documents": "just one"})
    assert reranker.process({"query": "q", "documents": []}) == []
    with pytest.raises(InputError, match="expects a dict"):
        reranker.process(None)
