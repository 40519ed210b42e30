"""No model load without work: the writer lock before the model, unchanged re-runs, the recorded model,
the status line while a model loads, `qvl similar` from stored vectors, and a default index."""
from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3

import pytest

from qwen3_vl_embedding.cli import common as cli_common
from qwen3_vl_embedding.cli import main
from qwen3_vl_embedding.index import open_store
from qwen3_vl_embedding.index.indexing import open_for_indexing

from media_factory import scene

REAL_LOAD = cli_common.load_embedder  # before the module's `qvl` fixture replaces it


class Loads:
    """Stands in for cli.common.load_embedder: records each call and refuses to load anything."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, args, model=None, **extra):
        self.calls.append(model or args.model)
        raise AssertionError(f"a model was loaded: {model or args.model}")


def qvl_plain(*argv: str, env: dict | None = None):
    """`qvl` in-process, without the module's `qvl` runner; (code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (env or {}).items():
            if value is None:
                mp.delenv(key, raising=False)
            else:
                mp.setenv(key, value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "files"
    (root / "sub").mkdir(parents=True)
    scene(96, 64, 1).save(root / "a.jpg", quality=90)
    scene(96, 64, 2).save(root / "sub" / "b.png")
    (root / "note.txt").write_text("lanterns over the harbour at dawn " * 12)
    open(root / "empty.png", "wb").close()  # fails: a known-bad file from the second run on
    return root


@pytest.mark.parametrize("existing", [False, True], ids=["new index", "existing index"])
def test_a_second_writer_is_refused_before_any_model_loads(folder, tmp_path, monkeypatch, qvl, existing):
    db = str(tmp_path / "db")
    if existing:
        assert qvl("index", str(folder), "--db", db, "-q").code == 2
    loads = Loads()
    monkeypatch.setattr(cli_common, "load_embedder", loads)
    # Another writer holds the lock: an index being created (no metadata yet), or an existing one.
    with open_for_indexing(db, lambda model: pytest.fail("the holder loads nothing")):
        code, out, err = qvl_plain("index", str(folder), "--db", db, "--model", str(tmp_path / "no-such-model"))
    assert code == 1 and "being written by another qvl index" in err and f"pid {os.getpid()}" in err
    assert loads.calls == []


def test_an_unchanged_index_is_updated_without_loading_a_model(folder, tmp_path, qvl, monkeypatch, tiny_model_dir):
    db = str(tmp_path / "db")
    first = qvl("index", str(folder), "--db", db, "--json")
    assert first.code == 2 and first.json()["model_loaded"] and len(first.json()["skipped"]) == 1
    loads = Loads()
    monkeypatch.setattr(cli_common, "load_embedder", loads)
    os.utime(folder / "a.jpg")  # touched, same bytes: hashed, not embedded
    again = qvl_plain("index", str(folder), "--db", db, "--json", "--model", str(tmp_path / "missing-model"))
    assert again[0] == 0, again[2]  # the empty file failed before and has not changed: not a failure now
    summary = json.loads(again[1])
    assert summary["model_loaded"] is False and summary["indexed_files"] == 0 and summary["unchanged_files"] == 3
    assert [os.path.basename(p["path"]) for p in summary["known_failed"]] == ["empty.png"]
    plain = qvl_plain("index", str(folder), "--db", db)
    assert plain[0] == 0 and "nothing to embed, no model loaded" in plain[1] and "known to fail" in plain[2]
    similar = qvl_plain("similar", str(folder / "a.jpg"), "--db", db, "--json", "--model", "/no/such/model")
    assert similar[0] == 0, similar[2]
    assert [os.path.basename(h["path"]) for h in json.loads(similar[1])] and \
        "a.jpg" not in {os.path.basename(h["path"]) for h in json.loads(similar[1])}
    info = qvl_plain("info", "--db", db)
    assert info[0] == 0 and "known-bad files (1" in info[1] and "empty.png" in info[1]
    assert loads.calls == []
    # Something to embed: now the model loads, with a status line while it does (not in JSON or -q mode).
    monkeypatch.undo()
    scene(96, 64, 3).save(folder / "c.png")
    loaded = qvl("index", str(folder), "--db", db)
    assert loaded.code == 0 and f"loading model {tiny_model_dir} ..." in loaded.err and "model loaded in" in loaded.err


def test_search_uses_the_model_recorded_in_the_index(folder, tmp_path, qvl, monkeypatch, tiny_model_dir):
    db = str(tmp_path / "db")
    # A relative --model (as typed) is recorded as an absolute path.
    monkeypatch.chdir(os.path.dirname(tiny_model_dir))
    assert qvl("index", str(folder), "--db", db, "-q", "--model", os.path.basename(tiny_model_dir),
               models=False).code == 2
    with open_store(db) as store:
        assert store.meta.model == tiny_model_dir
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QVL_MODEL", raising=False)
    seen = []
    real = cli_common.load_embedder

    def spy(args, model=None, **extra):
        seen.append(model)
        return real(args, model, **extra)

    monkeypatch.setattr(cli_common, "load_embedder", spy)
    found = qvl("search", "harbour", "--db", db, "--json", models=False)
    assert found.code == 0 and found.json() and seen == [tiny_model_dir]


def test_an_older_index_with_a_relative_or_moved_model_folder(folder, tmp_path, qvl, monkeypatch, tiny_model_dir):
    db = str(tmp_path / "db")
    assert qvl("index", str(folder), "--db", db, "-q").code == 2

    def record(model: str) -> None:
        with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:
            meta = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'index'").fetchone()[0])
            conn.execute("UPDATE meta SET value = ? WHERE key = 'index'", (json.dumps({**meta, "model": model}),))

    # Older indexes recorded --model as typed: relative to where `qvl index` ran.
    parent = os.path.dirname(tiny_model_dir)
    record(os.path.join(".", os.path.basename(tiny_model_dir)))
    monkeypatch.chdir(parent)
    assert qvl("search", "harbour", "--db", db, "--json", models=False).code == 0
    monkeypatch.chdir(tmp_path)  # elsewhere: not found, and the message says what to pass
    lost = qvl("search", "harbour", "--db", db, models=False)
    assert lost.code == 1 and "which is not there any more" in lost.err and "--model PATH" in lost.err
    record("/moved/away/Qwen3-VL-Embedding-2B")
    lost = qvl("search", "harbour", "--db", db, models=False)
    assert lost.code == 1 and "/moved/away/Qwen3-VL-Embedding-2B" in lost.err and "QVL_MODEL" in lost.err
    # An indexing run with the model's new place (it computes the index's vectors) remembers it.
    scene(80, 60, 7).save(folder / "new.jpg")
    assert qvl("index", str(folder), "--db", db, "-q", "--model", tiny_model_dir, models=False).code == 0
    assert qvl("search", "harbour", "--db", db, "--json", models=False).code == 0
    info = qvl("info", "--db", db, "--json").json()
    assert info["model"] == "/moved/away/Qwen3-VL-Embedding-2B" and info["model_now_at"] == tiny_model_dir


def test_the_default_index_and_qvl_db(folder, tmp_path, qvl, monkeypatch):
    monkeypatch.delenv("QVL_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    default = str(tmp_path / "data" / "qvl" / "index")
    missing = qvl("info")
    assert missing.code == 1 and default in missing.err and "qvl index FOLDER" in missing.err
    assert qvl("index", str(folder), "-q").code == 2
    info = qvl("info", "--json").json()
    assert info["db"] == default and info["db_from"] == "default"
    assert qvl("info").out.count("the default index") == 1
    assert qvl("search", "harbour", "--json").json()
    monkeypatch.setenv("QVL_DB", str(tmp_path / "elsewhere"))
    assert qvl("index", str(folder / "sub"), "-q").code == 0
    info = qvl("info", "--json").json()
    assert info["db_from"] == "QVL_DB" and info["records"] == 1


def test_a_new_index_with_nothing_to_embed_loads_no_model_and_leaves_nothing(tmp_path, monkeypatch):
    root = tmp_path / "files"
    root.mkdir()
    open(root / "empty.jpg", "wb").close()
    (root / "notes.xyz").write_text("not indexed")
    loads = Loads()
    monkeypatch.setattr(cli_common, "load_embedder", loads)
    code, out, err = qvl_plain("index", str(root), "--db", str(tmp_path / "db"))
    assert code == 2 and "skipped" in err and "no index made yet" in out
    assert loads.calls == [] and not os.path.exists(tmp_path / "db")


def test_a_missing_model_is_explained_in_command_line_terms(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_common, "load_embedder", REAL_LOAD)
    (tmp_path / "a.txt").write_text("kites " * 30)
    code, _, err = qvl_plain("index", str(tmp_path / "a.txt"), "--db", str(tmp_path / "db"),
                             "--model", "nobody/no-such-model", env={"HF_HUB_OFFLINE": "1"})
    assert code == 1 and "--model ./models/no-such-model (or set QVL_MODEL=./models/no-such-model)" in err
    assert "model_name_or_path" not in err and not os.path.exists(tmp_path / "db")


def test_serve_db_uses_the_recorded_model(folder, tmp_path, qvl, tiny_model_dir):
    from argparse import Namespace

    from qwen3_vl_embedding.cli.serve import _index_model

    db = str(tmp_path / "db")
    assert qvl("index", str(folder), "--db", db, "-q").code == 2

    def args(db, model=None):
        return Namespace(db=db, model=model, quantize=None, device=None)

    assert _index_model(args(db)) == tiny_model_dir and _index_model(args(db, "other/model")) == "other/model"
    with pytest.raises(ValueError, match="no index there"):
        _index_model(args(str(tmp_path / "nothing")))
