"""The example scripts run as a user runs them (in-process with runpy), with the tiny checkpoint."""
from __future__ import annotations

import json
import os
import runpy
import sys

import pytest
from eval_chat_server import FakeChatServer

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def run_example(name, args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(os.path.join(EXAMPLES, name), run_name="__main__")
    return capsys.readouterr().out


@pytest.mark.parametrize("name, expect", [
    ("zero_shot_classification.py", "accuracy: "),
    ("knn_classification.py", "accuracy: "),
    ("clustering.py", "against the colors: v-measure "),
])
def test_classification_and_clustering_examples(name, expect, tiny_model_dir, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    out = run_example(name, ["--model", tiny_model_dir], monkeypatch, capsys)
    assert expect in out
    if name == "zero_shot_classification.py":
        assert len([line for line in out.splitlines() if " -> " in line]) == 9


def test_visual_qa_example(tiny_model_dir, tiny_untied_dir, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    out = run_example("visual_qa.py", ["--model", tiny_model_dir, "--reranker", tiny_untied_dir,
                                       "--answers", "red", "blue"], monkeypatch, capsys)
    lines = out.splitlines()
    assert lines[0].startswith("Q: What colour") and lines[-1] in ("A: red", "A: blue")
    assert len([line for line in lines if line.startswith("  ")]) == 2


def test_rag_example_against_a_local_fake_endpoint(tiny_model_dir, tiny_untied_dir, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with FakeChatServer(reply="Paused in May.") as server:
        out = run_example("rag.py", ["--model", tiny_model_dir, "--reranker", tiny_untied_dir, "--chat-url",
                                     server.url, "--chat-model", "local-vlm", "--k", "4", "--top-k", "3"],
                          monkeypatch, capsys)
    assert out.splitlines()[-1] == "Paused in May." and out.startswith("sources: ")
    body = server.requests[0]["json"]
    assert body["model"] == "local-vlm"
    content = body["messages"][1]["content"]
    assert sum(p["type"] == "text" and p["text"].startswith("[") for p in content) == 3
    assert content[-1]["text"].startswith("Question: What happened to the square project")
    # without an endpoint it prints the prompt instead
    out = run_example("rag.py", ["--model", tiny_model_dir], monkeypatch, capsys)
    assert "no --chat-url" in out
    # a URL with no chat there (such as a `qvl serve`): a message, no traceback
    with FakeChatServer(status=404) as server:
        with pytest.raises(SystemExit) as failed:
            run_example("rag.py", ["--model", tiny_model_dir, "--chat-url", server.url], monkeypatch, capsys)
    assert "there is no chat endpoint there" in str(failed.value.code) and "qvl serve" in str(failed.value.code)


def test_evaluation_example_prints_the_table(tiny_model_dir, monkeypatch, capsys, tmp_path):
    data = str(tmp_path / "demo")
    out = run_example("evaluation_demo.py", ["--model", tiny_model_dir, "--data", data], monkeypatch, capsys)
    assert "| **All** | 4 |" in out and "| shapes-doc | visdoc | retrieval | global | 9 | 9 | ndcg_linear@5 |" in out
    assert json.loads(open(os.path.join(data, "result.json")).read())["model"] == tiny_model_dir
