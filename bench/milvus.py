"""The Milvus store next to the files store: ingest rows/s, search latency and served /api/retrieve
(printed, not asserted).

    python -m bench.milvus [--ingest 20000] [--sizes 10000,100000] [--requests 60] [--tp-requests 200]
                           [--footprint 20000] [--only ingest,search,replicas,footprint]
                           [--out bench/results/milvus.json]

Runs milvus-lite 2.5.1's real engine (a separate process on loopback, ``index.milvus.MilvusEngine``) on a
temporary ``.db``. Data: the ``clustered`` synthetic set of ``bench.scale`` (dim 384, e5-like
neighbourhoods), seeded.

* ingest: one segment of N passages and N sentences written through the store seam (``write_segment`` +
  ``write_manifest``, the commit: for Milvus insert, flush and the head row), then read back
  (``read_segment``), for ``FilesStore`` and ``MilvusStore``; rows/s counts passages + sentences.
* search: top-10 latency of one query per call (p50/p95 over 100), Milvus FLAT and IVF_FLAT (nlist and
  nprobe as the FAISS IVF of ``index.store``) next to FAISS flat and IVFFlat in process, with recall@10
  against exact search. Milvus figures include the gRPC round trip on loopback.
* replicas: ``/api/retrieve`` (top_k 5, the seed questions, real HTTP) p50 at concurrency 1 and req/s at
  concurrency 16 for (a) one CiteQA server on the files store, (b) one on ``CITEQA_STORE=milvus``, (c) two
  replicas (two processes) on that Milvus engine with the requests spread round-robin over both, (d) one
  server on that Milvus with ``CITEQA_MILVUS_SEARCH=engine`` (and whether it returns (b)'s passages). The
  replicas share this machine's cores, so (c) measures correctness (both answer alike) and overhead, not
  scale-out. Loops and servers are ``bench.run``'s.
* footprint: a larger collection (N synthetic passages of ~300 characters, 4 sentences each, ``clustered``
  vectors) written into Milvus under the real model's fingerprint, then loaded by a fresh replica process
  per ``CITEQA_MILVUS_SEARCH`` mode: its RSS with the model loaded, after loading the collection and after
  30 questions (``Pipeline.retrieve``, in-process, p50 reported), and the load time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import bench.run as served
from bench.scale import dataset, recall_at_k
from index.milvus import MilvusEngine, MilvusStore
from index.store import (
    IVF_NPROBE,
    DocumentRecord,
    FaissStore,
    FilesStore,
    IndexStore,
    Manifest,
    SegmentData,
    SentenceSpan,
    ivf_lists,
    make_index,
)
from index.types import Passage

DIM = 384
K = 10
QUERIES = 100


def pct(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
    }


def segment(n: int, vectors: np.ndarray) -> SegmentData:
    passages = tuple(
        Passage(
            id=f"doc{i // 10}:{i % 10}",
            document_id=f"doc{i // 10}",
            title=f"Document {i // 10}",
            paragraph=i % 10,
            text=f"Paragraph {i} of a synthetic document, about {i % 97} things. 第{i}段。",
            start=0,
            end=40,
            lang="en",
        )
        for i in range(n)
    )
    return SegmentData(
        passages,
        vectors,
        tuple(SentenceSpan(i, 0, 20) for i in range(n)),
        vectors,
        tuple(("paragraph", str(i), "synthetic") for i in range(n)),
    )


def ingest(store: IndexStore, data: SegmentData) -> dict[str, float]:
    rows = len(data.passages) + len(data.sentences)
    t0 = time.perf_counter()
    info = store.write_segment(data, 1)
    manifest = Manifest(
        model="bench", model_fingerprint="bench", dimension=DIM, chunking={}, generation=1, segments=(info,)
    )
    store.write_manifest(manifest)
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = store.read_segment(info, verify=False)
    read_s = time.perf_counter() - t0
    assert np.array_equal(back.passage_vectors, data.passage_vectors) and back.passages == data.passages
    return {
        "rows": rows,
        "write_s": round(write_s, 2),
        "write_rows_s": round(rows / write_s),
        "read_s": round(read_s, 2),
        "read_rows_s": round(rows / read_s),
    }


def milvus_search(store: MilvusStore, data: np.ndarray, queries: np.ndarray, exact: np.ndarray) -> list[dict]:
    from pymilvus import DataType, MilvusClient

    client = store.client
    out = []
    for index_type in ("FLAT", "IVF_FLAT"):
        name = f"bench_{index_type.lower()}_{len(data)}"
        if client.has_collection(name):
            client.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        params = client.prepare_index_params()
        extra = {"nlist": ivf_lists(len(data))} if index_type == "IVF_FLAT" else {}
        params.add_index("vector", index_type=index_type, metric_type="IP", params=extra)
        client.create_collection(name, schema=schema, consistency_level="Strong")
        t0 = time.perf_counter()
        for i in range(0, len(data), 2000):
            client.insert(
                name, [{"id": j, "vector": data[j].tolist()} for j in range(i, min(i + 2000, len(data)))]
            )
        client.flush(name)
        client.create_index(name, params)
        client.load_collection(name)
        build_s = time.perf_counter() - t0
        search = {"nprobe": IVF_NPROBE} if index_type == "IVF_FLAT" else {}
        found = np.full((len(queries), K), -1, dtype=np.int64)
        ms = []
        for qi, q in enumerate(queries):
            t = time.perf_counter()
            hits = client.search(
                name, [q.tolist()], limit=K, search_params={"metric_type": "IP", "params": search}
            )
            ms.append((time.perf_counter() - t) * 1000)
            ids = [h["id"] for h in hits[0]]
            found[qi, : len(ids)] = ids
        out.append(
            {
                "engine": f"milvus {index_type}",
                "n": len(data),
                "build_s": round(build_s, 1),
                **pct(ms[10:]),
                "recall@10": round(recall_at_k(found, exact), 3),
            }
        )
        client.drop_collection(name)
    return out


def faiss_search(data: np.ndarray, queries: np.ndarray, exact: np.ndarray) -> list[dict]:
    out = []
    for kind in ("flat", "ivf"):
        t0 = time.perf_counter()
        store = FaissStore(DIM, make_index(DIM, len(data), kind))
        store.add(data)
        build_s = time.perf_counter() - t0
        found = np.full((len(queries), K), -1, dtype=np.int64)
        ms = []
        for qi, q in enumerate(queries):
            t = time.perf_counter()
            _, ids = store.search(q[None, :], K)
            ms.append((time.perf_counter() - t) * 1000)
            found[qi] = ids[0]
        out.append(
            {
                "engine": f"faiss {store.index_type}",
                "n": len(data),
                "build_s": round(build_s, 1),
                **pct(ms[10:]),
                "recall@10": round(recall_at_k(found, exact), 3),
            }
        )
    return out


def round_robin(path: str, bases: list[str], **extra: Any) -> served.Request:
    """``bench.run``'s POST request, sent to each of ``bases`` in turn (absolute URLs override the
    client's base URL)."""
    turn = itertools.cycle(bases)
    return lambda q: {"method": "POST", "url": next(turn) + path, "json": {"question": q, **extra}}


def served_figures(bases: list[str], qs: list[str], requests: int) -> dict[str, Any]:
    request = round_robin("/api/retrieve", bases, top_k=5)
    latency = served.sequential_latency(bases[0], request, qs, requests)
    served.say(f"    c=1   {served.fmt(latency)}")
    points = served.throughput_curve(bases[0], request, qs, (16,))
    return {"replicas": len(bases), "latency_c1": latency, "throughput_c16": points["16"]}


def same_answers(bases: list[str], qs: list[str]) -> bool:
    """Whether every replica returns the same passages (ids, in order) for each question."""

    def ids(client: httpx.Client, base: str, q: str) -> tuple[str, ...]:
        r = client.post(base + "/api/retrieve", json={"question": q, "top_k": 5})
        r.raise_for_status()
        return tuple(p["id"] for p in r.json()["passages"])

    with httpx.Client(timeout=60) as client:
        return all(len({ids(client, b, q) for b in bases}) == 1 for q in qs)


def replicas(tmp: Path, requests: int) -> dict[str, Any]:
    qs = served.questions()
    out: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}
    served.say(
        f"== served /api/retrieve: files store, Milvus store, two replicas ({os.cpu_count()} cores) =="
    )
    served.say("   two replicas on one machine share its cores: (c) is correctness + overhead, not scale-out")
    served.say("  (a) one server, files store")
    with served.citeqa_server("milvus-bench-files", CITEQA_INDEX_DIR=str(tmp / "served-index")) as srv:
        out["files"] = served_figures([srv.url], qs, requests)
    engine = MilvusEngine(tmp / "served.db").start()
    try:
        env = {
            "CITEQA_STORE": "milvus",
            "CITEQA_MILVUS_URI": engine.uri,
            "CITEQA_MILVUS_PREFIX": "bench_served_",
            "CITEQA_MILVUS_TIMEOUT": "60",
        }
        served.say("  (b) one server, Milvus store")
        with served.citeqa_server("milvus-bench-replica-1", **env) as one:
            out["milvus"] = served_figures([one.url], qs, requests)
            served.say("  (c) two replicas on one Milvus, round-robin")
            with served.citeqa_server("milvus-bench-replica-2", **env) as two:
                out["milvus_2_replicas"] = served_figures([one.url, two.url], qs, requests)
                out["milvus_2_replicas"]["same_passages"] = same = same_answers([one.url, two.url], qs)
                served.say(f"    both replicas return the same passages for all {len(qs)} questions: {same}")
            out["milvus"]["rss_mb"] = served.rss_mb(one.proc.pid)
            served.say("  (d) one server, Milvus store, CITEQA_MILVUS_SEARCH=engine")
            with served.citeqa_server("milvus-bench-engine", **env, CITEQA_MILVUS_SEARCH="engine") as eng:
                out["milvus_engine"] = served_figures([eng.url], qs, requests)
                out["milvus_engine"]["rss_mb"] = served.rss_mb(eng.proc.pid)
                out["milvus_engine"]["same_passages_as_memory"] = same = same_answers([one.url, eng.url], qs)
                served.say(f"    the same passages as (b) for all {len(qs)} questions: {same}")
    finally:
        engine.stop()
    out["loadavg_end"] = os.getloadavg()
    served.say(f"  load average: {out['loadavg_start']} before, {out['loadavg_end']} after")
    return out


SENTENCES_PER_PASSAGE = 4
WORDS = ("tidal", "mill", "river", "grain", "harbour", "trust", "wheel", "stone", "flour", "estuary", "oak")


def synthetic_collection(n: int) -> tuple[SegmentData, list[DocumentRecord]]:
    """``n`` passages of ~300 characters (4 sentences of ~75, their BM25 tokens) in documents of 10
    passages, with ``clustered`` vectors (sentence vectors: their passage's, perturbed and normalised)."""
    vectors, _ = dataset("clustered", n)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, (n * SENTENCES_PER_PASSAGE, DIM)).astype(np.float32)
    sentence_vectors = np.repeat(vectors, SENTENCES_PER_PASSAGE, axis=0) + noise
    sentence_vectors /= np.linalg.norm(sentence_vectors, axis=1, keepdims=True)
    texts, tokens, spans = [], [], []
    for i in range(n):
        sentences = [
            " ".join(WORDS[(i * 7 + j * 3 + w) % len(WORDS)] for w in range(9)) + f" {i}-{j}. "
            for j in range(SENTENCES_PER_PASSAGE)
        ]
        text = "".join(sentences)
        at = 0
        for sentence in sentences:
            spans.append(SentenceSpan(i, at, at + len(sentence) - 1))  # its passage's row in the segment
            at += len(sentence)
        texts.append(text)
        tokens.append(tuple(text.replace(".", " ").split()))
    passages = tuple(
        Passage(
            id=f"doc{i // 10}:{i % 10 + 1}",
            document_id=f"doc{i // 10}",
            title=f"Document {i // 10}",
            paragraph=i % 10 + 1,
            text=texts[i],
            start=0,
            end=len(texts[i]),
            lang="en",
        )
        for i in range(n)
    )
    data = SegmentData(passages, vectors, tuple(spans), sentence_vectors, tuple(tokens))
    now = "2026-01-01T00:00:00+00:00"
    docs = [
        DocumentRecord(
            id=f"doc{d}",
            path=f"doc{d}.txt",
            title=f"Document {d}",
            format="text",
            encoding="utf-8",
            pages=None,
            size=0,
            mtime_ns=0,
            content_hash=f"{d:064x}",
            added=now,
            updated=now,
            segment="",  # filled in once the segment is written
            rows=(d * 10, min(n, d * 10 + 10)),
            sentence_rows=(d * 10 * SENTENCES_PER_PASSAGE, min(n, d * 10 + 10) * SENTENCES_PER_PASSAGE),
        )
        for d in range((n + 9) // 10)
    ]
    return data, docs


FOOTPRINT_CHILD = """
import json, os, sys, time
import numpy as np
import bench.run as served
from service.pipeline import Pipeline, encoder_for
from service.settings import Settings

uri, prefix, mode = sys.argv[1:4]
settings = Settings(store="milvus", milvus_uri=uri, milvus_prefix=prefix, milvus_search=mode,
                    milvus_timeout=300, micro_batching=False)
encoder = encoder_for(settings)
served.in_worker(lambda: encoder.encode_queries(["warm up"]))
model_mb = served.rss_mb(os.getpid())
t0 = time.perf_counter()
pipeline = Pipeline.load(settings, encoder=encoder, build=False)
load_s = time.perf_counter() - t0
loaded_mb = served.rss_mb(os.getpid())
qs = served.questions()[:30]
ms = []
for q in qs:
    t = time.perf_counter()
    served.in_worker(lambda: pipeline.retrieve(q, top_k=5))
    ms.append((time.perf_counter() - t) * 1000)
print(json.dumps({"mode": mode, "passages": len(pipeline.retriever.saved.passages),
                  "sentences": len(pipeline.retriever.saved.sentences), "load_s": round(load_s, 1),
                  "rss_model_mb": round(model_mb), "rss_loaded_mb": round(loaded_mb),
                  "rss_after_questions_mb": round(served.rss_mb(os.getpid())),
                  "retrieve_p50_ms": round(float(np.percentile(ms[5:], 50)), 1)}))
"""


def footprint(tmp: Path, n: int) -> dict[str, Any]:
    """RSS of a replica process after loading an ``n``-passage collection, per search mode."""
    from service.pipeline import encoder_for
    from service.settings import Settings

    encoder = encoder_for(Settings(micro_batching=False))
    out: dict[str, Any] = {"passages": n, "loadavg_start": os.getloadavg()}
    served.say(
        f"== footprint: a replica after loading {n:,} passages ({n * SENTENCES_PER_PASSAGE:,} sentences) =="
    )
    engine = MilvusEngine(tmp / "footprint.db").start()
    try:
        store = MilvusStore(engine.uri, prefix="bench_fp_", timeout=300, lock_dir=tmp)
        data, docs = synthetic_collection(n)
        t0 = time.perf_counter()
        info = store.write_segment(data, 1)
        manifest = Manifest(
            model=encoder.name,
            model_fingerprint=encoder.fingerprint,
            dimension=DIM,
            chunking={},
            generation=1,
            documents=tuple(replace(d, segment=info.name) for d in docs),
            segments=(info,),
        )
        store.write_manifest(manifest)
        out["write_s"] = round(time.perf_counter() - t0, 1)
        served.say(f"  written in {out['write_s']} s")
        for mode in ("memory", "engine"):
            child = subprocess.run(
                [sys.executable, "-c", FOOTPRINT_CHILD, engine.uri, "bench_fp_", mode],
                cwd=served.ROOT,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if child.returncode != 0:
                raise RuntimeError(f"the {mode} replica failed: {child.stderr[-2000:]}")
            out[mode] = figures = json.loads(child.stdout.strip().splitlines()[-1])
            served.say(f"  {mode:7} {json.dumps(figures)}")
    finally:
        engine.stop()
    out["loadavg_end"] = os.getloadavg()
    served.say(f"  load average: {out['loadavg_start']} before, {out['loadavg_end']} after")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ingest", type=int, default=20_000, help="passages (and as many sentences)")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--requests", type=int, default=60, help="/api/retrieve requests at concurrency 1")
    parser.add_argument(
        "--tp-requests", type=int, default=200, help="/api/retrieve requests at concurrency 16"
    )
    parser.add_argument("--footprint", type=int, default=20_000, help="passages of the footprint collection")
    parser.add_argument(
        "--only", default="ingest,search,replicas,footprint", help="Comma-separated sections to run."
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    sections = set(args.only.split(","))
    served.REQUEST_CAP = args.tp_requests
    import faiss

    faiss.omp_set_num_threads(1)
    results: dict[str, Any] = {"ingest": {}, "search": []}
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-milvus-") as tmp:
        if sections & {"ingest", "search"}:
            engine = MilvusEngine(Path(tmp) / "bench.db").start()
            try:
                store = MilvusStore(engine.uri, prefix="bench_", timeout=120, lock_dir=Path(tmp))
                if "ingest" in sections:
                    vectors, _ = dataset("clustered", args.ingest)
                    data = segment(args.ingest, np.ascontiguousarray(vectors, dtype=np.float32))
                    for label, s in (("files", FilesStore(Path(tmp) / "index")), ("milvus", store)):
                        results["ingest"][label] = figures = ingest(s, data)
                        print(f"ingest {label:7} {json.dumps(figures)}", flush=True)
                for n in (int(x) for x in args.sizes.split(",")) if "search" in sections else ():
                    data_n, queries = dataset("clustered", n)
                    data_n = np.ascontiguousarray(data_n, dtype=np.float32)
                    queries = np.ascontiguousarray(queries[:QUERIES], dtype=np.float32)
                    flat = FaissStore(DIM)
                    flat.add(data_n)
                    exact = flat.search(queries, K)[1]
                    for row in faiss_search(data_n, queries, exact) + milvus_search(
                        store, data_n, queries, exact
                    ):
                        results["search"].append(row)
                        print(f"search {json.dumps(row)}", flush=True)
            finally:
                engine.stop()
        if "replicas" in sections:
            (served.ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
            results["replicas"] = replicas(Path(tmp), args.requests)
        if "footprint" in sections:
            results["footprint"] = footprint(Path(tmp), args.footprint)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
