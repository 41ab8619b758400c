"""Incremental ingest figures (`make bench`, section "ingest"; or `python -m bench.ingest`).

* full vs incremental: 100 plain-text files made of XQuAD Chinese paragraphs (read from ../shared/datasets,
  written to a temporary folder, never into the repository); a full build with the real model, then an
  update after changing ONE file, and after adding one: seconds, passages/s, the 1-of-100 ratio.
* add at 10,000 passages: an index of 10,000 passages (100 files of 100 paragraphs) whose vectors come from a
  fast stand-in encoder carrying the real model's fingerprint (vector values do not change what ingest
  costs), then one file added with the real model: the update's time minus the time spent inside the
  encoder is the fixed work an update costs at that size; the server's reload time is printed beside it.

Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.embed import Encoder, normalise
from index.ingest import update_index

Say = Callable[[str], None]


class TimedEncoder:
    """Wraps an encoder and adds up the seconds spent in ``encode_passages``."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.texts = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def backend(self) -> str:
        return self.inner.backend

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return self.inner.encode_passages(texts)
        finally:
            self.seconds += time.perf_counter() - t0
            self.texts += len(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


class RandomVectors:
    """A fast stand-in with another encoder's name, fingerprint and token counter: seeded random vectors."""

    def __init__(self, like: Encoder) -> None:
        self.like = like
        self.rng = np.random.default_rng(0)

    @property
    def name(self) -> str:
        return self.like.name

    @property
    def fingerprint(self) -> str:
        return self.like.fingerprint

    @property
    def backend(self) -> str:
        return self.like.backend

    @property
    def dimension(self) -> int:
        return self.like.dimension

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_passages(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return normalise(self.rng.standard_normal((len(texts), self.like.dimension)).astype(np.float32))

    def count_tokens(self, text: str) -> int:
        return len(text) // 2 + 2  # the real tokenizer is not what is measured here


def xquad_paragraphs(datasets: Path) -> list[str]:
    data = json.loads((datasets / "xquad" / "xquad.zh.json").read_text(encoding="utf-8"))
    return [p["context"] for article in data["data"] for p in article["paragraphs"]]


def write_files(folder: Path, paragraphs: Sequence[str], files: int, per_file: int, tag: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        chunk = [paragraphs[(i * per_file + j) % len(paragraphs)] for j in range(per_file)]
        # A marker per paragraph keeps repeated paragraphs distinct texts (no reuse between copies).
        body = "\n\n".join(f"{tag}{i}.{j} {p}" for j, p in enumerate(chunk))
        (folder / f"doc-{i:03d}.txt").write_text(body + "\n", encoding="utf-8")


def full_and_incremental(encoder: Encoder, datasets: Path, say: Say) -> dict[str, Any]:
    paragraphs = xquad_paragraphs(datasets)
    work = Path(tempfile.mkdtemp(prefix="citeqa-bench-ingest-"))
    try:
        docs, index = work / "docs", work / "index"
        per_file = max(1, len(paragraphs) // 100)
        write_files(docs, paragraphs, 100, per_file)
        timed = TimedEncoder(encoder)
        full = update_index(docs, index, timed)
        say(
            f"  full build: {full.documents} files, {full.passages} passages + {full.sentences} sentences "
            f"in {full.seconds:.1f} s = {full.passages / full.seconds:.2f} passages/s, "
            f"{(full.passages + full.sentences) / full.seconds:.1f} texts/s "
            f"({timed.seconds / full.seconds:.0%} of it in the encoder)"
        )
        target = docs / "doc-042.txt"
        text = target.read_text(encoding="utf-8")
        target.write_text(text.replace("。", "。 ", 1) + "\n补充一句新的说明。\n", encoding="utf-8")
        changed = update_index(docs, index, timed)
        ratio = changed.seconds / full.seconds
        say(
            f"  change 1 file of 100: {changed.seconds:.2f} s, {changed.embedded} texts embedded, "
            f"{changed.reused} reused; {ratio:.1%} of the full build (target <= 5%)"
        )
        (docs / "doc-new.txt").write_text(paragraphs[0] + "\n\n" + paragraphs[1] + "\n", encoding="utf-8")
        before = timed.seconds
        added = update_index(docs, index, timed)
        say(
            f"  add 1 file: {added.seconds:.2f} s, {added.embedded} texts embedded in "
            f"{timed.seconds - before:.2f} s of encoder time"
        )
        return {
            "files": full.documents,
            "passages": full.passages,
            "sentences": full.sentences,
            "full_seconds": full.seconds,
            "full_passages_per_s": full.passages / full.seconds,
            "full_texts_per_s": (full.passages + full.sentences) / full.seconds,
            "change_one_seconds": changed.seconds,
            "change_one_embedded": changed.embedded,
            "change_one_ratio": ratio,
            "add_one_seconds": added.seconds,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def add_at_scale(encoder: Encoder, datasets: Path, say: Say, passages: int = 10_000) -> dict[str, Any]:
    from service.pipeline import Pipeline
    from service.settings import Settings

    paragraphs = xquad_paragraphs(datasets)
    work = Path(tempfile.mkdtemp(prefix="citeqa-bench-scale-ingest-"))
    try:
        docs, index = work / "docs", work / "index"
        files = passages // 100
        write_files(docs, paragraphs, files, 100, tag="s")
        t0 = time.perf_counter()
        base = update_index(docs, index, RandomVectors(encoder))
        say(
            f"  index of {base.passages:,} passages, {base.sentences:,} sentences (stand-in vectors) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        (docs / "zz-added.txt").write_text(paragraphs[5] + "\n\n" + paragraphs[6] + "\n", encoding="utf-8")
        timed = TimedEncoder(encoder)
        added = update_index(docs, index, timed)
        fixed = added.seconds - timed.seconds
        say(
            f"  add 1 file at {base.passages:,} passages: {added.seconds:.2f} s = {timed.seconds:.2f} s "
            f"embedding {added.embedded} texts + {fixed:.2f} s fixed work (target <= 1 s)"
        )
        unchanged = update_index(docs, index, timed)
        say(f"  an update with nothing to do at that size: {unchanged.seconds:.2f} s")
        settings = Settings(documents_dir=docs, index_dir=index, data_dir=work / "data", watch_interval=0)
        t0 = time.perf_counter()
        Pipeline.load(settings, encoder=encoder, build=False)
        reload_s = time.perf_counter() - t0
        say(f"  loading that index into a new pipeline (what a server's swap costs): {reload_s:.2f} s")
        return {
            "passages": base.passages,
            "sentences": base.sentences,
            "add_seconds": added.seconds,
            "add_embedding_seconds": timed.seconds,
            "add_fixed_seconds": fixed,
            "noop_seconds": unchanged.seconds,
            "reload_seconds": reload_s,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(encoder: Encoder, datasets: Path, say: Say) -> dict[str, Any]:
    say("== ingest: full build vs incremental updates (bench/ingest.py) ==")
    return {
        "incremental": full_and_incremental(encoder, datasets, say),
        "add_at_10k": add_at_scale(encoder, datasets, say),
    }


def main() -> None:
    from eval.convert import find_datasets_dir
    from service.pipeline import encoder_for
    from service.settings import Settings

    root = Path(__file__).resolve().parents[1]
    datasets = find_datasets_dir(root)
    if datasets is None:
        raise SystemExit("needs ../shared/datasets (XQuAD) beside the repository")
    settings = Settings(micro_batching=False)
    print(json.dumps(run(encoder_for(settings), datasets, print), indent=2))


if __name__ == "__main__":
    main()
