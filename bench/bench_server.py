"""Server throughput with dynamic batching on and off: concurrent clients posting short texts to 127.0.0.1.

    .venv/bin/python bench/bench_server.py                 # 64 clients x 20 requests of 1-8 short texts
    .venv/bin/python bench/bench_server.py --quick         # 16 clients x 5 requests (a smoke run)
    .venv/bin/python bench/bench_server.py --shape 2b      # the released 2B shape (random weights; GPU)
    .venv/bin/python bench/bench_server.py --model DIR     # a real checkpoint folder
    .venv/bin/python bench/bench_server.py --rounds 3      # on/off three times, alternating (noisy machines)

Each mode starts `qvl serve` in its own process (batching on, then `--no-batching`, otherwise the same
flags), waits for /health, warms up, then runs every client's requests one after another, all clients
at once. It reports requests/s, texts/s, p50/p99 latency and errors, and the throughput ratio. Only
127.0.0.1 is contacted; the run is bounded by the request count and by --time-limit per mode.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from common import ROOT, checkpoint, machine, markdown_table, write_result

WORDS = ("the of and to in is was for on that with as by at from image video photo retrieval model search vector "
         "query document page frame scene person dog beach sunset mountain river city street car tree house").split()


def workload(clients: int, requests: int, seed: int = 0) -> list[list[list[str]]]:
    """For each client, its requests; each request 1-8 short texts (4-16 words)."""
    rng = np.random.default_rng(seed)
    return [[[" ".join(rng.choice(WORDS, size=int(rng.integers(4, 17)))) for _ in range(int(rng.integers(1, 9)))]
             for _ in range(requests)] for _ in range(clients)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, batching: bool, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "qwen3_vl_embedding", "serve", "--model", model, "--host", "127.0.0.1",
           "--port", str(port), "-q", *extra]
    if not batching:
        cmd.append("--no-batching")
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src"), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError("the server did not become healthy in time")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)  # graceful: finishes requests in flight
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Connection:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams.

    The load generator shares the machine with the server, so it must cost little: a general client
    (httpx's AsyncClient) tops out near 125 requests/s on 2 cores against a server that does nothing,
    this one near 3,500."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        data = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def load(port: int, plan: list[list[list[str]]], time_limit: float) -> dict:
    """Every client sends its requests one after another on its own connection; all clients at once.

    Each client opens its connection with one unmeasured request first. Bounded by count and time."""
    latencies: list[float] = []
    errors = 0
    texts = 0
    connections = [Connection(port) for _ in plan]

    async def one_client(conn: Connection, requests: list[list[str]]) -> None:
        nonlocal errors, texts
        for batch in requests:
            started = time.perf_counter()
            try:
                status, body = await conn.post("/v1/embeddings", {"input": batch, "encoding_format": "base64"})
                ok = status == 200 and len(json.loads(body)["data"]) == len(batch)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                ok = False
                conn.close()
            latencies.append(time.perf_counter() - started)
            if ok:
                texts += len(batch)
            else:
                errors += 1

    try:
        await asyncio.wait_for(asyncio.gather(*(c.post("/v1/embeddings", {"input": reqs[0]})
                                                for c, reqs in zip(connections, plan))), time_limit)
        started = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.gather(*(one_client(c, reqs) for c, reqs in zip(connections, plan))),
                                   time_limit)
            timed_out = False
        except asyncio.TimeoutError:
            timed_out = True
        seconds = time.perf_counter() - started
    finally:
        for c in connections:
            c.close()
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"requests": len(latencies), "texts": texts, "errors": errors, "seconds": seconds, "timed_out": timed_out,
            "requests_per_s": len(latencies) / seconds, "texts_per_s": texts / seconds,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


def run_mode(model: str, batching: bool, plan, args) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    extra = ["--batch-wait-ms", str(args.batch_wait_ms)]
    if args.device:
        extra += ["--device", args.device]
    process = start_server(model, port, batching, extra)
    try:
        wait_healthy(url, process)
        asyncio.run(load(port, [plan[0][:3]], 120))  # warm-up: first passes, allocator, threads
        row = asyncio.run(load(port, plan, args.time_limit))
    finally:
        stop_server(process)
    return {"batching": "on" if batching else "off", **row}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="small", help="random checkpoint shape: tiny, small, 2b, 8b [small]")
    p.add_argument("--model", help="a checkpoint folder (overrides --shape)")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--requests", type=int, default=20, help="requests per client")
    p.add_argument("--quick", action="store_true", help="16 clients x 5 requests")
    p.add_argument("--rounds", type=int, default=1,
                   help="run on and off this many times, alternating; the ratio reported is the median's")
    p.add_argument("--batch-wait-ms", type=float, default=5.0)
    p.add_argument("--device", default=None)
    p.add_argument("--time-limit", type=float, default=600, help="seconds per mode at most")
    args = p.parse_args()
    if args.quick:
        args.clients, args.requests = 16, 5
    model = args.model or checkpoint(args.shape)
    plan = workload(args.clients, args.requests)
    rows = []
    for r in range(args.rounds):
        rows += [{"round": r + 1, **run_mode(model, True, plan, args)},
                 {"round": r + 1, **run_mode(model, False, plan, args)}]
    on = [row["requests_per_s"] for row in rows if row["batching"] == "on"]
    off = [row["requests_per_s"] for row in rows if row["batching"] == "off"]
    ratios = [a / b if b else float("nan") for a, b in zip(on, off)]
    ratio = float(np.median(on) / np.median(off)) if np.median(off) else float("nan")
    label = args.model or args.shape
    print(f"\nServer throughput: {args.clients} clients x {args.requests} requests of 1-8 short texts, "
          f"model {label}, {machine()['cpu']}, GPU {machine()['gpu']}\n")
    print(markdown_table(rows, ["round", "batching", "requests", "texts", "errors", "seconds", "requests_per_s",
                                "texts_per_s", "p50_ms", "p99_ms"]))
    print(f"\nthroughput with batching / without, per round: {', '.join(f'{x:.2f}x' for x in ratios)}; "
          f"median on / median off: {ratio:.2f}x")
    path = write_result(f"server-{os.path.basename(str(label))}", rows, {
        "clients": args.clients, "requests_per_client": args.requests, "batch_wait_ms": args.batch_wait_ms,
        "model": label, "ratio": ratio, "ratios_per_round": ratios})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
