"""Pydantic models at the HTTP boundary (requests and responses)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TOP_K_MAX = 50


class QuestionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    question: str = Field(
        description="The question, in Chinese or English.", examples=["盒马提供了多少件生活日用品？"]
    )
    top_k: int = Field(default=5, ge=1, le=TOP_K_MAX, description="How many passages to return.")


class RetrieveRequest(QuestionRequest):
    pass


class AskRequest(QuestionRequest):
    pass


class Span(BaseModel):
    start: int = Field(description="Character offset into the passage text (inclusive).")
    end: int = Field(description="Character offset into the passage text (exclusive).")


class PassageOut(BaseModel):
    rank: int = Field(description="1-based rank in this response; answers cite it as [rank].")
    id: str = Field(description="<document id>:<paragraph>[.<part>]")
    document_id: str
    title: str
    paragraph: int = Field(description="1-based paragraph number in the document.")
    text: str
    score: float = Field(
        description="The ranking score: it orders the passages of one response, but its scale depends on "
        "how they were found (reciprocal-rank fusion, about 0.03, when BM25 is fused in; the dense score, "
        "about 0.8, in dense mode and for questions outside the corpus's script; BM25 in lexical mode). "
        "Use `similarity` to compare passages across questions."
    )
    similarity: float | None = Field(
        description="Cosine similarity of the question's and the passage's vectors: one scale for every "
        "question and search mode, unlike `score`. With the default model most pairs fall between 0.65 "
        "and 0.95, and a question in another language than the passage scores lower than one in the same "
        "language; it is not a calibrated probability of relevance. Null if the retriever computed no "
        "dense similarity."
    )
    start: int = Field(description="Offset of the passage text in its paragraph.")
    end: int
    highlight: list[Span] = Field(description="The best-matching sentence(s), as offsets into `text`.")


class RetrieveResponse(BaseModel):
    passages: list[PassageOut]
    timings_ms: dict[str, float]


class AnswerSentenceOut(BaseModel):
    text: str
    citations: list[int] = Field(description="Ranks of the passages that support this sentence.")


class AnswerOut(BaseModel):
    text: str = Field(description="The whole answer, with [n] citation markers.")
    sentences: list[AnswerSentenceOut]


class AskResponse(BaseModel):
    answer: AnswerOut
    passages: list[PassageOut]
    grounded: bool = Field(description="Every answer sentence is supported by a passage it cites.")
    abstained: bool = Field(description="The evidence was too weak to answer; `answer.text` says so.")
    abstained_reason: (
        Literal["no_evidence", "type_mismatch", "off_topic", "focus_missing", "low_confidence"] | None
    ) = Field(
        default=None,
        description="Why it abstained (null when it answered): `no_evidence` (nothing retrieved), "
        "`type_mismatch` (no passage states the kind of answer asked for, e.g. an amount or a date), "
        "`off_topic` (the passages are no closer to the question than unrelated text), `focus_missing` "
        "(the passage does not state what the question asks about, e.g. the thing counted or the role), "
        "`low_confidence` (the abstention model finds the evidence too unlikely to answer).",
    )
    timings_ms: dict[str, float]


class DocumentOut(BaseModel):
    id: str
    title: str
    date: str | None
    source_url: str | None
    passages: int


class DocumentsResponse(BaseModel):
    documents: list[DocumentOut]


class HealthResponse(BaseModel):
    status: str
    index_loaded: bool
    passages: int
    model: str
    index_fresh: bool = Field(description="The served index matches the documents folder as it is now.")


class ReloadResponse(BaseModel):
    status: str
    passages: int = Field(description="Passages in the index now served.")
    model: str
    index_fresh: bool = Field(description="The served index matches the documents folder as it is now.")


class ErrorResponse(BaseModel):
    error: str = Field(description="A short machine-readable code, e.g. `empty_question`.")
    detail: str = Field(description="What is wrong, in words.")
