"""Encoding detection accuracy of ``index.readers.decode_text`` on real paragraphs.

    python -m bench.encodings [--datasets ../shared/datasets] [--n 200] [--json OUT]

Takes the first ``n`` paragraphs of XQuAD zh and en (read from the shared datasets folder, never
copied), each whole and cut to its first 40 characters, and files of 20 paragraphs (all 240, so 12
files per language), encodes them in each encoding a user's files
come in, and counts how often ``decode_text`` gives back exactly the original text. Big5 is measured on
the Chinese paragraphs converted to Traditional characters (zhconv; Simplified text has no Big5 form).
A sample the encoding cannot represent (a Western code page and a paragraph with Greek letters, say)
is left out and counted. ``ascii`` is how many of the kept samples encode to pure ASCII bytes, which
every ASCII-compatible encoding reads alike, so they test nothing but do not count as errors either.
"""

from __future__ import annotations

import argparse
import codecs
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from eval.convert import find_datasets_dir, read_squad
from index.errors import UnreadableDocumentError
from index.readers import decode_text

REPO = Path(__file__).resolve().parents[1]
SHORT = 40
FILE_PARAGRAPHS = 20


def _bom(bom: bytes, codec: str) -> Callable[[str], bytes]:
    return lambda text: bom + text.encode(codec)


def _plain(codec: str) -> Callable[[str], bytes]:
    return lambda text: text.encode(codec)


# name -> (encoder, which texts, the decode_text names that count as right)
ENCODINGS: dict[str, tuple[Callable[[str], bytes], tuple[str, ...]]] = {
    "utf-8": (_plain("utf-8"), ("zh", "en")),
    "utf-8 BOM": (_bom(codecs.BOM_UTF8, "utf-8"), ("zh", "en")),
    "utf-16-le BOM": (_bom(codecs.BOM_UTF16_LE, "utf-16-le"), ("zh", "en")),
    "utf-16-be BOM": (_bom(codecs.BOM_UTF16_BE, "utf-16-be"), ("zh", "en")),
    "utf-16-le no BOM": (_plain("utf-16-le"), ("zh", "en")),
    "utf-16-be no BOM": (_plain("utf-16-be"), ("zh", "en")),
    "utf-32-le BOM": (_bom(codecs.BOM_UTF32_LE, "utf-32-le"), ("zh", "en")),
    "gb18030": (_plain("gb18030"), ("zh",)),
    "gbk": (_plain("gbk"), ("zh",)),
    "big5": (_plain("big5"), ("zh-hant",)),
    "cp1252": (_plain("cp1252"), ("en",)),
    "iso-8859-1": (_plain("iso-8859-1"), ("en",)),
    "iso-8859-15": (_plain("iso-8859-15"), ("en",)),
}


@dataclass
class Row:
    encoding: str
    lang: str
    length: str
    samples: int
    correct: int
    refused: int
    wrong: int
    ascii: int
    skipped: int
    ms_per_sample: float
    detected: dict[str, int]

    @property
    def accuracy(self) -> float:
        return self.correct / self.samples if self.samples else float("nan")


def paragraphs(datasets: Path, lang: str, n: int) -> list[str]:
    seen: list[str] = []
    for p in read_squad(datasets / "xquad" / f"xquad.{lang}.json"):
        text = p.context.lstrip("\ufeff")  # a BOM character at the start is stripped by design
        if text not in seen:
            seen.append(text)
        if len(seen) == n:
            break
    return seen


def measure(name: str, encode: Callable[[str], bytes], lang: str, length: str, texts: list[str]) -> Row:
    row = Row(name, lang, length, 0, 0, 0, 0, 0, 0, 0.0, {})
    elapsed = 0.0
    for text in texts:
        try:
            data = encode(text)
        except UnicodeEncodeError:
            row.skipped += 1
            continue
        row.samples += 1
        row.ascii += data.isascii()
        t0 = time.perf_counter()
        try:
            decoded, detected = decode_text(data)
        except UnreadableDocumentError:
            row.refused += 1
            row.detected["refused"] = row.detected.get("refused", 0) + 1
            continue
        finally:
            elapsed += time.perf_counter() - t0
        row.detected[detected] = row.detected.get(detected, 0) + 1
        if decoded == text:
            row.correct += 1
        else:
            row.wrong += 1
    row.ms_per_sample = 1000 * elapsed / max(1, row.samples)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=None)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    datasets = args.datasets or find_datasets_dir(REPO)
    if datasets is None:
        raise SystemExit("no datasets folder: pass --datasets ../shared/datasets")
    try:
        import zhconv
    except ImportError as exc:
        raise SystemExit("Big5 needs Traditional text: pip install zhconv (a dev extra)") from exc
    zh = paragraphs(datasets, "zh", 10**6)
    texts = {
        "zh": zh,
        "en": paragraphs(datasets, "en", 10**6),
        "zh-hant": [zhconv.convert(t, "zh-tw") for t in zh],
    }
    samples: dict[tuple[str, str], list[str]] = {}
    for lang, all_texts in texts.items():
        samples[lang, "40"] = [t[:SHORT] for t in all_texts[: args.n]]
        samples[lang, "whole"] = all_texts[: args.n]
        samples[lang, "file"] = [
            "\n\n".join(all_texts[i : i + FILE_PARAGRAPHS])
            for i in range(0, len(all_texts) - FILE_PARAGRAPHS + 1, FILE_PARAGRAPHS)
        ]
    rows = []
    print(
        f"{'encoding':18} {'text':8} {'length':6} {'n':>4} {'right':>6} {'refused':>7} {'wrong':>5} "
        f"{'ascii':>5} {'skip':>4} {'ms':>6}  detected as"
    )
    for name, (encode, langs) in ENCODINGS.items():
        for lang in langs:
            for length in ("40", "whole", "file"):
                row = measure(name, encode, lang, length, samples[lang, length])
                rows.append(row)
                detected = ", ".join(
                    f"{k} {v}" for k, v in sorted(row.detected.items(), key=lambda kv: -kv[1])
                )
                print(
                    f"{name:18} {lang:8} {length:6} {row.samples:4} {row.accuracy:6.1%} {row.refused:7} "
                    f"{row.wrong:5} {row.ascii:5} {row.skipped:4} {row.ms_per_sample:6.2f}  {detected}"
                )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
