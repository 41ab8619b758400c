"""Load test: exactly N requests (default 10,000) at concurrency 16 against the real server.

    python -m bench.load [--requests 10000] [--concurrency 16] [--time-limit 1200] [--out PATH]

Starts ``citeqa serve`` on a free loopback port (as ``bench/run.py`` does), alternates
``/api/retrieve`` and ``/api/ask`` over the seed questions (half Chinese, half English) from an
async httpx loop, and samples the server's resident set (``VmRSS`` in ``/proc/<pid>/status``) about
once a second. Prints errors, req/s, RSS at start / after warm-up / end / max, and the RSS slope in
MB per 1,000 requests after warm-up. Bounded: stops at N requests or at the time limit, whichever
comes first (a run cut short by the limit says so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.run import ROOT, citeqa_server, questions

SAMPLE_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class RssSample:
    seconds: float
    requests: int  # completed so far
    rss_mb: float


@dataclass(frozen=True)
class LoadResult:
    requests: int  # completed (answered or failed)
    target: int
    concurrency: int
    errors: int
    error_kinds: dict[str, int]
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    warmup: int
    rss_start_mb: float  # before the first request
    rss_warm_mb: float  # after ``warmup`` requests
    rss_end_mb: float
    rss_max_mb: float
    growth_after_warmup_mb: float  # end - warm
    slope_mb_per_1000: float  # least-squares slope of RSS over completed requests, after warm-up
    timed_out: bool
    samples: list[RssSample] = field(repr=False)


def proc_rss_mb(pid: int) -> float:
    """``VmRSS`` of process ``pid`` in MB (NaN if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _request(i: int, qs: list[str]) -> tuple[str, dict[str, Any]]:
    """Request ``i``: retrieve and ask alternate; questions cycle so zh and en interleave."""
    path = "/api/retrieve" if i % 2 == 0 else "/api/ask"
    return path, {"question": qs[(i // 2) % len(qs)], "top_k": 5}


def _interleave(qs: list[str]) -> list[str]:
    """zh, en, zh, en, ... (the seed set lists each language in a block)."""
    zh = [q for q in qs if any("\u4e00" <= c <= "\u9fff" for c in q)]
    en = [q for q in qs if q not in zh]
    out = [q for pair in zip(zh, en, strict=False) for q in pair]
    longer = zh if len(zh) > len(en) else en
    return out + longer[min(len(zh), len(en)) :]


async def _drive(
    base: str, pid: int, qs: list[str], total: int, concurrency: int, time_limit_s: float, warmup: int
) -> LoadResult:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    issued = 0
    done = 0
    kinds: Counter[str] = Counter()
    latencies: list[float] = []
    samples: list[RssSample] = []
    rss_start = proc_rss_mb(pid)
    t0 = time.perf_counter()
    deadline = time.monotonic() + time_limit_s
    finished = asyncio.Event()

    async def sampler() -> None:
        while not finished.is_set():
            samples.append(RssSample(time.perf_counter() - t0, done, proc_rss_mb(pid)))
            try:
                await asyncio.wait_for(finished.wait(), SAMPLE_EVERY_S)
            except TimeoutError:
                pass

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal issued, done
            while issued < total and time.monotonic() < deadline:
                path, body = _request(issued, qs)
                issued += 1
                start = time.perf_counter()
                try:
                    r = await client.post(path, json=body)
                    if r.status_code != 200:
                        kinds[f"{path} HTTP {r.status_code}"] += 1
                except httpx.HTTPError as exc:
                    kinds[f"{path} {type(exc).__name__}"] += 1
                latencies.append((time.perf_counter() - start) * 1000)
                done += 1

        sampling = asyncio.create_task(sampler())
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        finished.set()
        await sampling
    samples.append(RssSample(elapsed, done, proc_rss_mb(pid)))

    warm = [s for s in samples if s.requests >= warmup] or samples[-1:]
    x = np.array([s.requests for s in warm], dtype=float)
    y = np.array([s.rss_mb for s in warm], dtype=float)
    slope = float(np.polyfit(x, y, 1)[0] * 1000) if len(warm) >= 2 and np.ptp(x) > 0 else 0.0
    return LoadResult(
        requests=done,
        target=total,
        concurrency=concurrency,
        errors=sum(kinds.values()),
        error_kinds=dict(kinds),
        seconds=elapsed,
        rps=done / elapsed if elapsed else 0.0,
        p50_ms=float(np.percentile(latencies, 50)) if latencies else float("nan"),
        p99_ms=float(np.percentile(latencies, 99)) if latencies else float("nan"),
        warmup=warmup,
        rss_start_mb=rss_start,
        rss_warm_mb=warm[0].rss_mb,
        rss_end_mb=samples[-1].rss_mb,
        rss_max_mb=max(s.rss_mb for s in samples),
        growth_after_warmup_mb=samples[-1].rss_mb - warm[0].rss_mb,
        slope_mb_per_1000=slope,
        timed_out=done < total,
        samples=samples,
    )


def run_load(
    total: int = 10_000, concurrency: int = 16, time_limit_s: float = 1200.0, warmup: int = 1_000
) -> LoadResult:
    """Start the server, drive ``total`` requests at ``concurrency``, stop the server."""
    qs = _interleave(questions())
    with citeqa_server("citeqa-load") as srv:
        return asyncio.run(_drive(srv.url, srv.proc.pid, qs, total, concurrency, time_limit_s, warmup))


def report(r: LoadResult) -> str:
    cut = f"  STOPPED AT THE TIME LIMIT after {r.requests:,} of {r.target:,}" if r.timed_out else ""
    return "\n".join(
        [
            f"load: {r.requests:,} requests (/api/retrieve + /api/ask, zh/en) at concurrency {r.concurrency}"
            f" in {r.seconds:.1f} s = {r.rps:.1f} req/s; p50 {r.p50_ms:.0f} ms, p99 {r.p99_ms:.0f} ms{cut}",
            f"  errors: {r.errors}" + (f"  {r.error_kinds}" if r.errors else ""),
            f"  server RSS: start {r.rss_start_mb:.0f} MB, after {r.warmup:,} warm-up requests "
            f"{r.rss_warm_mb:.0f} MB, end {r.rss_end_mb:.0f} MB, max {r.rss_max_mb:.0f} MB",
            f"  after warm-up: growth {r.growth_after_warmup_mb:+.1f} MB, "
            f"slope {r.slope_mb_per_1000:+.2f} MB per 1,000 requests ({len(r.samples)} samples)",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--time-limit", type=float, default=1200.0, help="Seconds; the run stops there.")
    parser.add_argument("--warmup", type=int, default=1_000, help="Requests before the RSS baseline.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()
    result = run_load(args.requests, args.concurrency, args.time_limit, args.warmup)
    print(report(result), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
