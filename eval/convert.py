"""Convert public SQuAD-style benchmarks into a CiteQA corpus folder and an eval JSONL file.

The benchmark data (XQuAD, CMRC 2018: CC BY-SA 4.0) are read from a datasets folder outside the
repository and converted into an output folder the caller chooses; nothing is copied into the
repository. An output folder looks like::

    out_dir/documents/<doc id>.txt   one article per SQuAD paragraph ("context")
    out_dir/questions.jsonl          eval items with gold_passages ["<doc id>:1"]
    out_dir/NOTICE.txt               where the data came from and under which licence

Each article is YAML front matter with a title (the SQuAD article title and the 1-based paragraph
number) followed by the context, HTML-escaped, as the single ``<p>`` paragraph, so the indexer
makes passage ``<doc id>:1`` (or its split parts ``<doc id>:1.<part>``).

Document ids come from the paragraph's position: ``<prefix>-<n:04d>`` where n counts paragraphs
1, 2, ... through the articles in order. XQuAD is parallel across languages (same articles, same
paragraphs, same order), so the English question about position n has the Chinese document at
position n as its gold passage: that is the cross-lingual "xquad-zh" setup. Converting a parallel
file checks the structure first and refuses files that do not line up.

Question ids are ``<lang>-<original id>``; XQuAD shares original ids across languages, so a
Chinese and an English question with the same suffix are translations of each other.

The ``*-neartopic`` benchmarks add, for every answerable question, a variant whose focus is swapped
(``eval.neartopic``: SQuAD 2.0's construction, made reproducibly) and hold the holdout variants too; they
split their questions by article into ``fit.jsonl`` (half of the articles: fit thresholds and models
there) and ``report.jsonl`` (the rest: report there; see ``article_splits``), beside ``questions.jsonl``
(both).

An item whose question is in another language than its gold paragraph (an English question over a
Chinese paragraph) keeps its own file's answers as ``question_lang_answers``: ``answers`` are the
paragraph's (what an extractive answer quotes), those are what a generated answer in the question's
language states.

Gold answers are the annotators' texts, stripped, de-duplicated in order, keeping only those that
occur in the context after whitespace normalisation (CMRC 2018 dev has 177 distinct answer texts
that do not, e.g. ``"39764.0"``; every question keeps at least one). An extractive answer copies sentences
from the context, so a span absent from the context could never be hit.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from eval.dataset import EvalItem, normalise_space, write_items
from eval.errors import ConversionError


@dataclass(frozen=True, slots=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SquadParagraph:
    """One SQuAD context with its questions; ``number`` is its 1-based position in the file."""

    number: int
    article_index: int
    paragraph_index: int
    title: str
    context: str
    questions: tuple[SquadQuestion, ...]


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A benchmark setup: the corpus file (whose own questions are asked over it) and further
    parallel question files ``(path, lang)`` asked over the same documents. Paths are relative to
    the datasets folder."""

    name: str
    corpus: str
    corpus_lang: str
    prefix: str
    parallel_questions: tuple[tuple[str, str], ...]
    source: str
    holdout_every: int = 0  # see held_out: paragraphs left out of the corpus, their questions unanswerable
    swaps: bool = False  # add a focus-swapped unanswerable variant of each answerable question
    own_questions: bool = True  # ask the corpus file's own questions (False: only the parallel ones)
    # Parallel files ``(path, lang)`` whose paragraphs replace the corpus's in alternate articles: with one
    # file, the odd-indexed articles (0-based) come from it, the even ones from ``corpus`` (a mixed corpus).
    alternate_corpus: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ConversionStats:
    documents: int
    questions: int
    questions_by_lang: dict[str, int]
    dropped_answers: int


BENCHMARKS: dict[str, Benchmark] = {
    "xquad-zh": Benchmark(
        name="xquad-zh",
        corpus="xquad/xquad.zh.json",
        corpus_lang="zh",
        prefix="xquad-zh",
        parallel_questions=(("xquad/xquad.en.json", "en"),),
        source="XQuAD (Artetxe et al., 2020), https://github.com/google-deepmind/xquad",
    ),
    "xquad-en": Benchmark(
        name="xquad-en",
        corpus="xquad/xquad.en.json",
        corpus_lang="en",
        prefix="xquad-en",
        parallel_questions=(),
        source="XQuAD (Artetxe et al., 2020), https://github.com/google-deepmind/xquad",
    ),
    "cmrc2018": Benchmark(
        name="cmrc2018",
        corpus="cmrc2018/cmrc2018_dev.json",
        corpus_lang="zh",
        prefix="cmrc2018",
        parallel_questions=(),
        source="CMRC 2018 dev set (Cui et al., 2019), https://github.com/ymcui/cmrc2018",
    ),
}
# Unanswerable questions for fitting and measuring abstention (see held_out): near-topic ones, SQuAD
# 2.0-style, from paragraphs left out while the rest of their article stays in, and off-topic ones from
# whole articles left out.
BENCHMARKS |= {
    f"{name}-holdout": replace(BENCHMARKS[name], name=f"{name}-holdout", holdout_every=4)
    for name in ("xquad-zh", "xquad-en")
}
# Near-topic unanswerables at scale (see eval.neartopic), in every language pair: the holdout variants plus
# a focus-swapped variant of each answerable question, split by article into fit.jsonl and report.jsonl.
# XQuAD is parallel, so Chinese questions over the English paragraphs give zh->en.
BENCHMARKS |= {
    f"{name}-neartopic": replace(BENCHMARKS[name], name=f"{name}-neartopic", holdout_every=4, swaps=True)
    for name in ("xquad-zh", "xquad-en", "cmrc2018")
}
BENCHMARKS["xquad-en-neartopic"] = replace(
    BENCHMARKS["xquad-en-neartopic"], parallel_questions=(("xquad/xquad.zh.json", "zh"),)
)
SPLITS: tuple[str, ...] = ("fit", "report")


def article_splits(n_articles: int) -> list[str]:
    """The split of each of ``n_articles`` articles: half of them (rounded down) fit, the rest report.

    Articles are ordered by a hash of their 0-based index and dealt out alternately, so the split is
    balanced, fixed for a given file, and unrelated to the holdout's every-4th-paragraph and every-8th-article
    pattern (which a split by parity would line up with).
    """
    order = sorted(range(n_articles), key=lambda a: hashlib.sha256(str(a).encode("ascii")).hexdigest())
    splits = [""] * n_articles
    for rank, article in enumerate(order):
        splits[article] = SPLITS[(rank + 1) % 2]
    return splits


# Cross-lingual and mixed collections: Chinese questions over the English paragraphs; and ONE corpus of the
# Chinese paragraphs of the even-indexed articles and the English paragraphs of the odd-indexed ones, every
# item asked in both languages (all four question -> passage language pairs, one gold paragraph each).
BENCHMARKS |= {
    "xquad-en-zhq": replace(
        BENCHMARKS["xquad-en"],
        name="xquad-en-zhq",
        prefix="xquad-en",
        own_questions=False,
        parallel_questions=(("xquad/xquad.zh.json", "zh"),),
    ),
    "xquad-mixed": replace(
        BENCHMARKS["xquad-zh"],
        name="xquad-mixed",
        prefix="xquad-mixed",
        alternate_corpus=(("xquad/xquad.en.json", "en"),),
    ),
}


def document_id(prefix: str, number: int) -> str:
    """The id (and file stem) of the article for the paragraph at 1-based position ``number``."""
    return f"{prefix}-{number:04d}"


def read_squad(json_path: str | Path) -> list[SquadParagraph]:
    """Read a SQuAD v1-style JSON file into paragraphs in file order."""
    path = Path(json_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConversionError(f"benchmark file not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    try:
        return _paragraphs(data)
    except (KeyError, TypeError) as exc:
        raise ConversionError(
            f"{path}: not SQuAD-style JSON (expected data[].paragraphs[].qas[]; problem: {exc!r})"
        ) from exc


def render_document(title: str, context: str) -> str:
    """An article file: YAML front matter with the title, then the context as one ``<p>``."""
    front = yaml.safe_dump({"title": title}, allow_unicode=True, default_flow_style=False, width=10_000)
    return f"---\n{front}---\n<p>{html.escape(context)}</p>\n"


def squad_documents(paragraphs: Sequence[SquadParagraph], prefix: str) -> list[tuple[str, str]]:
    """``(document id, file text)`` for each paragraph."""
    return [
        (
            document_id(prefix, p.number),
            render_document(f"{p.title} #{p.paragraph_index + 1}", p.context),
        )
        for p in paragraphs
    ]


def held_out(paragraph: SquadParagraph, every: int) -> bool:
    """Whether ``paragraph`` is left out of the corpus for holdout ``every`` (0: nothing is left out).

    Every ``every``-th paragraph is left out (its questions are near-topic: the rest of the article stays
    in), and so is every ``2 * every``-th article as a whole (its questions are off-topic).
    """
    if every <= 0:
        return False
    return paragraph.number % every == 0 or paragraph.article_index % (2 * every) == 2 * every - 1


def squad_items(
    paragraphs: Sequence[SquadParagraph],
    lang: str,
    prefix: str,
    *,
    holdout_every: int = 0,
    swaps: bool = False,
    articles: dict[str, int] | None = None,
) -> tuple[list[EvalItem], int]:
    """Eval items for the questions of ``paragraphs`` over the documents named with ``prefix``.

    Questions about a held-out paragraph (see ``held_out``) become unanswerable items; with ``swaps``, each
    answerable question is followed by its focus-swapped variant (id ``<id>-swap``, unanswerable) when
    ``eval.neartopic`` finds one. ``articles``, when given, receives each item's article index. Returns the
    items and the number of gold answer texts dropped because they do not occur in their context.
    """
    from eval.neartopic import SwapMaker

    maker = (
        SwapMaker([p.context for p in paragraphs], [p.article_index for p in paragraphs], lang)
        if swaps
        else None
    )
    items: list[EvalItem] = []
    dropped = 0
    for row, p in enumerate(paragraphs):
        gone = held_out(p, holdout_every)
        context = normalise_space(p.context)
        for q in p.questions:
            answers = tuple(a for a in q.answers if normalise_space(a) in context)
            dropped += len(q.answers) - len(answers)
            if not answers:
                raise ConversionError(
                    f"question {q.id!r} (paragraph {p.number}): no gold answer occurs in the context"
                )
            item = EvalItem(
                id=f"{lang}-{q.id}",
                lang=lang,
                question=q.question,
                answers=answers,
                gold_quotes=(),
                gold_passages=(f"{document_id(prefix, p.number)}:1",),
                answerable=True,
            )
            unanswerable = replace(item, answers=(), gold_passages=(), answerable=False)
            made = [unanswerable if gone else item]
            swap = None if gone or maker is None else maker.swap(q.question, row, item.id)
            if swap is not None:
                made.append(replace(unanswerable, id=f"{item.id}-swap", question=swap.question))
            items += made
            if articles is not None:
                articles.update((m.id, p.article_index) for m in made)
    return items, dropped


def corpus_paragraphs(sources: Sequence[Sequence[SquadParagraph]]) -> list[SquadParagraph]:
    """The corpus's paragraphs from parallel ``sources``: article i comes from ``sources[i % len]``."""
    return [sources[p.article_index % len(sources)][n] for n, p in enumerate(sources[0])]


def check_parallel(a: Sequence[SquadParagraph], b: Sequence[SquadParagraph], names: tuple[str, str]) -> None:
    """Refuse two files whose articles and paragraphs do not line up position by position."""
    shape_a = [(p.article_index, p.paragraph_index) for p in a]
    shape_b = [(p.article_index, p.paragraph_index) for p in b]
    if shape_a != shape_b:
        raise ConversionError(
            f"{names[0]} ({len(a)} paragraphs) and {names[1]} ({len(b)} paragraphs) are not parallel: "
            "the same articles must hold the same number of paragraphs in the same order"
        )


def convert_squad(
    json_path: str | Path,
    out_dir: str | Path,
    lang: str,
    prefix: str,
    *,
    parallel_questions: Sequence[tuple[str | Path, str]] = (),
    source: str = "",
    holdout_every: int = 0,
    swaps: bool = False,
    own_questions: bool = True,
    alternate_corpus: Sequence[tuple[str | Path, str]] = (),
    overwrite: bool = False,
) -> ConversionStats:
    """Write ``out_dir/documents/`` from ``json_path`` and ``out_dir/questions.jsonl``.

    The questions are those of ``json_path`` (language ``lang``) followed by those of each
    ``(path, lang)`` in ``parallel_questions``, a file parallel to ``json_path`` whose questions
    are asked over the same documents (position by position). With ``holdout_every`` n > 0, the
    paragraphs ``held_out`` picks are left out of the documents and their questions are unanswerable.
    With ``swaps``, focus-swapped variants are added (see ``squad_items``) and the questions are also
    written split by article (``article_splits``) into ``fit.jsonl`` and ``report.jsonl``.
    ``out_dir/documents`` must be absent or empty unless ``overwrite``, which first removes the
    ``.txt`` files there. Without ``own_questions`` only the parallel questions are asked.
    ``alternate_corpus`` files ``(path, lang)``, parallel to ``json_path``, take turns with it by
    article (see ``corpus_paragraphs``): a mixed-language corpus whose every question has one gold paragraph,
    in the language of that article.
    """
    json_path = Path(json_path)
    out = Path(out_dir)
    own = read_squad(json_path)
    if not own:
        raise ConversionError(f"{json_path}: holds no paragraphs")
    sources = [(own, lang)]
    for other_path, other_lang in alternate_corpus:
        other = read_squad(other_path)
        check_parallel(own, other, (str(json_path), str(other_path)))
        sources.append((other, other_lang))
    paragraphs = corpus_paragraphs([p for p, _ in sources])
    # An answer is copied from the corpus's text, so every question's gold answers are those of the
    # question with the same id (ids are shared across languages) in the language of its gold paragraph.
    corpus_answers: dict[str, tuple[str, ...]] = {}
    for k, (parallel, parallel_lang) in enumerate(sources):
        mine = [p for p in parallel if p.article_index % len(sources) == k]
        corpus_answers |= {
            item.id.split("-", 1)[1]: item.answers
            for item in squad_items(mine, parallel_lang, prefix, holdout_every=holdout_every)[0]
        }
    articles: dict[str, int] = {}
    items: list[EvalItem] = []
    dropped = 0
    asked_files = ([(json_path, lang)] if own_questions else []) + [
        (Path(q), ql) for q, ql in parallel_questions
    ]
    for questions_path, questions_lang in asked_files:
        asked = own if questions_path == json_path else read_squad(questions_path)
        check_parallel(own, asked, (str(json_path), str(questions_path)))
        more, more_dropped = squad_items(
            asked, questions_lang, prefix, holdout_every=holdout_every, swaps=swaps, articles=articles
        )
        for m in more:
            key = m.id.split("-", 1)[1]
            gold_lang = sources[articles[m.id] % len(sources)][1]
            own_answers = m.answers if m.answerable and questions_lang != gold_lang else ()
            items.append(
                replace(m, answers=corpus_answers.get(key, m.answers), question_lang_answers=own_answers)
            )
        dropped += more_dropped
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ConversionError(f"{json_path}: question ids are not unique within a language")

    docs_dir = _prepare_documents_dir(out / "documents", overwrite)
    kept = [p for p in paragraphs if not held_out(p, holdout_every)]
    for doc_id, text in squad_documents(kept, prefix):
        (docs_dir / f"{doc_id}.txt").write_text(text, encoding="utf-8", newline="\n")
    write_items(out / "questions.jsonl", items)
    splits = article_splits(paragraphs[-1].article_index + 1)
    for split in SPLITS:
        path = out / f"{split}.jsonl"
        if swaps:
            write_items(path, [item for item in items if splits[articles[item.id]] == split])
        else:
            path.unlink(missing_ok=True)
    names = ", ".join(Path(path).name for path, _ in alternate_corpus)
    notice = (
        f"Converted from {json_path.name}{f' and {names} (alternate articles)' if names else ''}"
        f"{' and parallel questions' if parallel_questions else ''}.\n"
        f"Source: {source or json_path}\n"
        "Licence: CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/).\n"
        "Derived data: keep it out of the CiteQA repository.\n"
    )
    if holdout_every:
        notice += (
            f"Every {holdout_every}th paragraph and every {2 * holdout_every}th article are left out; "
            "their questions are unanswerable.\n"
        )
    if swaps:
        notice += (
            "Questions ending in -swap have their focus swapped for a term their paragraph does not state "
            "(unanswerable). fit.jsonl and report.jsonl split the questions by article.\n"
        )
    (out / "NOTICE.txt").write_text(notice, encoding="utf-8")
    by_lang: dict[str, int] = {}
    for item in items:
        by_lang[item.lang] = by_lang.get(item.lang, 0) + 1
    return ConversionStats(
        documents=len(kept), questions=len(items), questions_by_lang=by_lang, dropped_answers=dropped
    )


def convert_benchmark(
    name: str, datasets_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False
) -> ConversionStats:
    """Build one of ``BENCHMARKS`` ("xquad-zh", "xquad-en", "cmrc2018", their holdout and near-topic
    variants) from ``datasets_dir``."""
    if name not in BENCHMARKS:
        raise ConversionError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    bench = BENCHMARKS[name]
    root = Path(datasets_dir)
    corpus_path = root / bench.corpus
    if not corpus_path.is_file():
        raise ConversionError(
            f"benchmark {name!r} needs {corpus_path}; point datasets_dir at the folder holding "
            f"{bench.corpus.split('/')[0]}/"
        )
    return convert_squad(
        corpus_path,
        out_dir,
        bench.corpus_lang,
        bench.prefix,
        parallel_questions=[(root / path, lang) for path, lang in bench.parallel_questions],
        source=bench.source,
        holdout_every=bench.holdout_every,
        swaps=bench.swaps,
        own_questions=bench.own_questions,
        alternate_corpus=[(root / path, lang) for path, lang in bench.alternate_corpus],
        overwrite=overwrite,
    )


def find_datasets_dir(repo_root: str | Path) -> Path | None:
    """The shared datasets folder beside the repository (``../shared/datasets``), if present."""
    for candidate in (
        Path(repo_root).resolve().parent / "shared" / "datasets",
        Path("/work/shared/datasets"),
    ):
        if candidate.is_dir():
            return candidate
    return None


def _paragraphs(data: Any) -> list[SquadParagraph]:
    paragraphs: list[SquadParagraph] = []
    for a_index, article in enumerate(data["data"]):
        title = str(article.get("title") or f"article {a_index + 1}")
        for p_index, para in enumerate(article["paragraphs"]):
            questions = tuple(
                SquadQuestion(
                    id=str(qa["id"]),
                    question=str(qa["question"]),
                    answers=tuple(
                        dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip())
                    ),
                )
                for qa in para["qas"]
            )
            paragraphs.append(
                SquadParagraph(
                    number=len(paragraphs) + 1,
                    article_index=a_index,
                    paragraph_index=p_index,
                    title=title,
                    context=str(para["context"]),
                    questions=questions,
                )
            )
    return paragraphs


def _prepare_documents_dir(docs_dir: Path, overwrite: bool) -> Path:
    if docs_dir.exists():
        existing = sorted(docs_dir.iterdir())
        if existing and not overwrite:
            raise ConversionError(
                f"{docs_dir} already holds {len(existing)} file(s); choose an empty output folder "
                "or pass overwrite=True"
            )
        strangers = [p.name for p in existing if not (p.is_file() and p.suffix == ".txt")]
        if strangers:
            raise ConversionError(
                f"{docs_dir} holds {strangers[0]}, which is not an article file; refusing to overwrite"
            )
        for path in existing:
            path.unlink()
    docs_dir.mkdir(parents=True, exist_ok=True)
    return docs_dir
