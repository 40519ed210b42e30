"""The pure pieces of the compatibility layer: text budgets, conversations, rank fields, token ids, error shapes."""
from __future__ import annotations

import pytest

from qwen3_vl_embedding.errors import InputError, LimitError
from qwen3_vl_embedding.inputs import ImagePart, TextPart, to_item
from qwen3_vl_embedding.server.compat import rank_field_documents, task_instruction
from qwen3_vl_embedding.server.errors import APIError, query_error, styled_body
from qwen3_vl_embedding.server.schemas import token_ids_of
from qwen3_vl_embedding.server.vllm import conversation_item
from qwen3_vl_embedding.truncation import first_tokens, truncate_item


@pytest.fixture(scope="module")
def tokenizer(embedder):
    return embedder.text_tokenizer


def test_first_tokens_cuts_at_a_token_boundary(tokenizer):
    text = "the quick brown fox jumps over the lazy dog"
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    for n in (1, 3, len(ids) - 1):
        kept, used = first_tokens(text, tokenizer, n)
        assert used == n and text.startswith(kept)
        assert tokenizer.encode(kept, add_special_tokens=False).ids == ids[:n]
    assert first_tokens(text, tokenizer, len(ids) + 5) == (text, len(ids))
    assert first_tokens(text, tokenizer, 0) == ("", 0)
    assert first_tokens("", tokenizer, 4) == ("", 0)


def test_truncate_item_shares_one_budget_over_the_text_parts_and_keeps_media(tokenizer):
    item = to_item({"content": [{"type": "text", "text": "one two three"}, {"type": "image", "image": "a.png"},
                                {"type": "text", "text": "four five six"}]})
    n_first = len(tokenizer.encode("one two three", add_special_tokens=False).ids)
    cut = truncate_item(item, tokenizer, n_first + 1)
    assert [type(p) for p in cut.parts] == [TextPart, ImagePart, TextPart]
    assert cut.parts[0].text == "one two three" and cut.parts[1] == item.parts[1]
    assert cut.parts[2].text == first_tokens("four five six", tokenizer, 1)[0] and cut.parts[2].text
    assert truncate_item(item, tokenizer, 1).parts[2].text == ""


def test_conversation_item():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    item = conversation_item([{"role": "system", "content": [{"type": "text", "text": "Find "},
                                                             {"type": "text", "text": "it."}]},
                              {"role": "user", "content": [image, {"type": "text", "text": "x"}]},
                              {"role": "assistant"}])
    assert item == {"content": [image, {"type": "text", "text": "x"}], "instruction": "Find it."}
    assert conversation_item([{"role": "user", "content": "just text"}]) == {
        "content": [{"type": "text", "text": "just text"}]}
    with pytest.raises(APIError) as info:
        conversation_item([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "messages[3]")
    assert info.value.param == "messages[3]" and info.value.status == 400


def test_rank_field_documents():
    docs = ["plain", {"title": "T", "body": "B", "n": 3}, {"body": "only body"}]
    assert rank_field_documents(docs, ["title", "body", "n"]) == ["plain", "title: T\nbody: B\nn: 3", "body: only body"]
    with pytest.raises(APIError, match=r"documents\[0\] has none of the rank_fields"):
        rank_field_documents([{"other": 1}], ["title"])


def test_task_instruction():
    assert task_instruction("task", None) is None
    assert task_instruction("task", "retrieval.passage") is None
    assert task_instruction("input_type", "search_query", "Mine.") == "Mine."
    with pytest.raises(APIError, match="input_type must be one of"):
        task_instruction("input_type", "nope", "Mine.")  # a bad value is refused even with an instruction


@pytest.mark.parametrize("value,ids", [
    ([1, 2, 3], [[1, 2, 3]]), ([[1], [2, 3]], [[1], [2, 3]]), ("text", None), (["a"], None), ([], None),
    ([True, 2], None), ([[1], []], None), ([[1], "a"], None), ([1.0], None),
])
def test_token_ids_of(value, ids):
    assert token_ids_of(value) == ids


def test_query_errors_keep_their_kind_and_name_the_field_sent():
    error = query_error(LimitError("too big", limit="max_image_pixels", value=5, field="query.image"), "text_1", 2)
    assert (error.status, error.param, error.code) == (422, "text_1[2].image", "limit_exceeded")
    assert query_error(InputError("the query is empty", field="query"), "queries").param == "queries"
    assert query_error(InputError("bad", field="content[0]"), "query").param == "query.content[0]"


def test_styled_bodies():
    error = APIError(429, "busy", type="rate_limit_error", code="queue_full")
    assert styled_body(error, "cohere") == {"message": "busy"}
    assert styled_body(error, "tei") == {"error": "busy", "error_type": "overloaded"}
    assert styled_body(APIError(500, "x"), "tei")["error_type"] == "backend"
    assert styled_body(error, "openai") == {"error": {"message": "busy", "type": "rate_limit_error", "param": None,
                                                      "code": "queue_full"}}
    assert styled_body(error, "rerank") == {**styled_body(error), "message": "busy"}


def test_the_warning_header_is_always_a_valid_header_value():
    from qwen3_vl_embedding.server.compat import ignored_fields
    from qwen3_vl_embedding.server.schemas import EmbeddingRequest

    request = EmbeddingRequest.model_validate({"input": "x", "a\r\nb": 1, 'q"é': 2,
                                               **{f"extra_{i:02d}": i for i in range(25)}})
    header = ignored_fields(request)["Warning"]
    assert header.isascii() and header.isprintable()
    assert header.startswith('299 qvl "ignored unknown fields: a\\r\\nb, extra_00') and header.endswith('(and 7 more)"')
    assert ignored_fields(EmbeddingRequest.model_validate({"input": "x"})) == {}
