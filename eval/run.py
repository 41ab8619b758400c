"""The batch runner: every eval question through the same ``Pipeline.ask`` as ``POST /api/ask``.

``evaluate`` turns items into ``QuestionRecord``s; ``run`` loads an eval set, builds or reuses the
index of its documents folder, evaluates, and writes a run folder::

    out_dir/summary.json    eval.metrics.summarise, plus the run's configuration under "config"
    out_dir/results.jsonl   one eval.metrics.record_to_json object per question
    out_dir/run.trec        the retrieved passages as a TREC run file
    out_dir/report.md       with recall_at_k.png and top_score_hist.png (eval.report.write_report)

An eval set's index lives in ``<data_dir>/eval-indexes/<hash of the corpus's content>``, so a second
run over the same corpus reuses it (the manifest decides whether it is still fresh) and never touches the
service's own index.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from eval.dataset import EvalItem, is_relevant, load_items
from eval.metrics import QuestionRecord, generation_summary, record_to_json, summarise
from eval.report import write_report, write_trec_run

if TYPE_CHECKING:
    from index.embed import Encoder
    from index.ingest import ProgressSink
    from index.search import Mode
    from index.types import Passage
    from service.pipeline import AnswerMode, AskResult
    from service.settings import Settings

Progress = Callable[[int, int], None]
"""Called with (done, total) after each question (or each embedding batch while building)."""

OUTPUT_FILES: tuple[str, ...] = ("summary.json", "results.jsonl", "run.trec", "report.md")


class Asker(Protocol):
    """What ``evaluate`` needs of a pipeline: ``service.pipeline.Pipeline`` is one."""

    def ask(
        self, question: str, top_k: int = ..., mode: Mode | None = ..., answer_mode: AnswerMode | None = ...
    ) -> AskResult: ...


def evaluate(
    items: Sequence[EvalItem],
    pipeline: Asker,
    *,
    top_k: int = 10,
    mode: Mode = "hybrid",
    progress: Progress | None = None,
    corpus: Sequence[Passage] | None = None,
    answer_mode: AnswerMode | None = None,
) -> list[QuestionRecord]:
    """Ask every item's question and record what came back, in item order.

    ``corpus`` (every indexed passage), when given, lets each record carry the number of relevant
    passages in the whole corpus, which makes nDCG's ideal exact (see eval.metrics).
    ``latency_ms`` is the wall-clock time of the ``ask`` call, as a caller of the API sees it.
    """
    records: list[QuestionRecord] = []
    corpus_langs = {p.lang for p in corpus or ()}
    for done, item in enumerate(items, start=1):
        t0 = time.perf_counter()
        if answer_mode is None:
            result = pipeline.ask(item.question, top_k, mode)
        else:
            result = pipeline.ask(item.question, top_k, mode, answer_mode=answer_mode)
        latency_ms = (time.perf_counter() - t0) * 1000
        relevant = tuple(
            any(is_relevant(item, i, p.hit.passage.text) for i in (p.hit.passage.id, *p.hit.same_text))
            for p in result.passages
        )
        gold = None if corpus is None else [p for p in corpus if is_relevant(item, p.id, p.text)]
        relevant_by_rank = {p.rank: rel for p, rel in zip(result.passages, relevant, strict=True)}
        answer = result.answer
        records.append(
            QuestionRecord(
                item_id=item.id,
                lang=item.lang,
                answerable=item.answerable,
                question=item.question,
                passage_ids=tuple(p.hit.passage.id for p in result.passages),
                scores=tuple(float(p.hit.score) for p in result.passages),
                relevant=relevant,
                answer=answer.text,
                abstained=result.abstained,
                gold_answers=item.answers,
                question_lang_answers=item.question_lang_answers,
                sentence_supported=tuple(result.supported),
                # A citation is a 1-based passage rank; one outside the list points nowhere relevant.
                citation_relevant=tuple(
                    relevant_by_rank.get(rank, False) for s in answer.sentences for rank in s.citations
                ),
                latency_ms=latency_ms,
                confidence=answer.confidence,
                n_relevant=None if gold is None else len(gold),
                evidence=None if answer.evidence is None else answer.evidence.to_json(),
                reason=answer.reason,
                gold_lang=None if gold is None else gold_lang(gold, corpus_langs),
                answer_mode=result.answer_mode,
                generated_sentences=len(result.dropped)
                + (len(answer.sentences) if result.answer_mode == "generated" else 0),
                dropped=tuple(d.reason for d in result.dropped),
                generation_error=result.generation_error,
            )
        )
        if progress is not None:
            progress(done, len(items))
    return records


def gold_lang(gold: Sequence[Passage], corpus_langs: set[str]) -> str | None:
    """The language of the passages that answer a question (the most common one if they differ); for an
    unanswerable one (no ``gold``), the corpus's language when it has one language, else None."""
    langs = [p.lang for p in gold]
    if langs:
        return max(sorted(set(langs)), key=langs.count)
    return next(iter(corpus_langs)) if len(corpus_langs) == 1 else None


def eval_index_dir(settings: Settings, documents_dir: Path) -> Path:
    """``<data_dir>/eval-indexes/<12 hex digits of the corpus's content hash>``: identical corpora in
    different folders (``xquad-en`` and ``xquad-en-zhq``) share one index."""
    from index.ingest import scan_folder

    digest = hashlib.sha256()
    for f in scan_folder(documents_dir):
        digest.update(f"{f.rel}\0{hashlib.sha256(f.path.read_bytes()).hexdigest()}\0".encode())
    return settings.data_dir / "eval-indexes" / digest.hexdigest()[:12]


def run(
    questions_path: str | Path,
    out_dir: str | Path,
    *,
    settings: Settings,
    documents: str | Path | None = None,
    top_k: int = 10,
    mode: Mode = "hybrid",
    encoder: Encoder | None = None,
    progress: Progress | None = None,
    build_progress: ProgressSink | None = None,
    answer_mode: AnswerMode | None = None,
) -> dict[str, Any]:
    """Evaluate ``questions_path`` over ``documents`` (default: ``settings.documents_dir``) and write
    the run folder ``out_dir``; return the summary (as written to summary.json).

    ``encoder`` lets several runs share one loaded model; ``progress`` follows the questions,
    ``build_progress`` the embedding when the index has to be (re)built.
    """
    from service.pipeline import Pipeline, encoder_for, ensure_index

    items = load_items(questions_path)
    documents_dir = Path(documents) if documents is not None else settings.documents_dir
    index_dir = eval_index_dir(settings, documents_dir)
    run_settings = settings.model_copy(update={"documents_dir": documents_dir, "index_dir": index_dir})
    encoder = encoder or encoder_for(run_settings)
    ensure_index(run_settings, encoder, progress=build_progress)
    pipeline = Pipeline.load(run_settings, encoder=encoder, build=False)
    used = pipeline.answer_mode(answer_mode)  # refuses "generated" without an LLM, before any question

    records = evaluate(
        items,
        pipeline,
        top_k=top_k,
        mode=mode,
        progress=progress,
        corpus=tuple(pipeline.retriever.saved.passages),  # read once if it lives in the store
        answer_mode=used,
    )
    summary: dict[str, Any] = dict(summarise(records))
    if used == "generated":
        summary["generation"] = generation_summary(records)
    summary["config"] = {
        "questions": str(questions_path),
        "documents": str(documents_dir),
        "model": pipeline.model_name,
        "mode": mode,
        "top_k": top_k,
        "abstain_threshold": run_settings.abstain_threshold,  # None: the abstention model's per pair
        "abstention_model": str(run_settings.abstention_model or "service/data/abstention.json"),
        "answer_mode": used,
    }

    out = Path(out_dir)
    write_results(out, summary, records)
    write_trec_run(out / "run.trec", records, run_name=f"citeqa-{mode}")
    write_report(out, summary, records)
    return summary


def write_results(out: Path, summary: dict[str, Any], records: Sequence[QuestionRecord]) -> None:
    """A run's ``summary.json`` and ``results.jsonl`` (one record per question) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    with (out / "results.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record_to_json(record), ensure_ascii=False) + "\n")
