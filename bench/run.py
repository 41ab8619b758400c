"""Speed figures for CiteQA, printed and written as JSON (`make bench`).

    python -m bench.run --out bench/results/latest.json [--quick] [--skip-peers] [--scale-max N]

Sections, all on this machine in one run, loopback only, every loop bounded in count and time:

* latency     /api/retrieve and /api/ask p50/p95/p99 at concurrency 1, and the bare in-process
              ``encode_queries`` time on the same questions (ratio retrieve p50 / encode p50)
* throughput  req/s at concurrency 1, 4, 16 (async httpx), micro-batching on and off
* peers       a minimal LangChain + FAISS retriever (bench/peer_langchain.py) and txtai's API, same
              model folder, same passages, each in its own venv under bench/.venvs/
* build       index build passages/s vs raw ``encode_passages`` throughput; RSS of the server
* ingest      full build vs incremental updates: one file of 100 changed, one added at 10,000 passages
              (bench/ingest.py)
* profile     cProfile of ``Pipeline.ask`` in-process: top costs beyond encoding
* encoders    every encoder backend side by side (bench/encoders.py): query encode p50, long
              passages/s, build texts/s (today's way, length-sorted, late chunking), RSS
* scale       flat vs HNSW vs IVFFlat on seeded clustered and random vectors, 10k-1M (bench/scale.py)

Benchmarks print figures; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "bench" / ".venvs"
RESULTS: dict[str, Any] = {}
REQUEST_CAP = 300  # per throughput point
TIME_CAP_S = 60.0  # per throughput point
START_TIMEOUT_S = 240.0
T = TypeVar("T")


def say(line: str = "") -> None:
    print(line, flush=True)


def questions() -> list[str]:
    with (ROOT / "eval" / "seed.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["question"] for line in f if line.strip()]


def pct(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "n": len(ms),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
    }


def fmt(s: dict[str, float]) -> str:
    return f"p50 {s['p50']:7.2f} ms  p95 {s['p95']:7.2f}  p99 {s['p99']:7.2f}  (n={s['n']})"


def rss_mb(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).memory_info().rss / 2**20)
    except ImportError:
        pass
    except Exception:  # process gone
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def in_worker(fn: Callable[[], T]) -> T:
    """Run ``fn`` on a fresh thread, as the server runs the model (anyio's pool, the batching worker).

    On this machine torch with 2 threads encodes a question ~10x slower on the main thread than on
    any other thread (see the "encode: main thread vs worker thread" figure), so in-process figures
    taken on the main thread would not compare with the server's.
    """
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run, name="bench-worker")
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- servers -------------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]


@contextmanager
def server(
    name: str, argv: list[str], env: dict[str, str], port: int, health: str = "/healthz"
) -> Iterator[Server]:
    """Start a server process, wait (bounded) until ``health`` answers, stop it on exit."""
    log = (ROOT / "bench" / "results" / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=os.environ | env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see bench/results/{name}.log")
            try:
                if httpx.get(url + health, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer {health} within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.5)
        yield Server(name, url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def citeqa_server(name: str, **env: str) -> Any:
    port = free_port()
    argv = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return server(name, argv, env, port)


# -- load generation -----------------------------------------------------------------------------------

Request = Callable[[str], dict[str, Any]]  # question -> httpx.request kwargs


def post_json(path: str, **extra: Any) -> Request:
    return lambda q: {"method": "POST", "url": path, "json": {"question": q, **extra}}


def get_query(path: str, key: str, **extra: Any) -> Request:
    return lambda q: {"method": "GET", "url": path, "params": {key: q, **extra}}


def sequential_latency(base: str, request: Request, qs: list[str], n: int) -> dict[str, float]:
    times = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for q in qs[:5]:  # warm-up
            client.request(**request(q)).raise_for_status()
        deadline = time.monotonic() + TIME_CAP_S
        for i in range(n):
            q = qs[i % len(qs)]
            t0 = time.perf_counter()
            client.request(**request(q)).raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
            if time.monotonic() > deadline:
                break
    return pct(times)


async def _throughput(base: str, request: Request, qs: list[str], concurrency: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    done = 0
    issued = 0
    errors = 0
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        deadline = time.monotonic() + TIME_CAP_S

        async def worker() -> None:
            nonlocal done, issued, errors
            while issued < REQUEST_CAP and time.monotonic() < deadline:
                q = qs[issued % len(qs)]
                issued += 1
                t0 = time.perf_counter()
                r = await client.request(**request(q))
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code == 200:
                    done += 1
                else:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {
        "concurrency": concurrency,
        "requests": done,
        "errors": errors,
        "seconds": elapsed,
        "rps": done / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)),
    }


def throughput_curve(base: str, request: Request, qs: list[str], levels: tuple[int, ...]) -> dict[str, Any]:
    points: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for q in qs[:5]:
            client.request(**request(q)).raise_for_status()
    for c in levels:
        p = asyncio.run(_throughput(base, request, qs, c))
        points[str(c)] = p
        say(
            f"    c={c:<3d} {p['rps']:7.1f} req/s  p50 {p['p50_ms']:7.1f} ms  "
            f"({p['requests']} ok, {p['errors']} errors, {p['seconds']:.1f} s)"
        )
    if "1" in points and "16" in points:
        points["c16_over_c1"] = points["16"]["rps"] / points["1"]["rps"]
        say(f"    c16/c1 = {points['c16_over_c1']:.2f}")
    return points


# -- sections ------------------------------------------------------------------------------------------


def load_encoder() -> Any:
    """The configured backend's bare encoder (``CITEQA_ENCODER_BACKEND``), as the server loads it."""
    from index.embed import load_encoder as load
    from service.settings import Settings

    s = Settings()
    return load(
        s.model, s.models_dir, s.encoder_backend, batch_size=s.encode_batch_size, threads=s.torch_threads
    )


def encode_latency(encoder: Any, qs: list[str], n: int) -> dict[str, float]:
    for q in qs[:3]:
        encoder.encode_queries([q])
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        encoder.encode_queries([qs[i % len(qs)]])
        times.append((time.perf_counter() - t0) * 1000)
    return pct(times)


def interleaved_latency(
    base: str, request: Request, encoder: Any, qs: list[str], n: int
) -> tuple[dict[str, float], dict[str, float]]:
    """HTTP retrieve and bare in-process encode of the same question, alternating, so that whatever
    else runs on the machine weighs on both figures of the ratio alike."""
    http_ms, enc_ms = [], []
    with httpx.Client(base_url=base, timeout=60) as client:
        for q in qs[:5]:
            client.request(**request(q)).raise_for_status()
            encoder.encode_queries([q])
        deadline = time.monotonic() + 2 * TIME_CAP_S
        for i in range(n):
            q = qs[i % len(qs)]
            t0 = time.perf_counter()
            client.request(**request(q)).raise_for_status()
            t1 = time.perf_counter()
            encoder.encode_queries([q])
            t2 = time.perf_counter()
            http_ms.append((t1 - t0) * 1000)
            enc_ms.append((t2 - t1) * 1000)
            if time.monotonic() > deadline:
                break
    return pct(http_ms), pct(enc_ms)


def section_citeqa(qs: list[str], n: int, levels: tuple[int, ...]) -> None:
    encoder = load_encoder()  # the bare encoder, in this process, for the encode figure
    say("== encode: main thread vs worker thread (bare encoder, in-process, 30 questions) ==")
    main_thread = encode_latency(encoder, qs, 30)
    worker_thread = in_worker(lambda: encode_latency(encoder, qs, 30))
    say(f"  main thread    {fmt(main_thread)}")
    say(f"  worker thread  {fmt(worker_thread)}")
    RESULTS["encode_thread"] = {"main": main_thread, "worker": worker_thread}
    say("== CiteQA server (micro-batching on) ==")
    with citeqa_server("citeqa-batching", CITEQA_MICRO_BATCHING="true") as srv:
        retrieve, enc = in_worker(
            lambda: interleaved_latency(srv.url, post_json("/api/retrieve", top_k=5), encoder, qs, n)
        )
        say(f"  /api/retrieve c=1  {fmt(retrieve)}")
        say(f"  bare encode_queries([q]) in-process, interleaved  {fmt(enc)}")
        ratio = retrieve["p50"] / enc["p50"]
        say(f"  retrieve p50 / encode p50 = {ratio:.2f}  (target <= 1.15)")
        ask = sequential_latency(srv.url, post_json("/api/ask", top_k=5), qs, n)
        say(f"  /api/ask      c=1  {fmt(ask)}")
        rss = rss_mb(srv.proc.pid)
        say(f"  server RSS after latency runs: {rss:.0f} MB" if rss else "  server RSS: unavailable")
        say("  throughput /api/retrieve:")
        tp_on = throughput_curve(srv.url, post_json("/api/retrieve", top_k=5), qs, levels)
        say("  throughput /api/ask:")
        tp_ask = throughput_curve(srv.url, post_json("/api/ask", top_k=5), qs, levels)
    say("== CiteQA server (micro-batching off) ==")
    with citeqa_server("citeqa-plain", CITEQA_MICRO_BATCHING="false") as srv:
        retrieve_off = sequential_latency(srv.url, post_json("/api/retrieve", top_k=5), qs, n)
        say(f"  /api/retrieve c=1  {fmt(retrieve_off)}")
        say("  throughput /api/retrieve:")
        tp_off = throughput_curve(srv.url, post_json("/api/retrieve", top_k=5), qs, levels)
    gain = tp_on["16"]["rps"] / tp_off["16"]["rps"] if "16" in tp_on and "16" in tp_off else None
    if gain:
        say(f"  micro-batching gain at c=16: {gain:.2f}x")
    RESULTS["latency"] = {
        "retrieve": retrieve,
        "ask": ask,
        "encode": enc,
        "retrieve_over_encode_p50": ratio,
        "retrieve_without_batching": retrieve_off,
    }
    RESULTS["throughput"] = {
        "retrieve_batching_on": tp_on,
        "ask_batching_on": tp_ask,
        "retrieve_batching_off": tp_off,
        "batching_gain_c16": gain,
        "request_cap": REQUEST_CAP,
        "time_cap_s": TIME_CAP_S,
    }
    RESULTS["server_rss_mb"] = rss
    RESULTS["_encoder"] = encoder


def model_folder() -> Path:
    from index.model import prepare_model
    from service.settings import Settings

    s = Settings()
    return Path(prepare_model(s.model, s.models_dir)).resolve()


def _venv(name: str, packages: list[list[str]], probe: str) -> Path | None:
    """A peer's venv under bench/.venvs/: reuse it when ``probe`` imports, else (re)install (bounded)."""
    py = VENVS / name / "bin" / "python"
    ok = py.exists() and subprocess.run([py, "-c", probe], capture_output=True, timeout=120).returncode == 0
    if ok:
        return py
    say(f"  installing {name} into {py.parent.parent} ...")
    log = ROOT / "bench" / "results" / f"{name}-install.log"
    try:
        with log.open("ab") as f:
            if not py.exists():
                subprocess.run([sys.executable, "-m", "venv", str(py.parent.parent)], check=True, timeout=120)
            for pkgs in packages:  # torch first: the local CPU wheel, never a CUDA build
                subprocess.run(
                    [py, "-m", "pip", "install", "-q", *pkgs],
                    check=True,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    timeout=1200,
                )
        probe_run = subprocess.run([py, "-c", probe], capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as exc:
        say(f"  cannot install {name}: {exc} (see {log})")
        return None
    if probe_run.returncode != 0:
        say(f"  {name} installed but does not import: {probe_run.stderr.decode()[-300:]}")
        return None
    return py


def _peer_figures(name: str, srv: Server, request: Request, qs: list[str], n: int) -> dict[str, Any]:
    lat = sequential_latency(srv.url, request, qs, n)
    say(f"  {name} retrieve c=1  {fmt(lat)}")
    tp = throughput_curve(srv.url, request, qs, (1, 16))
    rss = rss_mb(srv.proc.pid)
    say(f"  {name} RSS: {rss:.0f} MB" if rss else f"  {name} RSS: unavailable")
    return {"latency": lat, "throughput": tp, "rss_mb": rss}


def served_passages() -> Path:
    """The passages CiteQA serves (id, text), as JSON lines for the peers to index the same texts; the
    index is brought up to date first (as `citeqa serve` would)."""
    from index.store import assemble, read_manifest
    from service.pipeline import ensure_index
    from service.settings import Settings

    settings = Settings()
    ensure_index(settings, RESULTS.get("_encoder") or load_encoder())
    saved = assemble(settings.resolved_index_dir, read_manifest(settings.resolved_index_dir))
    out = ROOT / "bench" / "results" / "passages.jsonl"
    out.write_text(
        "".join(json.dumps({"id": p.id, "text": p.text}, ensure_ascii=False) + "\n" for p in saved.passages),
        encoding="utf-8",
    )
    return out


def section_peers(qs: list[str], n: int) -> None:
    say("== peers (same model folder, same passages, same machine) ==")
    model = model_folder()
    passages = served_passages()
    peers: dict[str, Any] = {}
    missing: dict[str, str] = {}
    torch = ["torch==2.13.0"]

    # langchain-huggingface no longer depends on sentence-transformers (HuggingFaceEmbeddings imports it
    # lazily), so it is named here; the probe imports it, so a venv without it is reinstalled.
    py = _venv(
        "langchain",
        [
            torch,
            [
                "langchain-community",
                "langchain-huggingface",
                "sentence-transformers",
                "faiss-cpu",
                "fastapi",
                "uvicorn",
            ],
        ],
        "import langchain_community, langchain_huggingface, sentence_transformers, faiss, fastapi",
    )
    if py is None:
        missing["langchain"] = "could not be installed (see bench/results/langchain-install.log)"
    else:
        port = free_port()
        argv = [
            str(py),
            str(ROOT / "bench" / "peer_langchain.py"),
            "--model",
            str(model),
            "--passages",
            str(passages),
            "--port",
            str(port),
        ]
        try:
            with server("peer-langchain", argv, {}, port) as srv:
                peers["langchain"] = _peer_figures(
                    "langchain", srv, post_json("/api/retrieve", top_k=5), qs, n
                )
        except RuntimeError as exc:
            missing["langchain"] = f"did not run: {exc}"
    py = _venv("txtai", [torch, ["txtai[api]"]], "import txtai.api")
    if py is None:
        missing["txtai"] = "could not be installed (see bench/results/txtai-install.log)"
    else:
        try:
            peers["txtai"] = _run_txtai(py, model, passages, qs, n)
        except (RuntimeError, httpx.HTTPError) as exc:
            missing["txtai"] = f"did not run: {exc}"
    for name, why in missing.items():  # loudly: a half-empty peer table must not pass unnoticed
        say("  " + "!" * 100)
        say(f"  !! PEER {name.upper()} MISSING FROM THIS RUN: {why}")
        say("  " + "!" * 100)
    ours = RESULTS.get("latency", {}).get("retrieve", {}).get("p50")
    ours_tp = RESULTS.get("throughput", {}).get("retrieve_batching_on", {}).get("16", {}).get("rps")
    for name, fig in peers.items():
        if ours:
            fig["their_p50_over_ours"] = fig["latency"]["p50"] / ours
            say(f"  {name}: their retrieve p50 / ours = {fig['their_p50_over_ours']:.2f}")
        if ours_tp and "16" in fig["throughput"]:
            fig["our_c16_rps_over_theirs"] = ours_tp / fig["throughput"]["16"]["rps"]
            say(f"  {name}: our c16 req/s / theirs = {fig['our_c16_rps_over_theirs']:.2f}")
    RESULTS["peers"] = peers
    RESULTS["peers_missing"] = missing


def _run_txtai(py: Path, model: Path, passages: Path, qs: list[str], n: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="citeqa-bench-txtai-"))
    config = work / "config.yml"
    config.write_text(
        "writable: true\n"
        "embeddings:\n"
        f"  path: {json.dumps(str(model))}\n"
        "  content: true\n"
        "  backend: faiss\n"
        "  instructions:\n"
        '    query: "query: "\n'
        '    data: "passage: "\n',
        encoding="utf-8",
    )
    port = free_port()
    uvicorn = py.parent / "uvicorn"
    argv = [
        str(uvicorn),
        "txtai.api:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    try:
        with server("peer-txtai", argv, {"CONFIG": str(config)}, port, health="/count") as srv:
            with passages.open(encoding="utf-8") as f:
                docs = [{"id": p["id"], "text": p["text"]} for p in map(json.loads, f)]
            httpx.post(srv.url + "/add", json=docs, timeout=120).raise_for_status()
            httpx.get(srv.url + "/index", timeout=300).raise_for_status()
            return _peer_figures("txtai", srv, get_query("/search", "query", limit=5), qs, n)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def section_build(encoder: Any) -> None:
    from index.ingest import embedding_text, update_index
    from index.store import read_manifest
    from service.settings import Settings

    say("== index build (seed corpus) ==")
    s = Settings()
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-index-") as tmp:
        reports = [
            update_index(
                s.documents_dir,
                Path(tmp) / f"index-{i}",
                encoder,
                max_tokens=s.max_passage_tokens,
                batch_size=s.encode_batch_size,
            )
            for i in range(3)
        ]
        best = min(reports, key=lambda r: r.seconds)
        from index.store import assemble

        saved = assemble(Path(tmp) / "index-0", read_manifest(Path(tmp) / "index-0"))
    texts_n = best.passages + best.sentences
    texts = [embedding_text(p.text) for p in saved.passages] + [
        embedding_text(saved.passages[sp.passage_row].text[sp.start : sp.end]) for sp in saved.sentences
    ]
    raw = []
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(0, len(texts), s.encode_batch_size):
            encoder.encode_passages(texts[i : i + s.encode_batch_size])
        raw.append(time.perf_counter() - t0)
    build_rate = texts_n / best.seconds
    raw_rate = len(texts) / min(raw)
    say(
        f"  build: {best.passages} passages + {best.sentences} sentences in {best.seconds:.2f} s "
        f"= {build_rate:.1f} texts/s ({best.passages / best.seconds:.1f} passages/s)"
    )
    say(
        f"  raw encode_passages on the same {len(texts)} texts: {raw_rate:.1f} texts/s; "
        f"build / raw = {build_rate / raw_rate:.2f}"
    )
    RESULTS["build"] = {
        "passages": best.passages,
        "sentences": best.sentences,
        "seconds": best.seconds,
        "texts_per_s": build_rate,
        "passages_per_s": best.passages / best.seconds,
        "raw_encode_texts_per_s": raw_rate,
        "build_over_raw": build_rate / raw_rate,
        "index_type": saved.store.index_type,
    }


def section_ingest(encoder: Any) -> None:
    from bench.ingest import run
    from eval.convert import find_datasets_dir

    datasets = find_datasets_dir(ROOT)
    if datasets is None:
        say("== ingest: skipped, ../shared/datasets (XQuAD) is not beside the repository ==")
        return
    RESULTS["ingest"] = run(encoder, datasets, say)


def section_profile(qs: list[str], rounds: int = 1) -> None:
    from service.pipeline import Pipeline
    from service.settings import Settings

    say("== profile: Pipeline.ask in-process (micro-batching off, so encoding shows in this thread) ==")
    pipeline = Pipeline.load(Settings(micro_batching=False), build=False)
    for q in qs[:5]:
        pipeline.ask(q)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(rounds):
        for q in qs:
            pipeline.ask(q)
    prof.disable()
    total = time.perf_counter() - t0
    calls = rounds * len(qs)
    stats = pstats.Stats(prof, stream=io.StringIO())
    raw: Any = stats.stats  # type: ignore[attr-defined]
    cum: dict[str, float] = {}
    own: dict[str, float] = {}
    for (file, line, func), (_cc, _nc, tt, ct, _callers) in raw.items():
        key = f"{Path(file).name}:{line}({func})"
        cum[key] = ct
        model_code = ("torch", "transformers", "sentence_transformers", "tokenizers")
        lib = any(p in file or p in func for p in model_code)
        if not lib:
            own[key] = tt
    encode = sum(ct for (f, _l, fn), (*_x, ct, _c) in raw.items() if fn == "encode_queries" and "embed" in f)
    say(
        f"  {calls} asks in {total:.2f} s = {total / calls * 1000:.2f} ms/ask; "
        f"encode_queries {encode / calls * 1000:.2f} ms/ask ({encode / total:.0%})"
    )
    stages = ("search_batch", "_combine", "_dense", "answer", "check_sentences", "highlights", "search")
    staged = {
        k: v / calls * 1000
        for k, v in cum.items()
        if k.split("(")[-1].rstrip(")") in stages and ("index" in k or "service" in k or ".py" in k)
    }
    say("  project stages (cumulative ms/ask):")
    for k, v in sorted(staged.items(), key=lambda kv: -kv[1])[:10]:
        say(f"    {v:7.3f}  {k}")
    say("  top own-time functions outside the model (ms/ask):")
    top = sorted(own.items(), key=lambda kv: -kv[1])[:12]
    for k, v in top:
        say(f"    {v / calls * 1000:7.3f}  {k}")
    RESULTS["profile"] = {
        "asks": calls,
        "ms_per_ask": total / calls * 1000,
        "encode_ms_per_ask": encode / calls * 1000,
        "stages_ms_per_ask": staged,
        "top_own_ms_per_ask": {k: v / calls * 1000 for k, v in top},
    }


def section_encoders(rounds: int, paragraphs: int) -> None:
    from bench.encoders import BACKENDS, run_speed, speed_table

    say(f"== encoder backends side by side (bench/encoders.py; XQuAD zh, {paragraphs} paragraphs) ==")
    say("   each backend in a fresh process; best of rounds; build = passages + sentences, texts/s")
    runs = run_speed(BACKENDS, rounds, paragraphs)
    table, best = speed_table(runs)
    say(table)
    RESULTS["encoders"] = {"best": best, "runs": runs, "paragraphs": paragraphs}


def section_scale(scale_max: int) -> None:
    from bench.scale import run

    say("== scale: flat vs HNSW vs IVFFlat, dim 384, 1 search thread (bench/scale.py) ==")
    say("   clustered/dense = e5-like mixtures (NN cosine ~0.85); random = isotropic (worst case)")
    sizes = tuple(n for n in (10_000, 100_000, 1_000_000) if n <= scale_max)
    datasets = ("clustered", "dense", "random")
    RESULTS["scale"] = run(sizes, datasets, 100_000, None, say=say) | {"scale_max": scale_max}


def main() -> None:
    global REQUEST_CAP
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--requests", type=int, default=200, help="Requests per latency figure.")
    parser.add_argument("--quick", action="store_true", help="Scale curve up to 100k only.")
    parser.add_argument("--scale-max", type=int, default=1_000_000)
    parser.add_argument(
        "--only",
        default="encoders,citeqa,peers,build,ingest,profile,scale",
        help="Comma-separated sections to run.",
    )
    parser.add_argument("--encoder-rounds", type=int, default=1, help="Rounds of the backend table.")
    parser.add_argument("--paragraphs", type=int, default=240, help="XQuAD zh paragraphs for the build.")
    parser.add_argument("--tp-requests", type=int, default=REQUEST_CAP, help="Requests per throughput point.")
    args = parser.parse_args()
    REQUEST_CAP = args.tp_requests
    sections = set(args.only.split(","))
    scale_max = min(args.scale_max, 100_000) if args.quick else args.scale_max
    os.chdir(ROOT)
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    qs = questions()
    RESULTS["meta"] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "questions": len(qs),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "sections": sorted(sections),
        "loadavg_start": os.getloadavg(),
    }
    levels = (1, 4, 16)
    say(f"load average before: {os.getloadavg()} (other jobs on this machine skew every figure)")
    steps: list[tuple[str, Callable[[], None]]] = [
        ("encoders", lambda: section_encoders(args.encoder_rounds, args.paragraphs)),
        ("citeqa", lambda: section_citeqa(qs, args.requests, levels)),
        ("peers", lambda: section_peers(qs, args.requests)),
        ("build", lambda: in_worker(lambda: section_build(RESULTS.get("_encoder") or load_encoder()))),
        ("ingest", lambda: in_worker(lambda: section_ingest(RESULTS.get("_encoder") or load_encoder()))),
        ("profile", lambda: in_worker(lambda: section_profile(qs))),
        ("scale", lambda: section_scale(scale_max)),
    ]
    for name, step in steps:
        if name not in sections:
            continue
        try:
            step()
        except Exception as exc:  # one broken section must not lose the others' figures
            say(f"  section {name} failed: {type(exc).__name__}: {exc}")
            RESULTS.setdefault("failed", {})[name] = f"{type(exc).__name__}: {exc}"
    RESULTS.pop("_encoder", None)
    RESULTS["meta"]["loadavg_end"] = os.getloadavg()
    say(f"load average after: {os.getloadavg()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(RESULTS, indent=2, ensure_ascii=False), encoding="utf-8")
    say(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
