"""The batching loop with fake prepare/forward: packing, order, errors, out-of-memory splitting."""
from __future__ import annotations

import itertools
import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen3_vl_embedding.batching import RunStats, plan_batches, plan_grouped, run_batches
from qwen3_vl_embedding.errors import InputError


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 3000), max_size=80), st.integers(1, 8000), st.one_of(st.none(), st.integers(1, 9)),
       st.sampled_from([1, 64, 512]))
def test_plan_batches_properties(costs, budget, max_items, pass_cost):
    batches = plan_batches(costs, budget, max_items, pass_cost)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(costs)))
    for b in batches:
        longest = max(costs[i] for i in b)
        assert len(b) == 1 or len(b) * longest <= budget
        assert max_items is None or len(b) <= max_items
    ordered = [i for b in batches for i in b]
    assert [costs[i] for i in ordered] == sorted(costs, reverse=True)  # longest first, runs of the sorted costs


def planned_total(costs, batches, pass_cost):
    return sum(len(b) * max(costs[i] for i in b) + pass_cost for b in batches)


def brute_force_total(costs, budget, max_items, pass_cost):
    """The least total over every split of the sorted costs into runs within the limits."""
    c = sorted(costs, reverse=True)
    best = None
    for cuts in itertools.product([False, True], repeat=max(0, len(c) - 1)):
        runs, current = [], [c[0]]
        for value, cut in zip(c[1:], cuts):
            if cut:
                runs.append(current)
                current = []
            current.append(value)
        runs.append(current)
        if any(len(r) > 1 and len(r) * r[0] > budget or max_items and len(r) > max_items for r in runs):
            continue
        total = sum(len(r) * r[0] + pass_cost for r in runs)
        best = total if best is None else min(best, total)
    return best


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=9), st.integers(1, 1500),
       st.one_of(st.none(), st.integers(1, 4)), st.integers(1, 300))
def test_plan_batches_is_optimal(costs, budget, max_items, pass_cost):
    batches = plan_batches(costs, budget, max_items, pass_cost)
    assert planned_total(costs, batches, pass_cost) == brute_force_total(costs, budget, max_items, pass_cost)


def test_plan_batches_groups_similar_lengths():
    costs = [10, 1000, 12, 990, 11, 1010]
    assert plan_batches(costs, 3100) == [[5, 1, 3], [2, 4, 0]]
    # one more pass pays for itself only when it saves more padding than it costs
    assert plan_batches([100, 90, 70, 60], 10_000, pass_cost=64) == [[0, 1, 2, 3]]
    assert plan_batches([100, 90, 70, 60], 10_000, pass_cost=16) == [[0, 1], [2, 3]]
    assert plan_batches([], 100) == []
    with pytest.raises(ValueError, match="pass_cost"):
        plan_batches([1], 100, pass_cost=0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.sampled_from("abc")), max_size=60), st.integers(1, 2000))
def test_plan_grouped_keeps_large_groups_apart(pairs, budget):
    costs = [c for c, _ in pairs]
    keys = [k for _, k in pairs]
    batches = plan_grouped(costs, keys, budget, pass_cost=32, min_group=8)
    assert sorted(i for b in batches for i in b) == list(range(len(costs)))
    large = {k for k in set(keys) if keys.count(k) >= 8}
    for b in batches:
        assert len(b) == 1 or len(b) * max(costs[i] for i in b) <= budget
        mine = {keys[i] for i in b}
        assert len(mine) == 1 or not (mine & large)  # a large group is never mixed with anything


def test_plan_grouped_examples():
    costs = [10] * 20
    keys = ["a", "b"] * 10
    batches = plan_grouped(costs, keys, 10_000)
    assert sorted(map(sorted, batches)) == [list(range(0, 20, 2)), list(range(1, 20, 2))]
    assert plan_grouped(costs, ["a", "b", "c"] + ["d"] * 17, 10_000, min_group=8) == \
        [list(range(3, 20)), [0, 1, 2]]
    assert plan_grouped(costs, None, 10_000) == plan_batches(costs, 10_000)


def fake_run(items, **kw):
    return dict(run_batches(items, estimate=lambda x: x["cost"], prepare=prepare, forward=forward,
                            length=lambda s: s["cost"], **kw))


def prepare(x):
    if x.get("bad"):
        raise InputError("broken", field="image")
    return x


def forward(samples):
    return torch.tensor([[float(s["value"])] for s in samples])


def test_every_item_once_in_any_order_of_completion():
    items = [{"cost": (i * 37) % 100 + 1, "value": i} for i in range(50)]
    out = fake_run(items, max_batch_tokens=200, window=16)
    assert sorted(out) == list(range(50))
    assert all(out[i].item() == i for i in range(50))


def test_an_estimate_may_hand_over_the_prepared_sample():
    """Costing a text means tokenising it: the sample is then not prepared a second time."""
    prepared: list[int] = []

    def estimate(x):
        return {**x, "cost": x["cost"], "early": True} if x["value"] % 2 else x["cost"]

    def prepare_counted(x):
        prepared.append(x["value"])
        return x

    items = [{"cost": i % 7 + 1, "value": i} for i in range(20)]
    out = dict(run_batches(items, estimate=estimate, prepare=prepare_counted, forward=forward,
                           length=lambda s: s["cost"], max_batch_tokens=16))
    assert sorted(out) == list(range(20)) and all(out[i].item() == i for i in range(20))
    assert sorted(prepared) == list(range(0, 20, 2))


def test_raise_mode_locates_the_item():
    items = [{"cost": 1, "value": 0}, {"cost": 1, "value": 1, "bad": True}]
    with pytest.raises(InputError) as info:
        fake_run(items)
    assert info.value.index == 1 and info.value.field == "image" and "input 1" in str(info.value)


def test_skip_mode_records_failures():
    stats = RunStats()
    items = [{"cost": 1, "value": i, "bad": i % 3 == 0} for i in range(9)]
    out = fake_run(items, on_error="skip", stats=stats)
    assert sorted(out) == [1, 2, 4, 5, 7, 8]
    assert [f.index for f in sorted(stats.failures, key=lambda f: f.index)] == [0, 3, 6]
    assert stats.failed == 3 and stats.items == 6


def test_out_of_memory_splits_and_never_drops():
    calls = []

    def picky(samples):
        calls.append(len(samples))
        if len(samples) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(samples)

    stats = RunStats()
    items = [{"cost": 1, "value": i} for i in range(8)]
    out = dict(run_batches(items, estimate=lambda x: 1, prepare=prepare, forward=picky, length=lambda s: 1,
                           max_batch_tokens=100, stats=stats))
    assert sorted(out) == list(range(8)) and all(out[i].item() == i for i in range(8))
    assert stats.oom_splits >= 3 and max(calls) == 8


def test_generator_input_is_consumed_lazily():
    """Memory stays bounded: the loop never holds more than a window plus the batches in flight."""
    consumed = []
    alive = []
    peak = [0]
    lock = threading.Lock()

    def gen():
        for i in range(1000):
            consumed.append(i)
            yield {"cost": 1, "value": i}

    def tracking_prepare(x):
        with lock:
            alive.append(x["value"])
            peak[0] = max(peak[0], len(alive))
        return x

    def tracking_forward(samples):
        with lock:
            for s in samples:
                alive.remove(s["value"])
        return forward(samples)

    seen = 0
    for pos, row in run_batches(gen(), estimate=lambda x: 1, prepare=tracking_prepare, forward=tracking_forward,
                                length=lambda s: 1, max_batch_tokens=10, window=50, prefetch=2):
        seen += 1
        if seen == 10:
            assert len(consumed) <= 100
    assert seen == 1000
    assert peak[0] <= 50 + 10


def test_bad_arguments():
    with pytest.raises(ValueError):
        plan_batches([1], 0)
    with pytest.raises(ValueError):
        fake_run([{"cost": 1, "value": 0}], on_error="ignore")
