"""The shape of the package: no import circles, and no surface reaching into a model's engine."""
from __future__ import annotations

import ast
import os

import qwen3_vl_embedding

PACKAGE = os.path.dirname(qwen3_vl_embedding.__file__)
CORE = {"engine.py", "embedder.py", "reranker.py"}  # the modules that own an Engine


def _modules() -> dict[str, str]:
    out = {}
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                out[name.removesuffix(".__init__")] = path
    return out


def _runtime_imports(tree: ast.AST):
    """Import nodes, leaving out those under `if TYPE_CHECKING:` (annotations only)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skip]


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
        deps = set()
        for node in _runtime_imports(ast.parse(open(path).read())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in modules}
                continue
            base = package.split(".")
            base = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                deps.add(sub if sub in modules else target)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    graph = import_graph()
    assert "qwen3_vl_embedding.index.sqlite_store" in graph["qwen3_vl_embedding.index.backends"]
    assert cycles(graph) == []


def test_the_store_interface_imports_no_backend():
    deps = import_graph()["qwen3_vl_embedding.index.store"]
    assert not {d for d in deps if "sqlite" in d or "milvus" in d or d.endswith(".lock")}


def test_no_surface_reaches_into_an_engine():
    offenders = []
    for name, path in _modules().items():
        if os.path.basename(path) in CORE and path.startswith(PACKAGE + os.sep) and "." not in name[len("qwen3_vl_embedding."):]:
            continue
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Attribute) and node.attr == "engine":
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []


def test_the_models_satisfy_their_contracts(embedder, reranker):
    from qwen3_vl_embedding.contracts import Embedder, Scorer, ServedEmbedder

    assert isinstance(embedder, ServedEmbedder) and isinstance(embedder, Embedder)
    assert isinstance(reranker, Scorer)
    assert embedder.max_pixels == embedder.settings.max_pixels and embedder.name == embedder.engine.name


def test_the_ray_embedder_offers_the_embedder_contract():
    """RayEmbedder needs a Ray cluster to build; its class must still define every member of `Embedder`."""
    from qwen3_vl_embedding.contracts import Embedder
    from qwen3_vl_embedding.distributed import ray_embedder

    tree = ast.parse(open(ray_embedder.__file__).read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RayEmbedder")
    assigned = {t.attr for n in ast.walk(cls) if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
    defined = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    members = {m for m in dir(Embedder) if not m.startswith("_")}
    assert members == {"name", "dim", "default_instruction", "max_pixels", "text_tokenizer", "quantize", "embed",
                       "iter_embed"}
    assert members <= assigned | defined
