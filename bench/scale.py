"""Scale curve: exact (IndexFlatIP) vs approximate (HNSW, IVFFlat) search at 10k, 100k, 1M vectors.

    python -m bench.scale [--sizes 10000,100000,1000000] [--datasets clustered,random] [--hnsw-max N]

Two seeded synthetic datasets, dim 384 (multilingual-e5-small), reported separately:

* ``clustered``  a two-level mixture on the unit sphere (topics -> leaf centroids -> points), with the
                 noise scaled so that a point's nearest neighbours sit at cosine ~0.8-0.9, as real e5
                 passage embeddings do. Queries are drawn the same way. This is the figure the
                 ``auto`` index choice in ``index/store.py`` rests on. Leaves sit at cosine ~0.7 to
                 their topic, so a query's top 10 (its leaf-mates) stand well apart from the rest.
* ``dense``      the same mixture with leaves at cosine ~0.95 to their topic: the same ~0.85
                 nearest-neighbour cosine, but the 100th neighbour at ~0.8 instead of ~0.45, closer to
                 how compressed e5 cosines are. Harder for IVF (neighbours straddle lists) and HNSW.
* ``random``     isotropic random unit vectors: no neighbourhood structure at all, every distance
                 nearly equal. The pathological worst case for any ANN index; reported as a floor.

Recall@10 is measured against the exact (flat) result on the same data. Latency is one query per
call on one thread, as the server searches. Benchmarks print figures; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.embed import normalise

DIM = 384
K = 10
QUERIES = 200  # recall is averaged over these
LATENCY_QUERIES = 100  # single-query timings per configuration
TOPICS = 200
LEAVES = 4_000
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class ScalePoint:
    dataset: str
    n: int
    index: str  # "flat", "hnsw", "ivf"
    params: str  # "M=32 efC=80", "nlist=4000"
    knob: int | None  # efSearch (hnsw) or nprobe (ivf)
    build_s: float
    memory_mb: float
    p50_ms: float
    p95_ms: float
    recall_at_10: float


# -- data ----------------------------------------------------------------------------------------------


def random_unit(n: int, dim: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    """``n`` seeded random unit vectors, generated in chunks to bound the temporaries."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        out[i : i + m] = normalise(rng.standard_normal((m, dim), dtype=np.float32))
    return out


@dataclass(frozen=True)
class Mixture:
    """Leaf centroids grouped under topics, and a per-leaf noise scale."""

    leaves: np.ndarray  # (LEAVES, dim), unit
    sigma: np.ndarray  # (LEAVES,)


def mixture(dim: int = DIM, seed: int = 0, leaf_cos: float = 0.7) -> Mixture:
    """Topics on the sphere; leaves at ``leaf_cos`` to their topic; leaf noise giving NN cosine ~0.8-0.9.

    A point is ``normalise(leaf + sigma * g)``, ``g`` standard normal: two points of one leaf meet at
    cosine ~``1 / (1 + sigma^2 * dim)``. Drawing ``sigma^2 * dim`` from [0.11, 0.25] puts that between
    0.8 and 0.9; points of sibling leaves meet at ~0.4, of other topics at ~0.
    """
    rng = np.random.default_rng(seed)
    topics = normalise(rng.standard_normal((TOPICS, dim), dtype=np.float32))
    parent = rng.integers(0, TOPICS, LEAVES)
    tau = math.sqrt((1 / leaf_cos**2 - 1) / dim)
    leaves = normalise(topics[parent] + tau * rng.standard_normal((LEAVES, dim), dtype=np.float32))
    sigma = np.sqrt(rng.uniform(0.11, 0.25, LEAVES) / dim).astype(np.float32)
    return Mixture(leaves, sigma)


def clustered_unit(n: int, mix: Mixture, seed: int, chunk: int = 100_000) -> np.ndarray:
    """``n`` seeded points of ``mix`` (leaf chosen uniformly), L2-normalised."""
    rng = np.random.default_rng(seed)
    dim = mix.leaves.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        leaf = rng.integers(0, len(mix.leaves), m)
        noise = rng.standard_normal((m, dim), dtype=np.float32) * mix.sigma[leaf, None]
        out[i : i + m] = normalise(mix.leaves[leaf] + noise)
    return out


def dataset(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(passages, queries) for ``name``; the seeds depend only on ``n`` so reruns match."""
    if name == "random":
        return random_unit(n, DIM, seed=n), random_unit(QUERIES, DIM, seed=7)
    if name == "clustered":
        mix = mixture(DIM, seed=0)
        return clustered_unit(n, mix, seed=n), clustered_unit(QUERIES, mix, seed=7)
    if name == "dense":
        mix = mixture(DIM, seed=0, leaf_cos=0.95)
        return clustered_unit(n, mix, seed=n), clustered_unit(QUERIES, mix, seed=7)
    raise ValueError(f"dataset must be clustered, dense or random, got {name!r}")


# -- measuring -----------------------------------------------------------------------------------------


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(f[:k]) & set(e)) / k for f, e in zip(found, exact, strict=True)]))


def latency_ms(index: faiss.Index, queries: np.ndarray) -> tuple[float, float]:
    """p50, p95 of single-query searches (one thread, as one request is served)."""
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], K)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def index_mb(index: faiss.Index) -> float:
    """Serialised size of ``index``: vectors plus graph links (HNSW) or list ids (IVF)."""
    return len(faiss.serialize_index(index)) / 2**20


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident set (``VmRSS``) or its peak (``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ivf_nlist(n: int) -> int:
    return max(16, round(4 * math.sqrt(n)))


def build_hnsw(data: np.ndarray, m: int, ef_construction: int) -> faiss.Index:
    index = faiss.IndexHNSWFlat(data.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(data)
    return index


def build_ivf(data: np.ndarray, nlist: int, seed: int = 0) -> faiss.Index:
    """IVFFlat trained on a seeded sample of 40 points per list (k-means cost grows with the sample)."""
    quantizer = faiss.IndexFlatIP(data.shape[1])
    index = faiss.IndexIVFFlat(quantizer, data.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    rng = np.random.default_rng(seed)
    sample = min(len(data), 40 * nlist)
    index.train(data[np.sort(rng.choice(len(data), sample, replace=False))])
    index.add(data)
    return index


def measure(
    name: str,
    n: int,
    *,
    hnsw_ms: tuple[int, ...] = (32, 48),
    ef_sweep: tuple[int, ...] = (64, 128, 256, 512),
    nprobe_sweep: tuple[int, ...] = (8, 16, 32, 64, 128, 256),
    with_hnsw: bool = True,
    with_ivf: bool = True,
    ef_construction: int = 80,
    threads: int = 2,
) -> Iterator[ScalePoint]:
    """Flat, HNSW and IVFFlat on dataset ``name`` at ``n`` vectors; one point per knob setting."""
    data, q = dataset(name, n)
    faiss.omp_set_num_threads(threads)  # builds and the batched ground truth use every core
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(data)
    flat_build = time.perf_counter() - t0
    _, exact = flat.search(q, K)
    faiss.omp_set_num_threads(1)
    p50, p95 = latency_ms(flat, q[:LATENCY_QUERIES])
    yield ScalePoint(name, n, "flat", "", None, flat_build, n * DIM * 4 / 2**20, p50, p95, 1.0)
    del flat

    builds: list[tuple[str, str, float, faiss.Index]] = []
    nlist = ivf_nlist(n)
    if with_ivf:
        faiss.omp_set_num_threads(threads)
        t0 = time.perf_counter()
        ivf = build_ivf(data, nlist)
        builds.append(("ivf", f"nlist={nlist}", time.perf_counter() - t0, ivf))
    for m in hnsw_ms if with_hnsw else ():
        faiss.omp_set_num_threads(threads)
        t0 = time.perf_counter()
        index = build_hnsw(data, m, ef_construction)
        builds.append(("hnsw", f"M={m} efC={ef_construction}", time.perf_counter() - t0, index))
    del data
    for kind, params, build_s, index in builds:
        mb = index_mb(index)
        knobs = nprobe_sweep if kind == "ivf" else ef_sweep
        for knob in knobs:
            if kind == "ivf":
                if knob > nlist:
                    continue
                faiss.extract_index_ivf(index).nprobe = knob
            else:
                faiss.downcast_index(index).hnsw.efSearch = knob  # type: ignore[attr-defined]
            faiss.omp_set_num_threads(threads)
            _, found = index.search(q, K)
            faiss.omp_set_num_threads(1)
            p50, p95 = latency_ms(index, q[:LATENCY_QUERIES])
            yield ScalePoint(name, n, kind, params, knob, build_s, mb, p50, p95, recall_at_k(found, exact))


def best(points: list[ScalePoint], n: int, dataset: str, min_recall: float = 0.95) -> ScalePoint | None:
    """The lowest-p50 approximate configuration at ``n`` reaching ``min_recall``."""
    ok = [
        p
        for p in points
        if p.n == n and p.dataset == dataset and p.index != "flat" and p.recall_at_10 >= min_recall
    ]
    return min(ok, key=lambda p: p.p50_ms, default=None)


def describe(p: ScalePoint) -> str:
    knob = {"hnsw": "efS", "ivf": "nprobe"}.get(p.index, "")
    knob_s = f"{knob}={p.knob}" if p.knob is not None else ""
    return (
        f"  {p.dataset:9s} n={p.n:>9,} {p.index:4s} {p.params:14s} {knob_s:11s} build {p.build_s:7.1f} s  "
        f"{p.memory_mb:8.1f} MB  p50 {p.p50_ms:7.3f} ms  p95 {p.p95_ms:7.3f} ms  "
        f"recall@10 {p.recall_at_10:.3f}"
    )


def as_rows(points: list[ScalePoint]) -> list[dict[str, object]]:
    return [asdict(p) for p in points]


def run(
    sizes: tuple[int, ...],
    datasets: tuple[str, ...],
    hnsw_max: int,
    out: Path | None,
    say: Callable[[str], None] = print,
    *,
    hnsw_ms: tuple[int, ...] = (32, 48),
    with_ivf: bool = True,
) -> dict[str, Any]:
    """Every size x dataset; print each point as it is measured, write JSON after each size."""
    points: list[ScalePoint] = []
    rss: dict[str, dict[str, float]] = {}
    result: dict[str, Any] = {}
    for n in sizes:
        for name in datasets:
            t0 = time.perf_counter()
            for p in measure(name, n, hnsw_ms=hnsw_ms, with_hnsw=n <= hnsw_max, with_ivf=with_ivf):
                say(describe(p))
                points.append(p)
            rss[f"{name}/{n}"] = {"rss_mb": rss_mb(), "peak_rss_mb": rss_mb("VmHWM")}
            say(
                f"  ({name} n={n:,} took {time.perf_counter() - t0:.0f} s; "
                f"process RSS {rss_mb():.0f} MB, peak {rss_mb('VmHWM'):.0f} MB)"
            )
            if n > hnsw_max:
                say(f"  (HNSW skipped at n={n:,}: --hnsw-max {hnsw_max:,})")
        chosen = {
            f"{d}/{n}": asdict(b) if (b := best(points, n, d)) else None for n in sizes for d in datasets
        }
        result = {
            "dim": DIM,
            "k": K,
            "queries": QUERIES,
            "latency_queries": LATENCY_QUERIES,
            "topics": TOPICS,
            "leaves": LEAVES,
            "hnsw_max": hnsw_max,
            "rows": as_rows(points),
            "rss": rss,
            "best_at_recall_0_95": chosen,
        }
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--datasets", default="clustered,dense,random")
    parser.add_argument(
        "--hnsw-max",
        type=int,
        default=100_000,
        help="Build HNSW only up to this many vectors (1M M=32 takes many minutes on 2 cores).",
    )
    parser.add_argument("--hnsw-m", default="32,48", help="HNSW M values to build.")
    parser.add_argument("--no-ivf", action="store_true", help="Skip IVFFlat (e.g. an HNSW-only 1M run).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    hnsw_ms = tuple(int(m) for m in args.hnsw_m.split(","))
    datasets = tuple(args.datasets.split(","))
    result = run(sizes, datasets, args.hnsw_max, args.out, hnsw_ms=hnsw_ms, with_ivf=not args.no_ivf)
    print("\nlowest p50 at recall@10 >= 0.95:")
    for key, p in result["best_at_recall_0_95"].items():
        print(f"  {key}: {describe(ScalePoint(**p)).strip() if p else 'none reached 0.95'}")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
