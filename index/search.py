"""Search: per-language candidate pools (dense FAISS + structured BM25), merged on calibrated scores.

Every passage records its language (``Passage.lang``), so a question is scored against each passage for its
own (question language, passage language) pair, never for a corpus-wide script:

1. *Pools.* The passages of each language form a pool with its own dense and lexical candidates (a row
   filter on the one FAISS index), so passages in the question's language cannot crowd the right passage in
   the other language out of the candidate list (measured on a mixed corpus: shared/notes/cross-lingual.md,
   second experiment). A one-language corpus is one pool, searched without a filter.
2. *Dense.* A passage's dense score mixes its own similarity with that of its best sentence: a short
   sentence that states the answer matches a question better than the whole paragraph around it, while the
   paragraph keeps single sentences from winning on chance similarity. Cross-lingual sentence similarities
   are noisier, so the sentence weighs less when the passage is in another language than the question
   (hybrid recall@1, XQuAD, Chinese corpus, 300 questions each: zh 0.927 (w=0.7) -> 0.940 (w=0.8); en 0.827
   (w=0.5) -> 0.687 (w=0.8)).
3. *Lexical.* BM25 over the pool (the pool is its own collection: its own document frequencies and
   lengths), with the question's own tokens when it is in the pool's language, else with its dictionary
   translation (``index.translate``) as a structured query; the signal is a share of the pool's best
   match, or of ``LEXICAL_FLOOR`` of the attainable score when that is higher (a small pool's best is
   often weak).
4. *Calibration.* Raw cosines of different language pairs are not on one scale (an English question scores
   English passages higher than the right Chinese one). Each pair has a small logistic model
   (``index/data/calibration.json``, fitted on held-out XQuAD articles by ``citeqa fit-calibration``) that
   turns a candidate's dense score, its lead over its pool and its lexical score into P(relevant); the pools
   are merged on it, and ``Hit.score`` is that probability (hybrid and dense modes).

Where the dense half runs is one seam, ``DenseRows``: a pool's dense and sentence search, the similarities
of a question's candidates and their best sentences, and the records of its hits. ``MemoryRows`` searches
the loaded vectors with FAISS; ``index.milvus.EngineRows`` searches Milvus, so that a replica holds no
vectors or texts (``CITEQA_MILVUS_SEARCH=engine``). Everything else above is the same code for both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from index.chunk import same_text_key
from index.embed import Encoder
from index.errors import CiteQAError
from index.lexical import PAIRS, BM25Index, Term, pair_of, plain_terms, question_lang, tokenize, top_rows
from index.store import FaissStore, SavedIndex
from index.translate import Translator
from index.types import Hit, Passage

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")
FEATURES: tuple[str, ...] = ("dense", "lead", "lexical")
# "lexical": BM25 as a share of the pool's best, but of no less than LEXICAL_FLOOR of what the question's
# terms would score at saturation (``BM25Index.attainable``): in a small pool (one short document in the other
# language) the best is often a weak match, one term of four, which would otherwise count as full evidence.
# 0.1 lies below the 2nd percentile of the gold paragraph's share on XQuAD (same-language pairs, 0.11 to
# 0.15: the right passage keeps 1.0) and at the median of the best match in a pool without it.
LEXICAL_FLOOR = 0.1
POOL_HEAD = 20  # "lead": dense score minus the mean of the best POOL_HEAD of its pool and the background


class CalibrationError(CiteQAError):
    """A score calibration file that cannot be used."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per language pair, P(relevant) = sigmoid(weights . features + bias) over ``FEATURES`` (see the module
    docstring), plus a record of how it was fitted."""

    models: Mapping[str, tuple[tuple[float, ...], float]]
    fitted_on: Mapping[str, Any] = field(default_factory=dict)

    def probability(self, pair: str, features: np.ndarray) -> np.ndarray:
        weights, bias = self.models[pair]
        z = np.asarray(features, dtype=np.float64) @ np.asarray(weights, dtype=np.float64) + bias
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))))

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "models": {p: {"weights": list(w), "bias": b} for p, (w, b) in self.models.items()},
            "fitted_on": dict(self.fitted_on),
        }

    @classmethod
    def from_json(cls, obj: Any, source: str = "calibration") -> Calibration:
        try:
            if list(obj["features"]) != list(FEATURES):
                raise ValueError(f"features {obj['features']} are not {list(FEATURES)}")
            models = {
                str(pair): (tuple(float(w) for w in m["weights"]), float(m["bias"]))
                for pair, m in obj["models"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CalibrationError(f"{source}: not a score calibration ({exc})") from exc
        if missing := [pair for pair in PAIRS if pair not in models]:
            raise CalibrationError(f"{source}: no model for {', '.join(missing)}")
        if any(len(w) != len(FEATURES) for w, _ in models.values()):
            raise CalibrationError(f"{source}: every model needs {len(FEATURES)} weights")
        return cls(models, dict(obj.get("fitted_on", {})))

    @classmethod
    def load(cls, path: Path | None = None) -> Calibration:
        """The calibration at ``path``, or the one shipped in ``index/data/calibration.json``."""
        if path is None:
            text = resources.files("index").joinpath("data/calibration.json").read_text(encoding="utf-8")
            return cls.from_json(json.loads(text), "index/data/calibration.json")
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")), str(path))
        except (OSError, json.JSONDecodeError) as exc:
            raise CalibrationError(f"{path}: cannot read a score calibration ({exc})") from exc


@dataclass(frozen=True, slots=True)
class Candidate:
    """A passage found for a question, with what each signal said about it (see ``FEATURES``)."""

    row: int
    pair: str
    dense: float
    lead: float
    lexical: float  # BM25 over the pool's best (LEXICAL_FLOOR), 0..1 (0 without lexical evidence)
    bm25: float  # the raw (structured) BM25 score

    def features(self) -> np.ndarray:
        return np.array([self.dense, self.lead, self.lexical], dtype=np.float64)


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[Hit, ...]
    query_vector: np.ndarray
    lexical_used: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    # The lexical query per passage language: the question's own tokens, or their translation.
    terms: Mapping[str, tuple[Term, ...]] = field(default_factory=dict)
    calibrated: bool = False  # hit scores are calibrated probabilities of relevance (hybrid and dense)


@dataclass(frozen=True)
class Pool:
    """The passages of one language: their rows and, in a mixed corpus, the row filters that search only
    them (None: the pool is the whole corpus)."""

    lang: str
    rows: np.ndarray
    passage_filter: np.ndarray | None
    sentence_filter: np.ndarray | None
    sentences: int  # how many sentence rows belong to the pool


@dataclass(frozen=True)
class RowScores:
    """What the dense side says about one question's candidate rows: each passage's own similarity, and its
    best sentence's (absent for a passage without sentences)."""

    passage: Mapping[int, float]
    sentence: Mapping[int, float]


class DenseRows(Protocol):
    """The dense half of search over one loaded generation, and its rows: ``MemoryRows`` (FAISS over the
    vectors in this process, the default) or ``index.milvus.EngineRows`` (searches in Milvus, so the
    process holds no vectors or texts: ``CITEQA_MILVUS_SEARCH=engine``). The Retriever never asks which."""

    def search(
        self, pool: Pool, vectors: np.ndarray, depth: int, sentence_depth: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per question: the pool's ``depth`` best passage rows and their similarities, and the passage rows
        of its ``sentence_depth`` best sentences."""
        ...

    def scores(self, vector: np.ndarray, rows: Sequence[int], own: Mapping[int, float]) -> RowScores:
        """The similarities of ``rows`` (``own``: those the search already gave) and of their best
        sentences, for one question."""
        ...

    def similarity(self, vector: np.ndarray, rows: Sequence[int], scores: RowScores) -> list[float]:
        """The plain cosine of the question and each passage of ``rows`` (``Hit.similarity``)."""
        ...

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        """The passage records of ``rows``, in order (what a question's hits carry)."""
        ...


class MemoryRows:
    """``DenseRows`` over the loaded vectors: the passages' FAISS index of ``SavedIndex`` and one over the
    sentence vectors, filtered per pool inside FAISS."""

    def __init__(self, saved: SavedIndex) -> None:
        self.saved = saved
        self.sentence_store = FaissStore(saved.manifest.dimension)
        self.sentence_store.add(np.asarray(saved.sentence_vectors))
        self.sentence_rows = saved.sentence_passage_rows

    def search(
        self, pool: Pool, vectors: np.ndarray, depth: int, sentence_depth: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        scores, ids = self.saved.store.search(vectors, depth, rows=pool.passage_filter)
        _, sent_ids = self.sentence_store.search(vectors, sentence_depth, rows=pool.sentence_filter)
        out = []
        for i in range(len(vectors)):
            keep = ids[i] >= 0
            sentences = sent_ids[i][sent_ids[i] >= 0] if sentence_depth else sent_ids[i][:0]
            out.append((ids[i][keep], scores[i][keep], self.sentence_rows[sentences]))
        return out

    def scores(self, vector: np.ndarray, rows: Sequence[int], own: Mapping[int, float]) -> RowScores:
        passage: dict[int, float] = {}
        sentence: dict[int, float] = {}
        for row in rows:
            passage[row] = own[row] if row in own else self.saved.store.similarity(vector, row)
            sentences = self.saved.sentences_by_passage.get(row)
            if sentences is not None:
                sentence[row] = float((self.saved.sentence_vectors[sentences] @ vector).max())
        return RowScores(passage, sentence)

    def similarity(self, vector: np.ndarray, rows: Sequence[int], scores: RowScores) -> list[float]:
        return [self.saved.store.similarity(vector, r) for r in rows]

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return [self.saved.passages[r] for r in rows]


class Retriever:
    """A loaded index plus its encoder, BM25 index, translator and pools. Built once, shared by every
    request."""

    def __init__(
        self,
        saved: SavedIndex,
        encoder: Encoder,
        *,
        candidates: int = 50,
        sentence_weight: float = 0.8,
        sentence_weight_cross: float = 0.5,
        calibration: Calibration | None = None,
        translator: Translator | None = None,
        background: Mapping[str, np.ndarray] | None = None,
        rrf_k: int = 60,
        rows: DenseRows | None = None,
    ) -> None:
        self.saved = saved
        self.rows = rows if rows is not None else MemoryRows(saved)  # dense search and row access
        self.encoder = encoder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.sentence_weight = sentence_weight
        self.sentence_weight_cross = sentence_weight_cross
        self.calibration = calibration or Calibration.load()
        self.translator = translator  # None: no lexical evidence across languages
        # Per language, vectors of unrelated sentences (service/data/background.txt): they fill a pool's
        # head up to POOL_HEAD, so "lead" stays a lead over unrelated text in a small pool (see _candidates).
        self.background = dict(background or {})
        self.sentence_rows = saved.sentence_passage_rows
        self.langs = saved.langs
        self.ids = saved.ids
        self.pools = self._pools()
        # BM25 per pool: each language's passages are their own collection (document frequencies and
        # lengths of the other language's passages say nothing about a word's weight in this one).
        tokens = saved.tokens or [tokenize(p.text) for p in saved.passages]
        self.lexical = {
            lang: BM25Index(tokens=[tokens[int(r)] for r in pool.rows]) for lang, pool in self.pools.items()
        }

    def _pools(self) -> dict[str, Pool]:
        """One pool per passage language; a one-language corpus is one pool without filters."""
        langs = np.array(self.langs, dtype=object)
        present = sorted(set(self.langs))
        if len(present) <= 1:
            lang = present[0] if present else "und"
            rows = np.arange(len(self.langs), dtype=np.int64)
            return {lang: Pool(lang, rows, None, None, len(self.sentence_rows))}
        pools = {}
        sentence_langs = langs[self.sentence_rows] if len(self.sentence_rows) else langs[:0]
        for lang in present:
            rows = np.flatnonzero(langs == lang).astype(np.int64)
            sentences = np.flatnonzero(sentence_langs == lang).astype(np.int64)
            pools[lang] = Pool(lang, rows, rows, sentences, len(sentences))
        return pools

    @property
    def passages(self) -> Sequence[Passage]:
        return self.saved.passages

    def terms(self, question: str, passage_lang: str) -> tuple[Term, ...]:
        """The lexical query for ``question`` over passages in ``passage_lang``: its own tokens when it is
        written in that language, else its dictionary translation (none without a translator)."""
        if passage_lang not in ("zh", "en") or passage_lang == question_lang(question):
            return plain_terms(tokenize(question))
        if self.translator is None:
            return ()
        return self.translator.terms(question, passage_lang)

    def search_batch(self, questions: Sequence[str], k: int, mode: Mode = "hybrid") -> list[SearchResult]:
        """Batch first: one encoder call for every question, then per pool one FAISS call each."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        t0 = time.perf_counter()
        vectors = self.encoder.encode_queries(questions)
        t1 = time.perf_counter()
        found = {lang: self._dense_search(pool, vectors, k) for lang, pool in self.pools.items()}
        t2 = time.perf_counter()
        per_question = {
            "encode": (t1 - t0) * 1000 / max(1, len(questions)),
            "dense_search": (t2 - t1) * 1000 / max(1, len(questions)),
        }
        results = []
        for i, question in enumerate(questions):
            t3 = time.perf_counter()
            candidates, terms, scores = self._candidates(
                question, vectors[i], {lang: f[i] for lang, f in found.items()}, mode
            )
            hits = self._rank(candidates, vectors[i], k, mode, scores)
            timings = per_question | {"lexical_search": (time.perf_counter() - t3) * 1000}
            lexical = mode != "dense" and any(terms.values())
            results.append(SearchResult(hits, vectors[i], lexical, timings, terms, mode != "lexical"))
        return results

    def search(self, question: str, k: int, mode: Mode = "hybrid") -> SearchResult:
        return self.search_batch([question], k, mode)[0]

    def retrieve(self, question: str, k: int, mode: Mode = "hybrid") -> list[Hit]:
        return list(self.search(question, k, mode).hits)

    def signals(self, question: str) -> list[Candidate]:
        """Every candidate of every pool for ``question`` with its signals (for fitting the calibration)."""
        vector = self.encoder.encode_queries([question])
        found = {lang: self._dense_search(pool, vector, self.candidates) for lang, pool in self.pools.items()}
        return self._candidates(question, vector[0], {lang: f[0] for lang, f in found.items()}, "hybrid")[0]

    def _dense_search(
        self, pool: Pool, vectors: np.ndarray, k: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per question: passage rows, their similarities, and the passage rows of the best sentences."""
        depth = min(max(k, self.candidates), len(pool.rows))
        return self.rows.search(pool, vectors, depth, min(4 * depth, pool.sentences))

    def _sentence_weight(self, pair: str) -> float:
        question, passage = pair.split("-")
        return self.sentence_weight if question == passage else self.sentence_weight_cross

    @staticmethod
    def _dense(rows: Sequence[int], scores: RowScores, weight: float) -> dict[int, float]:
        """Row -> (1 - weight) * passage similarity + weight * best sentence similarity, computed exactly."""
        dense = {}
        for row in rows:
            passage = scores.passage[row]
            best = scores.sentence.get(row, passage)
            dense[row] = (1 - weight) * passage + weight * best
        return dense

    def _candidates(
        self,
        question: str,
        vector: np.ndarray,
        found: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
        mode: Mode,
    ) -> tuple[list[Candidate], dict[str, tuple[Term, ...]], RowScores]:
        """Every pool's candidates (dense, sentence and lexical finds) with their signals, the lexical
        query used per pool, and the dense scores of every candidate (one ``DenseRows.scores`` call)."""
        lang = question_lang(question)
        out: list[Candidate] = []
        all_terms: dict[str, tuple[Term, ...]] = {}
        found_rows: dict[str, list[int]] = {}
        bm25s: dict[str, np.ndarray | None] = {}
        own: dict[int, float] = {}
        for pool_lang, pool in self.pools.items():
            rows, sims, sentence_rows = found[pool_lang]
            terms = self.terms(question, pool_lang) if mode != "dense" else ()
            all_terms[pool_lang] = terms
            bm25s[pool_lang] = bm25 = self._bm25(pool, terms) if terms else None
            lexical_rows = top_rows(bm25, self.candidates)[1] if bm25 is not None else rows[:0]
            rows_all = dict.fromkeys([*rows.tolist(), *sentence_rows.tolist(), *lexical_rows.tolist()])
            found_rows[pool_lang] = [int(r) for r in rows_all]
            own |= {int(r): float(s) for r, s in zip(rows, sims, strict=True)}
        row_scores = self.rows.scores(vector, [r for rows in found_rows.values() for r in rows], own)
        for pool_lang in self.pools:
            pair = pair_of(lang, pool_lang)
            bm25 = bm25s[pool_lang]
            dense = self._dense(found_rows[pool_lang], row_scores, self._sentence_weight(pair))
            # The pool's best POOL_HEAD scores, with unrelated text in the pool's language among them: in a
            # large pool the head is unrelated passages anyway, while a pool of a few passages of one
            # document would otherwise measure each passage's lead over its own siblings.
            unrelated = self.background.get(pool_lang, np.zeros((0, len(vector)), dtype=np.float32)) @ vector
            scores = np.concatenate([np.fromiter(dense.values(), dtype=np.float64), unrelated])
            head = np.sort(scores)[::-1][:POOL_HEAD]
            base = float(head.mean()) if len(head) else 0.0
            best_lexical = float(bm25.max()) if bm25 is not None and len(bm25) else 0.0
            if bm25 is not None:
                attainable = self.lexical[pool_lang].attainable(all_terms[pool_lang])
                best_lexical = max(best_lexical, LEXICAL_FLOOR * attainable)
            for row, d in dense.items():
                raw = float(bm25[row]) if bm25 is not None else 0.0
                lexical = raw / best_lexical if best_lexical > 0 else 0.0
                out.append(Candidate(row, pair, d, d - base, lexical, raw))
        return out, all_terms, row_scores

    def _fused_order(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """``candidates`` by reciprocal-rank fusion (k = ``rrf_k``) of their dense ranking and their BM25
        ranking (positive scores only). Ranks alone often tie (first by one signal and second by the other,
        against the reverse): the higher dense score breaks the tie, then the passage id."""
        ids = {c.row: self.ids[c.row] for c in candidates}
        fused = dict.fromkeys(ids, 0.0)
        dense = sorted(candidates, key=lambda c: (-c.dense, ids[c.row]))
        lexical = sorted((c for c in candidates if c.bm25 > 0), key=lambda c: (-c.bm25, ids[c.row]))
        for ranking in (dense, lexical):
            for rank, c in enumerate(ranking, start=1):
                fused[c.row] += 1.0 / (self.rrf_k + rank)
        return sorted(candidates, key=lambda c: (-fused[c.row], -c.dense, ids[c.row]))

    def _bm25(self, pool: Pool, terms: Sequence[Term]) -> np.ndarray:
        """BM25 of ``terms`` over ``pool``, as an array over every row (0 outside the pool)."""
        scores = np.zeros(len(self.langs), dtype=np.float32)
        scores[pool.rows] = self.lexical[pool.lang].term_scores(terms)
        return scores

    def _rank(
        self, candidates: Sequence[Candidate], vector: np.ndarray, k: int, mode: Mode, scores: RowScores
    ) -> tuple[Hit, ...]:
        ids = self.ids
        if not candidates:
            return ()
        if mode == "lexical":
            scored = {c.row: c.bm25 for c in candidates if c.bm25 > 0}
        else:
            scored = {}
            for pair in sorted({c.pair for c in candidates}):
                mine = [c for c in candidates if c.pair == pair]
                features = np.vstack([c.features() for c in mine])
                probability = self.calibration.probability(pair, features)
                question, passage = pair.split("-")
                if question == passage:
                    # Same language: the pool keeps the order of reciprocal-rank fusion of its dense and BM25
                    # rankings (as measured before pools: XQuAD zh->zh 0.951), and its calibrated
                    # probabilities, best first, go down that order: they only place it among other pools.
                    mine = self._fused_order(mine)
                    probability = np.sort(probability)[::-1]
                scored |= {c.row: float(p) for c, p in zip(mine, probability, strict=True)}
        by_row = {c.row: c for c in candidates}
        position = {row: i for i, row in enumerate(scored)}  # a pool's own order breaks ties
        order = sorted(scored, key=lambda r: (-scored[r], position[r], ids[r]))
        top, passages, same = self._distinct(order, k)
        similarities = self.rows.similarity(vector, top, scores)
        return tuple(
            Hit(
                passage=passage,
                score=scored[r],
                dense_score=by_row[r].dense,
                lexical_score=None if mode == "dense" else by_row[r].bm25,
                similarity=similarity,
                same_text=tuple(same[r]),
            )
            for r, passage, similarity in zip(top, passages, similarities, strict=True)
        )

    def _distinct(
        self, order: Sequence[int], k: int
    ) -> tuple[list[int], list[Passage], dict[int, list[str]]]:
        """The first ``k`` rows of ``order`` whose texts differ (``same_text_key``), their passages, and per
        row the ids of the passages after it with the same text. Boilerplate repeated through a document
        (a footer after every section, the same notice in every file) would otherwise fill the top ``k``
        with one text; records are fetched a batch of ``k`` at a time."""
        top: list[int] = []
        passages: list[Passage] = []
        same: dict[int, list[str]] = {}
        first: dict[str, int] = {}
        start = 0
        while len(top) < k and start < len(order):
            batch = order[start : start + k]
            start += len(batch)
            for row, passage in zip(batch, self.rows.passages(batch), strict=True):
                key = same_text_key(passage.text)
                if key in first:
                    same[first[key]].append(passage.id)
                elif len(top) < k:
                    first[key] = row
                    top.append(row)
                    passages.append(passage)
                    same[row] = []
        return top, passages, same
