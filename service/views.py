"""Convert the pipeline's typed results into the HTTP response models."""

from __future__ import annotations

from service.pipeline import AskResult, RankedPassage, RetrieveResult
from service.schemas import (
    AnswerOut,
    AnswerSentenceOut,
    AskResponse,
    DroppedOut,
    PassageOut,
    RetrieveResponse,
    Span,
)


def passage_out(p: RankedPassage) -> PassageOut:
    passage = p.hit.passage
    return PassageOut(
        rank=p.rank,
        id=passage.id,
        document_id=passage.document_id,
        title=passage.title,
        paragraph=passage.paragraph,
        text=passage.text,
        score=round(p.hit.score, 6),
        similarity=None if p.hit.similarity is None else round(p.hit.similarity, 6),
        start=passage.start,
        end=passage.end,
        highlight=[Span(start=s, end=e) for s, e in p.highlight],
        section=list(passage.section),
        page=passage.page,
        lang=passage.lang,
        same_text=list(p.hit.same_text),
    )


def _timings(t: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in t.items()}


def retrieve_response(result: RetrieveResult) -> RetrieveResponse:
    return RetrieveResponse(
        passages=[passage_out(p) for p in result.passages], timings_ms=_timings(result.timings_ms)
    )


def ask_response(result: AskResult) -> AskResponse:
    answer = result.answer
    return AskResponse(
        answer=AnswerOut(
            text=answer.text,
            sentences=[AnswerSentenceOut(text=s.text, citations=list(s.citations)) for s in answer.sentences],
        ),
        passages=[passage_out(p) for p in result.passages],
        grounded=result.grounded,
        abstained=result.abstained,
        abstained_reason=answer.reason if result.abstained else None,
        timings_ms=_timings(result.timings_ms),
        answer_mode=result.answer_mode,
        dropped=[
            DroppedOut(text=d.text, reason=d.reason, citations=list(d.citations)) for d in result.dropped
        ],
        generation_error=result.generation_error,
    )
