"""The question's journey: validate -> search -> rank -> answer -> grounding check.

``Pipeline`` is loaded once (model, index, BM25, sentence vectors) and shared by the HTTP API, the CLI and
the batch evaluation, so every caller runs exactly the same code path.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from index.embed import Encoder, load_encoder
from index.errors import (
    EmptyQuestionError,
    GenerationUnavailableError,
    QuestionTooLongError,
    WordlessQuestionError,
)
from index.ingest import ProgressSink, UpdateReport, index_status, update_index
from index.search import DenseRows, Mode, Retriever, SearchResult
from index.store import ANN_ABOVE, FilesStore, IndexStore, SavedIndex, load_index
from index.translate import Translator, translator_for
from index.types import Hit
from service.abstention import AbstentionModel
from service.answer import Answer, Answerer, ExtractiveAnswerer, ScoredSentence, background_by_lang
from service.batching import BatchingEncoder
from service.focus import FocusChecker
from service.generate import Generation, Generator, StreamedSentence, llm_client
from service.grounding import check_sentences
from service.guard import DroppedSentence, Guard
from service.settings import Settings

Span = tuple[int, int]
AnswerMode = Literal["extractive", "generated"]
_SURROGATE = re.compile("[\ud800-\udfff]")
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})  # controls, zero-width/format, spaces


@dataclass(frozen=True, slots=True)
class RankedPassage:
    rank: int
    hit: Hit
    highlight: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class RetrieveResult:
    question: str
    passages: tuple[RankedPassage, ...]
    timings_ms: dict[str, float]


@dataclass(frozen=True, slots=True)
class AskResult:
    question: str
    answer: Answer
    passages: tuple[RankedPassage, ...]
    supported: tuple[bool, ...]  # per answer sentence
    grounded: bool
    abstained: bool
    timings_ms: dict[str, float]
    answer_mode: AnswerMode = "extractive"  # what made ``answer``
    dropped: tuple[DroppedSentence, ...] = ()  # generated sentences the guard removed
    generation_error: str | None = None  # why the LLM gave nothing usable (then: the extractive answer)


def highlights(
    hits: tuple[Hit, ...], scored: list[ScoredSentence], chosen: set[tuple[int, int]]
) -> list[tuple[Span, ...]]:
    """Per passage: the answer sentences taken from it, else its best-scoring sentence."""
    out = []
    for rank in range(1, len(hits) + 1):
        mine = [s for s in scored if s.rank == rank]
        picked = [(s.start, s.end) for s in mine if (rank, s.start) in chosen]
        if not picked and mine:
            best = max(mine, key=lambda s: (s.score, -s.start))
            picked = [(best.start, best.end)]
        out.append(tuple(sorted(picked)))
    return out


def encoder_for(settings: Settings) -> Encoder:
    """The configured backend's encoder (``CITEQA_ENCODER_BACKEND``), behind micro-batching if enabled."""
    encoder = load_encoder(
        settings.model,
        settings.models_dir,
        settings.encoder_backend,
        batch_size=settings.encode_batch_size,
        threads=settings.torch_threads,
    )
    if not settings.micro_batching:
        return encoder
    return BatchingEncoder(encoder, wait_ms=settings.batch_wait_ms)


def configure_threads(settings: Settings, vectors: int) -> None:
    """FAISS threads: one for small indexes, where one query takes microseconds and an OpenMP team would
    cost more (and compete with torch); torch's own count is set where the model loads (``encoder_for``)."""
    import faiss

    faiss.omp_set_num_threads(1 if vectors < ANN_ABOVE else settings.torch_threads)


_STORES: dict[tuple[object, ...], IndexStore] = {}


def store_for(settings: Settings) -> IndexStore:
    """The configured store (``CITEQA_STORE``): the index directory, or the Milvus collections (one client
    per server, URI and prefix in this process, shared by reloads and jobs)."""
    if settings.store == "faiss":
        return FilesStore(settings.resolved_index_dir)
    key = (
        settings.milvus_uri,
        settings.milvus_token,
        settings.milvus_db,
        settings.milvus_prefix,
        settings.milvus_timeout,
        str(settings.data_dir.resolve()),
    )
    if key not in _STORES:
        from index.milvus import MilvusStore

        _STORES[key] = MilvusStore(
            settings.milvus_uri,
            token=settings.milvus_token.get_secret_value() if settings.milvus_token else None,
            db_name=settings.milvus_db,
            prefix=settings.milvus_prefix,
            timeout=settings.milvus_timeout,
            lock_dir=settings.data_dir,
        )
    return _STORES[key]


def update(
    settings: Settings, encoder: Encoder, *, force: bool = False, progress: ProgressSink | None = None
) -> UpdateReport:
    """Bring the index up to date with the documents folder now (incrementally unless ``force``)."""
    return update_index(
        settings.documents_dir,
        store_for(settings),
        encoder,
        max_tokens=settings.max_passage_tokens,
        batch_size=settings.encode_batch_size,
        force=force,
        progress=progress,
    )


def ensure_index(
    settings: Settings,
    encoder: Encoder,
    *,
    force: bool = False,
    repair: bool = True,
    progress: ProgressSink | None = None,
) -> UpdateReport | None:
    """Update the index when it is missing or stale (or when forced); return the report, or None if fresh.

    A damaged index (a segment failing its checksum) is repaired only with ``repair``: ``citeqa build``
    repairs, while ``serve``/``ask`` leave it alone so that the loader reports the damage instead of hiding
    it.
    """
    status = index_status(
        settings.documents_dir,
        store_for(settings),
        fingerprint=encoder.fingerprint,
        max_tokens=settings.max_passage_tokens,
    )
    if not force and (status.state == "fresh" or (status.state == "damaged" and not repair)):
        return None
    report = update(settings, encoder, force=force, progress=progress)
    if status.state in ("stale", "damaged") and not report.reason:
        report = replace(report, reason=f"the index was {status.state}: {status.reason}")
    return report


def load_served_index(settings: Settings, encoder: Encoder) -> tuple[SavedIndex, DenseRows | None]:
    """The committed generation, loaded into memory (None: the Retriever searches it with FAISS), or, with
    ``CITEQA_MILVUS_SEARCH=engine``, only its ids, tokens and spans, with the rows that search in Milvus."""
    store = store_for(settings)
    if settings.milvus_search == "engine":
        from index.milvus import EngineRows, MilvusStore, load_engine_index

        assert isinstance(store, MilvusStore)  # Settings refuses engine search without the Milvus store
        saved = load_engine_index(store, model=encoder.name, fingerprint=encoder.fingerprint)
        return saved, EngineRows(store, saved)
    saved = load_index(
        store, model=encoder.name, fingerprint=encoder.fingerprint, index_type=settings.index_type
    )
    return saved, None


def corpus_translator(settings: Settings, saved: SavedIndex) -> Translator:
    """The dictionary translator for this index's vocabulary (``index.translate``: the parsed dictionary
    under the data dir, built on first use; an unchanged vocabulary reuses this process's translator)."""
    return translator_for({t for tokens in saved.tokens for t in tokens}, settings.dictionaries_dir)


_BACKGROUND: dict[str, dict[str, np.ndarray]] = {}


def background_vectors(encoder: Encoder) -> dict[str, np.ndarray]:
    """The background sentences' vectors per language, embedded once per model (reloads reuse them)."""
    if encoder.fingerprint not in _BACKGROUND:
        _BACKGROUND[encoder.fingerprint] = background_by_lang(encoder.encode_passages)
    return _BACKGROUND[encoder.fingerprint]


def focus_checker(retriever: Retriever) -> FocusChecker:
    """The focus check with the retrieval model's word vectors and, where the corpus has one, its dictionary
    translator (the retriever's): translations of a question's words, names by sound, known translations."""
    translator = retriever.translator
    if translator is None:
        return FocusChecker(retriever.encoder)
    return FocusChecker(
        retriever.encoder,
        translator.words,
        sounds_like=translator.sounds_like,
        knows=translator.known,
        glossed_in=translator.glossed_in,
    )


class Pipeline:
    def __init__(self, settings: Settings, retriever: Retriever, answerer: Answerer | None = None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.answerer: Answerer = answerer or ExtractiveAnswerer(
            retriever.saved,
            background=background_vectors(retriever.encoder),
            abstention=AbstentionModel.load(settings.abstention_model),
            focus=focus_checker(retriever),
            threshold=settings.abstain_threshold,
            min_margin=settings.abstain_min_margin,
            max_sentences=settings.max_answer_sentences,
        )
        # Generated answers (optional): the LLM client is shared by the process, the guard uses this
        # pipeline's encoder.
        self.generator = (
            Generator(llm_client(settings), Guard(retriever.encoder)) if settings.llm_enabled else None
        )

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        encoder: Encoder | None = None,
        build: bool = True,
        progress: ProgressSink | None = None,
    ) -> Pipeline:
        """Load model and index once; update the index first when it is missing or stale and ``build``."""
        encoder = encoder or encoder_for(settings)
        if build:
            ensure_index(settings, encoder, repair=False, progress=progress)
        saved, rows = load_served_index(settings, encoder)
        configure_threads(settings, saved.store.size + len(saved.sentences))
        retriever = Retriever(
            saved,
            encoder,
            candidates=settings.candidates,
            translator=corpus_translator(settings, saved),
            background=background_vectors(encoder),
            rrf_k=settings.rrf_k,
            sentence_weight=settings.sentence_weight,
            sentence_weight_cross=settings.sentence_weight_cross,
            rows=rows,
        )
        return cls(settings, retriever)

    def close(self) -> None:
        """Stop the encoder's background worker (micro-batching), if it has one."""
        close = getattr(self.retriever.encoder, "close", None)
        if callable(close):
            close()

    @property
    def model_name(self) -> str:
        return self.retriever.encoder.name

    def validate(self, question: str) -> str:
        # A lone surrogate (JSON "\ud800") is not text and breaks tokenizers: replace it, as a decoder would.
        question = _SURROGATE.sub("\ufffd", question)
        if not any(unicodedata.category(c) not in _INVISIBLE for c in question):
            raise EmptyQuestionError("the question is empty; send a question in Chinese or English")
        if not any(c.isalnum() for c in question):  # letters of any script (CJK included) and digits
            raise WordlessQuestionError(
                "the question has no words, only punctuation or symbols; "
                "send a question in Chinese or English"
            )
        if len(question) > self.settings.max_question_chars:
            raise QuestionTooLongError(
                f"the question is {len(question)} characters long; the limit is "
                f"{self.settings.max_question_chars} (CITEQA_MAX_QUESTION_CHARS)"
            )
        return question.strip()

    def _search(self, question: str, top_k: int, mode: Mode | None) -> tuple[str, SearchResult]:
        q = self.validate(question)
        search = self.retriever.search(q, top_k, mode or self.settings.search_mode)
        return q, search

    def retrieve(self, question: str, top_k: int = 5, mode: Mode | None = None) -> RetrieveResult:
        t0 = time.perf_counter()
        q, search = self._search(question, top_k, mode)
        t1 = time.perf_counter()
        scored = self.answerer.score(q, search, search.hits)
        marks = highlights(search.hits, scored, set())
        passages = tuple(RankedPassage(i, h, marks[i - 1]) for i, h in enumerate(search.hits, start=1))
        timings = search.timings_ms | {
            "retrieve": (t1 - t0) * 1000,
            "highlight": (time.perf_counter() - t1) * 1000,
            "total": (time.perf_counter() - t0) * 1000,
        }
        return RetrieveResult(q, passages, timings)

    def answer_mode(self, requested: AnswerMode | None) -> AnswerMode:
        """The mode to answer in: as requested, by default generated when an LLM is configured."""
        if requested is None:
            return "generated" if self.generator is not None else "extractive"
        if requested == "generated" and self.generator is None:
            raise GenerationUnavailableError(
                "answer_mode 'generated' needs an LLM: set CITEQA_LLM_URL to an OpenAI-compatible server, "
                "or ask with answer_mode 'extractive'"
            )
        return requested

    def ask(
        self,
        question: str,
        top_k: int = 5,
        mode: Mode | None = None,
        answer_mode: AnswerMode | None = None,
    ) -> AskResult:
        """The extractive answer (or abstention); in generated mode, the LLM's answer instead when the
        guard keeps any of it (``service.generate``), else the extractive one with what was dropped."""
        wanted = self.answer_mode(answer_mode)
        result = self._ask_extractive(question, top_k, mode)
        if wanted == "extractive" or result.abstained or self.generator is None:
            return result
        hits = tuple(p.hit for p in result.passages)
        t0 = time.perf_counter()
        gen = self.generator.answer(result.question, hits, result.answer)
        return self._with_generation(result, gen, t0)

    def ask_streamed(
        self,
        question: str,
        top_k: int = 5,
        mode: Mode | None = None,
        answer_mode: AnswerMode | None = None,
    ) -> tuple[AskResult, Iterator[StreamedSentence | AskResult]]:
        """``ask`` for a stream: validates and answers extractively now (errors raise here), then returns
        that result and an iterator that, in generated mode, yields each generated sentence the guard keeps
        as soon as the LLM has written it (``Generator.stream``), and last the final ``AskResult``, as
        ``ask`` would give it (but a fault after sentences were yielded falls back all the same: the
        caller withdraws them)."""
        wanted = self.answer_mode(answer_mode)
        result = self._ask_extractive(question, top_k, mode)
        if wanted == "extractive" or result.abstained or self.generator is None:
            return result, iter([result])
        return result, self._generated_stream(self.generator, result)

    def _generated_stream(
        self, generator: Generator, result: AskResult
    ) -> Iterator[StreamedSentence | AskResult]:
        hits = tuple(p.hit for p in result.passages)
        t0 = time.perf_counter()
        for item in generator.stream(result.question, hits, result.answer):
            yield self._with_generation(result, item, t0) if isinstance(item, Generation) else item

    def _with_generation(self, result: AskResult, gen: Generation, t0: float) -> AskResult:
        """The extractive ``result`` with the generated answer in its place when there is one (its
        sentences' supporting spans as the passages' highlights), else with what was dropped and why."""
        timings = result.timings_ms | gen.timings_ms
        timings["total"] = result.timings_ms["total"] + (time.perf_counter() - t0) * 1000
        if gen.answer is None:
            return replace(result, dropped=gen.dropped, generation_error=gen.error, timings_ms=timings)
        marks: dict[int, list[Span]] = {}
        for s in gen.kept:
            rank, start, end = s.support
            marks.setdefault(rank, []).append((start, end))
        passages = tuple(
            replace(p, highlight=tuple(sorted(set(marks[p.rank])))) if p.rank in marks else p
            for p in result.passages
        )
        return replace(
            result,
            answer=gen.answer,
            passages=passages,
            supported=tuple(True for _ in gen.kept),  # each passed the guard
            grounded=True,
            answer_mode="generated",
            dropped=gen.dropped,
            timings_ms=timings,
        )

    def _ask_extractive(self, question: str, top_k: int, mode: Mode | None) -> AskResult:
        t0 = time.perf_counter()
        q, search = self._search(question, top_k, mode)
        t1 = time.perf_counter()
        answer, scored = self.answerer.answer(q, search, search.hits)
        t2 = time.perf_counter()
        by_rank = {i: h.passage.text for i, h in enumerate(search.hits, start=1)}
        supported = tuple(check_sentences([(s.text, s.citations) for s in answer.sentences], by_rank))
        chosen = {
            (c, s.start)
            for a in answer.sentences
            for c in a.citations
            for s in scored
            if s.rank == c and s.text in a.text  # a quote may start at the sentence it refers back to
        }
        marks = highlights(search.hits, scored, chosen)
        passages = tuple(RankedPassage(i, h, marks[i - 1]) for i, h in enumerate(search.hits, start=1))
        timings = search.timings_ms | {
            "retrieve": (t1 - t0) * 1000,
            "answer": (t2 - t1) * 1000,
            "grounding": (time.perf_counter() - t2) * 1000,
            "total": (time.perf_counter() - t0) * 1000,
        }
        grounded = all(supported) if supported else answer.abstained
        return AskResult(q, answer, passages, supported, grounded, answer.abstained, timings)
