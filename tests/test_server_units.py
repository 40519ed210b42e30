"""Server pieces without a model or a socket: the batcher over the library's batching loop, errors, config."""
from __future__ import annotations

import base64
import os

import numpy as np
import pytest
import torch

from waiting import wait_for

from qwen3_vl_embedding.batching import run_batches
from qwen3_vl_embedding.errors import InputError, LimitError, MediaError, MediaPolicyError
from qwen3_vl_embedding.server.batcher import Batcher, Closed, QueueFull
from qwen3_vl_embedding.server.config import ServerConfig
from qwen3_vl_embedding.server.errors import from_input_error, validation_message
from qwen3_vl_embedding.server.jobs import encode_vector, ranked


class FakeEngine:
    """Engine.run over the real batching loop: a prompt is a string, its row is [len], "bad*" fails, "boom" crashes."""

    def __init__(self):
        self.runs: list[list[str]] = []

    @staticmethod
    def prepare(prompt: str) -> str:
        if prompt.startswith("bad"):
            raise LimitError("too big", limit="max_image_pixels", value=7, field="image")
        return prompt

    def run(self, prompts, head, *, on_error, stats, **_):
        prompts = list(prompts)
        self.runs.append(prompts)
        if "boom" in prompts and len(prompts) > 1:
            raise RuntimeError("a run failed")
        yield from run_batches(prompts, estimate=len, prepare=self.prepare, length=len, on_error=on_error,
                               stats=stats, workers=1,
                               forward=lambda samples: head(torch.tensor([[float(len(s))] for s in samples])))


def make(engine=None, **kw) -> Batcher:
    options = dict(max_tokens=1000, wait_s=0.2, max_queue=100)
    options.update(kw)
    engine = engine or FakeEngine()
    return Batcher("test", lambda prompts, stats: engine.run(prompts, lambda h: h * 2, on_error="skip", stats=stats),
                   **options)


def test_queued_jobs_share_one_run_and_get_their_own_rows():
    engine = FakeEngine()
    batcher = make(engine)
    jobs = [["a", "bb"], ["ccc"], ["dddd", "e", "ff"]]
    futures = [batcher.submit(p, 1) for p in jobs]
    results = [f.result(10) for f in futures]
    assert engine.runs == [[p for job in jobs for p in job]]
    for prompts, result in zip(jobs, results):
        assert [float(r[0]) for r in result.rows] == [2.0 * len(p) for p in prompts]  # the head ran
        assert result.token_counts == [len(p) for p in prompts] and result.failures == []
    batcher.close()


def test_finish_runs_on_the_worker_thread_and_only_without_failures():
    import threading

    batcher = make()
    seen = []

    def finish(rows):
        seen.append(threading.current_thread().name)
        return [float(r[0]) + 0.5 for r in rows]

    ok = batcher.submit(["ab", "c"], 1, finish)
    bad = batcher.submit(["bad", "c"], 1, finish)
    assert ok.result(10).rows == [4.5, 2.5]
    assert bad.result(10).rows[0] is None and len(bad.result(10).failures) == 1
    assert seen == ["qvl-batcher-test"]  # torch work never on the caller's (event loop's) thread
    crash = batcher.submit(["x"], 1, lambda rows: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        crash.result(10)


def test_token_budget_and_disabled_batching_bound_each_run():
    engine = FakeEngine()
    batcher = make(engine, max_tokens=25)
    futures = [batcher.submit([f"job{i}"], 10) for i in range(5)]
    [f.result(10) for f in futures]
    assert [len(run) for run in engine.runs] == [2, 2, 1]
    alone = FakeEngine()
    off = make(alone, enabled=False)
    [f.result(10) for f in [off.submit(["x"], 1) for _ in range(3)]]
    assert [len(run) for run in alone.runs] == [1, 1, 1]


def test_a_bad_input_fails_its_own_job_with_its_error_type():
    batcher = make()
    good, bad = batcher.submit(["fine", "ok"], 1), batcher.submit(["x", "bad one"], 1)
    assert good.result(10).failures == [] and len(good.result(10).rows) == 2
    result = bad.result(10)
    assert result.rows[1] is None and float(result.rows[0][0]) == 2.0
    (failure,) = result.failures
    assert failure.index == 1 and isinstance(failure.error, LimitError)
    assert failure.error.index == 1 and failure.error.limit == "max_image_pixels" and failure.error.value == 7


def test_a_crashed_merged_run_is_retried_one_job_at_a_time():
    engine = FakeEngine()
    batcher = make(engine)
    ok, crash = batcher.submit(["fine"], 1), batcher.submit(["boom"], 1)
    assert float(ok.result(10).rows[0][0]) == 8.0
    assert float(crash.result(10).rows[0][0]) == 8.0  # "boom" alone runs fine in the fake
    assert engine.runs == [["fine", "boom"], ["fine"], ["boom"]]


def test_queue_limit_cancellation_and_close():
    engine = FakeEngine()
    batcher = make(engine, max_queue=3, wait_s=0.3)
    first = batcher.submit(["a", "b"], 1)
    with pytest.raises(QueueFull):
        batcher.submit(["c", "d"], 1)
    # the worker takes `first` off the queue and waits (0.3 s) for more; `gone` is cancelled either way
    wait_for(lambda: not batcher._queue, "the worker takes the first job")  # noqa: SLF001
    gone = batcher.submit(["never"], 1)
    assert gone.cancel()
    assert len(first.result(10).rows) == 2
    batcher.close(10)
    assert engine.runs == [["a", "b"]] and batcher.depth == 0
    with pytest.raises(Closed):
        batcher.submit(["late"], 1)


def test_close_finishes_queued_jobs():
    batcher = make(wait_s=0.5)
    futures = [batcher.submit([f"q{i}"], 1) for i in range(3)]
    batcher.close(10)
    assert all(f.done() and f.exception() is None for f in futures)


def test_encode_vector_base64_is_little_endian_float32():
    v = np.array([1.5, -2.25, 3.0e-8], dtype=np.float32)
    raw = base64.b64decode(encode_vector(v, "base64"))
    assert raw == v.astype("<f4").tobytes() and len(raw) == 12
    assert encode_vector(v, "float") == [1.5, -2.25, float(np.float32(3.0e-8))]


def test_ranked_orders_by_score_then_position():
    assert ranked([0.1, 0.9, 0.5, 0.9], None) == [1, 3, 2, 0]
    assert ranked([0.1, 0.9, 0.5, 0.9], 2) == [1, 3]


@pytest.mark.parametrize("error,status,code", [
    (LimitError("x", limit="max_image_pixels", value=5), 422, "limit_exceeded"),
    (LimitError("x", limit="max_bytes", value=5), 413, "limit_exceeded"),
    (MediaPolicyError("no"), 403, "media_not_allowed"),
    (MediaError("broken"), 422, "invalid_media"),
    (InputError("bad"), 400, "invalid_input"),
])
def test_library_errors_map_to_statuses(error, status, code):
    api = from_input_error(error.located(index=2, field_prefix="image"), "input")
    assert (api.status, api.code, api.param) == (status, code, "input[2].image")
    assert set(api.body()["error"]) == {"message", "type", "param", "code"}
    if isinstance(error, LimitError):
        assert f"limit {error.limit}={error.value}" in api.message
    query = from_input_error(InputError("empty", field="query.image", index=3), "documents")
    assert query.param == "query.image"


def test_validation_messages_drop_union_tags():
    errors = [{"loc": ("body", "input", "str"), "msg": "Input should be a valid string"},
              {"loc": ("body", "input", "list[union[str,Item]]", 0, "Item", "imgae"), "msg": "Extra inputs"}]
    message, param = validation_message(errors)
    assert param == "input[0].imgae" and message.startswith("input[0].imgae: Extra inputs")
    message, param = validation_message([{"type": "json_invalid", "loc": ("body", 3), "msg": "x",
                                          "ctx": {"error": "Expecting value"}}])
    assert "not valid JSON" in message and param is None


def test_config_is_safe_by_default_and_validated(tmp_path):
    policy = ServerConfig().media_policy()
    assert ServerConfig().host == "127.0.0.1" and ServerConfig().api_key is None
    assert (policy.allow_local, policy.allow_remote, policy.block_private) == (False, False, True)
    link = tmp_path / "link"
    os.symlink(tmp_path, link)
    local = ServerConfig(allow_local_dir=str(link), allow_remote_media=True).media_policy()
    assert local.allow_local and local.local_root == os.path.realpath(tmp_path) and local.block_private
    for bad in (dict(max_items=10, max_queue=5), dict(allow_local_dir=str(tmp_path / "missing")), dict(api_key=" "),
                dict(max_body_bytes=0), dict(request_timeout=0)):
        with pytest.raises(ValueError):
            ServerConfig(**bad)


def test_create_app_refuses_models_under_another_media_policy():
    from types import SimpleNamespace

    from qwen3_vl_embedding.media import MediaPolicy
    from qwen3_vl_embedding.server import create_app

    def model(policy):
        return SimpleNamespace(media_policy=policy)

    config = ServerConfig()
    with pytest.raises(ValueError, match="media_policy=config.media_policy"):
        create_app(config, embedder=model(MediaPolicy()))  # the library's permissive default
    with pytest.raises(ValueError, match="media_policy"):
        create_app(config, reranker=model(ServerConfig(allow_remote_media=True).media_policy()))
    with pytest.raises(ValueError):
        create_app(config)


def test_text_requests_are_tokenised_by_the_handler_media_by_the_worker(embedder, media):
    """The worker then only runs the model for text; a bad text is still reported by the worker."""
    from qwen3_vl_embedding.inputs import to_item
    from qwen3_vl_embedding.preprocess import Sample
    job, cost = embedder.prepare(to_item("a short text"))
    assert isinstance(job, Sample) and cost == job.length
    image = embedder.prompt(to_item({"image": media["scene.jpg"]}), None)
    job, cost = embedder.costed(image)
    assert job is image and cost == embedder.engine.preprocessor.estimate(image)
    bad = embedder.prompt(to_item("<|image_pad|>"), None)
    assert embedder.costed(bad) == (bad, 1)
