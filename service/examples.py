"""Example questions for the chat page, made from the corpus being served; kept only if CiteQA answers them.

Candidates come from the structure of the served documents, never from a list written for one corpus: each
document's title (when it has one of its own, not just its file name) and its section headings, each asked in
its own language ("What is “<title>” about?", "关于“<heading>”，文中是怎么说的？"). A candidate is then asked
through the pipeline, exactly as ``/api/ask`` would, and kept only when the answer is not an abstention, is
grounded, and cites a passage of the document (and, for a heading, of the section) it was made from. So a
suggested question is one the served corpus demonstrably answers; a corpus without titles or headings, or
whose candidates all abstain, gets no examples and the page shows none.

Asking costs model time, so the examples are computed once per served index (its generation), on first
request, within a bound on the number of candidates tried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from index.chunk import language_of
from index.errors import CiteQAError
from index.store import DocumentRecord
from index.types import Passage
from service.pipeline import AskResult, Pipeline

log = logging.getLogger("citeqa.examples")

WANTED = 4  # examples the page shows
MAX_TRIES = 10  # candidates asked at most, per served index
MIN_CHARS = 2
MAX_CHARS = 60  # a longer "heading" is a sentence, not a topic

# One template per (kind, language). ``{topic}`` is a title or a heading as the document writes it.
TEMPLATES: dict[tuple[str, str], str] = {
    ("title", "en"): "What is “{topic}” about?",
    ("title", "zh"): "“{topic}”的主要内容是什么？",
    ("heading", "en"): "What does the document say about {topic}?",
    ("heading", "zh"): "关于“{topic}”，文中是怎么说的？",
}


@dataclass(frozen=True, slots=True)
class Example:
    """A suggested question, where it was made from, and (once verified) nothing else: it is answered."""

    question: str
    lang: str
    document_id: str
    title: str
    section: tuple[str, ...] = ()


def _own_title(record: DocumentRecord) -> str | None:
    """The document's title, or None when it is only its file name (readers fall back to the stem)."""
    title = record.title.strip()
    stem = PurePosixPath(record.path).stem
    if not title or title in (stem, record.id, PurePosixPath(record.id).name):
        return None
    return title


def _usable(topic: str) -> str | None:
    """The language of a topic that can make a question, or None (too short, too long, no script)."""
    if not MIN_CHARS <= len(topic) <= MAX_CHARS:
        return None
    lang = language_of(topic)
    return lang if lang in ("zh", "en") else None


_QUOTES = "\"'“”‘’「」《》"


def _strip_quotes(topic: str) -> str:
    """The topic without quotes around it (the templates add their own), book-title marks kept."""
    return topic.strip().strip("\"'“”‘’「」")


def _question(kind: str, lang: str, topic: str) -> str:
    template = TEMPLATES[(kind, lang)]
    if any(q in topic for q in _QUOTES):  # already marked ("《白皮书》发布"): no second pair of quotes
        template = template.replace("“{topic}”", "{topic}")
    return template.format(topic=topic)


def document_candidates(record: DocumentRecord, passages: Sequence[Passage]) -> list[Example]:
    """The candidate questions of one document, in document order: its title, then each distinct heading."""
    out: list[Example] = []
    title = _own_title(record)
    if title is not None and (lang := _usable(_strip_quotes(title))):
        out.append(Example(_question("title", lang, _strip_quotes(title)), lang, record.id, record.title))
    seen = {title} if title else set()
    for p in passages:
        if not p.section:
            continue
        heading = p.section[-1].strip()
        if heading in seen:
            continue
        seen.add(heading)
        lang = _usable(heading)
        if lang is None:
            continue
        out.append(
            Example(
                _question("heading", lang, _strip_quotes(heading)), lang, record.id, record.title, p.section
            )
        )
    return out


def candidates(documents: Sequence[DocumentRecord], passages: Sequence[Passage]) -> list[Example]:
    """Candidates of every document, taken in turns (newest document first) so that they spread."""
    by_document: dict[str, list[Passage]] = {}
    for p in passages:
        by_document.setdefault(p.document_id, []).append(p)
    newest_first = sorted(documents, key=lambda d: (d.updated, d.id), reverse=True)
    queues = [document_candidates(d, by_document.get(d.id, [])) for d in newest_first]
    out: list[Example] = []
    for turn in range(max((len(q) for q in queues), default=0)):
        out.extend(q[turn] for q in queues if turn < len(q))
    return out


def answers(example: Example, result: AskResult) -> bool:
    """The pipeline answered the example, grounded, citing the document (and section) it was made from."""
    if result.abstained or not result.grounded or not result.answer.sentences:
        return False
    by_rank = {p.rank: p.hit.passage for p in result.passages}
    cited = [by_rank[c] for s in result.answer.sentences for c in s.citations if c in by_rank]
    return any(
        p.document_id == example.document_id and p.section[: len(example.section)] == example.section
        for p in cited
    )


def verified(
    pipeline: Pipeline, pool: Iterable[Example], *, wanted: int = WANTED, tries: int = MAX_TRIES
) -> list[Example]:
    """The first ``wanted`` examples of ``pool`` that the pipeline answers, asking at most ``tries``."""
    out: list[Example] = []
    for n, example in enumerate(pool):
        if len(out) >= wanted or n >= tries:
            break
        try:
            # Extractive: whether the documents answer it is retrieval's and the guard's question, and a
            # configured LLM would otherwise be asked every candidate when the page first loads.
            result = pipeline.ask(example.question, answer_mode="extractive")
        except CiteQAError:
            continue
        if answers(example, result):
            out.append(example)
    return out


class ExampleCache:
    """The verified examples of the served index, computed once per index generation (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[int, str] | None = None
        self._examples: list[Example] = []

    def get(self, pipeline: Pipeline) -> tuple[int, list[Example]]:
        saved = pipeline.retriever.saved
        generation = saved.manifest.generation
        key = (generation, saved.manifest.created)
        with self._lock:  # one computation at a time; others wait for its result
            if self._key != key:
                t0 = time.perf_counter()
                self._examples = verified(pipeline, candidates(saved.documents, saved.passages))
                self._key = key
                log.info(
                    "example questions for index generation %d: %d kept in %.1f s",
                    generation,
                    len(self._examples),
                    time.perf_counter() - t0,
                )
            return generation, list(self._examples)
