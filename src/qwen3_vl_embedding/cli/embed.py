"""`qvl embed`: inputs (JSONL lines or files) -> embeddings as JSONL, .npy or Parquet."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Iterator

from .common import EXIT_OK, EXIT_PARTIAL, load_embedder, media_options, show_progress, with_limit_hint

EPILOG = """\
examples:
  qvl embed photo.jpg clip.mp4 notes.md -o vectors.npy
  qvl embed inputs.jsonl --dim 512 --precision int8 -o vectors.parquet
  echo '{"text": "a cat", "instruction": "Find images of this."}' | qvl embed - --text "a dog"

Inputs: a .jsonl file (one library input per line: {"text"|"image"|"video"|"content"|"instruction"...}
or a string), '-' for JSONL on stdin, --text TEXT, or files: images, videos, text files (whole) and PDFs
(one input per page). Outputs by extension: .jsonl (default, stdout), .npy (rows in input order; rows
of failed inputs are NaN or 0) or .parquet (columns index, source, embedding). int8/uint8 use --ranges
FILE.npy, or calibrate on these inputs and write OUT.ranges.npy beside the output.
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("embed", parents=[common], help="embed inputs to JSONL, .npy or Parquet",
                              description="Embed texts, images, videos and JSONL inputs.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="files, .jsonl files, or - for JSONL on stdin")
    p.add_argument("--text", action="append", default=[], help="a text to embed (repeatable)")
    p.add_argument("-o", "--output", default=None, help="output file: .jsonl, .npy or .parquet [default: stdout JSONL]")
    p.add_argument("--instruction", default=None, help="instruction for inputs that set none [default: the model's]")
    p.add_argument("--ranges", default=None, metavar="FILE.npy", help="int8/uint8 calibration ranges to use")
    media_options(p)
    p.set_defaults(handler=run)


def read_inputs(paths: list[str], texts: list[str], max_pixels: int) -> list[tuple[str, Any]]:
    """(label, library input) for every input named on the command line, in order; a text is its own label."""
    from ..filetypes import kind_of
    from ..index.ingest import UnitError, pdf_units, read_text

    out: list[tuple[str, Any]] = []
    for path in paths:
        if path == "-":
            out += _jsonl(sys.stdin, "stdin")
            continue
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such file: {path}")
        ext = os.path.splitext(path)[1].lower()
        if ext in (".jsonl", ".ndjson"):
            with open(path, encoding="utf-8") as f:
                out += _jsonl(f, path)
        elif kind_of(path) == "image":
            out.append((path, {"image": os.path.abspath(path)}))
        elif kind_of(path) == "video":
            out.append((path, {"video": os.path.abspath(path)}))
        elif kind_of(path) == "pdf":
            try:
                out += [(f"{path}#page={u.page}", u.input) for u in pdf_units(os.path.abspath(path), max_pixels)]
            except UnitError as e:
                raise ValueError(f"{path}: {e}") from None
        elif kind_of(path) == "text":
            try:
                out.append((path, {"text": read_text(path)}))
            except UnitError as e:
                raise ValueError(f"{path}: {e}") from None
        else:
            raise ValueError(f"{path}: unsupported file type; give images, videos, PDFs, text files or .jsonl")
    out += [(t, {"text": t}) for t in texts]
    return out


def _jsonl(lines, name: str) -> Iterator[tuple[str, Any]]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield f"{name}:{n}", json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{name} line {n} is not JSON: {e.msg}") from None


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..index.ingest import close_documents_quietly
    from ..quantize import QuantRanges, quantize

    fmt = _format(args.output)
    embedder = load_embedder(args)
    inputs = read_inputs(args.inputs, args.text, embedder.max_pixels)
    if not inputs:
        raise ValueError("nothing to embed: pass files, a .jsonl file, - (stdin) or --text")
    try:
        floats, failures = embedder.embed([x for _, x in inputs], dim=args.dim, instruction=args.instruction,
                                          on_error="skip", show_progress=show_progress(args))
    finally:
        close_documents_quietly()
    floats = np.concatenate([floats, np.full((len(inputs) - len(floats), floats.shape[1]), np.nan, np.float32)]) \
        if len(floats) < len(inputs) else floats
    ok = ~np.isnan(floats).any(axis=1)
    ranges = None
    if args.precision in ("int8", "uint8"):
        if args.ranges:
            ranges = QuantRanges.load(args.ranges)
        else:
            if ok.sum() < 2:
                raise ValueError("int8/uint8 need calibration ranges: pass --ranges FILE.npy or embed at least "
                                 "2 inputs")
            ranges = QuantRanges.from_embeddings(floats[ok])
            if args.output:
                ranges.save(_ranges_path(args.output))
                if not args.quiet:
                    print(f"qvl: calibrated int8 ranges on these inputs: {_ranges_path(args.output)} "
                          f"(pass it as --ranges to embed queries alike)", file=sys.stderr)
    vectors = quantize(np.where(ok[:, None], floats, 0.0), args.precision, ranges)
    if args.precision in ("float32", "float16"):
        vectors[~ok] = np.nan
    labels = [label for label, _ in inputs]
    _write(fmt, args.output, vectors, labels, ok)
    for f in failures:
        print(f"qvl: skipped {labels[f.index]}: {with_limit_hint(f.cause)}", file=sys.stderr)
    return EXIT_PARTIAL if failures else EXIT_OK


def _format(output: str | None) -> str:
    if output is None:
        return "jsonl"
    ext = os.path.splitext(output)[1].lower()
    formats = {".jsonl": "jsonl", ".ndjson": "jsonl", ".npy": "npy", ".parquet": "parquet"}
    if ext not in formats:
        raise ValueError(f"unknown output format {ext or output!r}: use .jsonl, .npy or .parquet")
    return formats[ext]


def _ranges_path(output: str) -> str:
    return os.path.splitext(output)[0] + ".ranges.npy"


def _write(fmt: str, output: str | None, vectors, labels: list[str], ok) -> None:
    import numpy as np

    if fmt == "npy":
        np.save(output, vectors)
        return
    rows = [i for i in range(len(labels)) if ok[i]]
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError("Parquet output needs pyarrow: pip install pyarrow") from None
        dim = vectors.shape[1]
        flat = pa.array(vectors[rows].reshape(-1))
        table = pa.table({"index": pa.array(rows, pa.int64()), "source": pa.array([labels[i] for i in rows]),
                          "embedding": pa.FixedSizeListArray.from_arrays(flat, dim)})
        pq.write_table(table, output)
        return
    out = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        for i in rows:
            values = vectors[i].tolist()
            out.write(json.dumps({"index": i, "source": labels[i], "embedding": values}) + "\n")
    finally:
        if output:
            out.close()
