"""Scale curve: exact (IndexFlatIP) vs HNSW search on seeded random unit vectors.

Random unit vectors in 384 dimensions are the hard case for HNSW (no clusters, near-equal distances),
so the recall measured here is a floor for real embeddings at the same ``efSearch``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import faiss
import numpy as np

from index.embed import normalise
from index.store import HNSW_EF_SEARCH, make_index

DIM = 384
K = 10


@dataclass(frozen=True, slots=True)
class ScalePoint:
    n: int
    index: str
    build_s: float
    memory_mb: float
    p50_ms: float
    p95_ms: float
    recall_at_10: float
    ef_search: int | None


def random_unit(n: int, dim: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    """``n`` seeded random unit vectors, generated in chunks to bound the float64 temporaries."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        out[i : i + m] = normalise(rng.standard_normal((m, dim), dtype=np.float32))
    return out


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(f[:k]) & set(e)) / k for f, e in zip(found, exact, strict=True)]))


def _latency(index: faiss.Index, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], K)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def _memory_mb(index: faiss.Index) -> float:
    return len(faiss.serialize_index(index)) / 2**20


def measure(
    n: int, *, queries: int = 200, ef_sweep: tuple[int, ...] = (32, 64, 128, 256), threads: int = 2
) -> list[ScalePoint]:
    """Flat and HNSW at ``n`` vectors: build time, index size, single-query p50/p95, recall@10."""
    data = random_unit(n, DIM, seed=n)
    q = random_unit(queries, DIM, seed=7)
    faiss.omp_set_num_threads(threads)  # builds and the batched exact ground truth use every core
    t0 = time.perf_counter()
    flat = make_index(DIM, n, "flat")
    flat.add(data)
    flat_build = time.perf_counter() - t0
    _, exact = flat.search(q, K)
    t0 = time.perf_counter()
    hnsw = make_index(DIM, n, "hnsw")
    hnsw.add(data)
    hnsw_build = time.perf_counter() - t0
    del data
    faiss.omp_set_num_threads(1)  # one request = one query on one thread, as in the server
    points = []
    p50, p95 = _latency(flat, q[:100])
    points.append(ScalePoint(n, "flat", flat_build, n * DIM * 4 / 2**20, p50, p95, 1.0, None))
    hnsw_mb = _memory_mb(hnsw)
    for ef in sorted({*ef_sweep, HNSW_EF_SEARCH}):
        hnsw.hnsw.efSearch = ef
        _, found = hnsw.search(q, K)
        p50, p95 = _latency(hnsw, q[:100])
        points.append(ScalePoint(n, "hnsw", hnsw_build, hnsw_mb, p50, p95, recall_at_k(found, exact), ef))
    return points


def as_rows(points: list[ScalePoint]) -> list[dict[str, object]]:
    return [asdict(p) for p in points]
