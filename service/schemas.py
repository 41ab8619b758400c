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
    answer_mode: Literal["extractive", "generated"] | None = Field(
        default=None,
        description="`extractive` (sentences quoted from the passages) or `generated` (written by the "
        "configured LLM, every sentence checked against the passages it cites). Default: generated when an "
        "LLM is configured (CITEQA_LLM_URL), else extractive; `generated` without one is a 422 "
        "`llm_not_configured`.",
    )


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
        description="The ranking score: in hybrid and dense modes the calibrated probability that the "
        "passage is relevant (fitted per question/passage language pair), in lexical mode BM25. Use "
        "`similarity` to compare passages across modes."
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
    section: list[str] = Field(
        default_factory=list,
        description="The headings above the passage in its document, outermost first (empty when the "
        "document has none).",
    )
    page: int | None = Field(default=None, description="1-based page of paged formats (PDF); else null.")
    lang: str = Field(
        default="und", description="The passage's language as its script tells: `zh`, `en` or `und`."
    )
    same_text: list[str] = Field(
        default_factory=list,
        description="Ids of lower-ranked passages with the same text (a paragraph repeated in this or "
        "another document), left out of the list so that one text takes one rank.",
    )


class RetrieveResponse(BaseModel):
    passages: list[PassageOut]
    timings_ms: dict[str, float]


class AnswerSentenceOut(BaseModel):
    text: str
    citations: list[int] = Field(description="Ranks of the passages that support this sentence.")


class AnswerOut(BaseModel):
    text: str = Field(description="The whole answer, with [n] citation markers.")
    sentences: list[AnswerSentenceOut]


class DroppedOut(BaseModel):
    text: str = Field(description="The generated sentence, without its citation markers.")
    reason: Literal["uncited", "unsupported_number", "unsupported_name", "not_similar"]
    citations: list[int] = Field(description="The citations the LLM gave it.")


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
        "(the passage does not state what the question asks about, e.g. the thing counted or the role, or "
        "the question names nothing at all: `hello`, `What?`, `为什么？`), "
        "`low_confidence` (the abstention model finds the evidence too unlikely to answer).",
    )
    timings_ms: dict[str, float]
    answer_mode: Literal["extractive", "generated"] = Field(
        default="extractive",
        description="What made `answer`: `generated` only when the LLM answered and the guard kept at "
        "least one sentence; otherwise the extractive answer (or abstention), as without an LLM.",
    )
    dropped: list[DroppedOut] = Field(
        default_factory=list,
        description="Generated sentences the grounding guard removed, with the reason: `uncited` (no "
        "citation to a returned passage), `unsupported_number` (a number or date no cited passage states), "
        "`unsupported_name` (a name no cited passage states), `not_similar` (no sentence of a cited passage "
        "is close enough in meaning).",
    )
    generation_error: str | None = Field(
        default=None,
        description="Why the LLM gave no usable answer (unreachable, too slow, an error status, malformed "
        "or empty output); the answer is then the extractive one. Null otherwise.",
    )


class DocumentOut(BaseModel):
    id: str = Field(description="The document id: its path in the documents folder without the suffix.")
    path: str = Field(description="Its file, relative to the documents folder.")
    title: str
    status: str = Field(
        description="`indexed`; `skipped` (no reader could use the file: see `reason`); `pending` (in the "
        "folder, not yet in the served index: a job is indexing it); `removing` (its file is gone, its "
        "passages leave at the next commit)."
    )
    reason: str | None = Field(default=None, description="Why a skipped file is not indexed.")
    format: str | None = Field(default=None, description="article, markdown, text, html, pdf or docx.")
    encoding: str | None = Field(default=None, description="The detected text encoding (text formats).")
    passages: int = 0
    pages: int | None = None
    size: int | None = Field(default=None, description="File size in bytes.")
    added: str | None = Field(default=None, description="When it was first indexed (ISO 8601, UTC).")
    updated: str | None = Field(default=None, description="When this version was indexed.")
    date: str | None = None
    source_url: str | None = None


class DocumentsResponse(BaseModel):
    documents: list[DocumentOut]
    generation: int = Field(description="The served index's generation (it grows with every commit).")
    passages: int = Field(description="Passages in the served index.")
    counts: dict[str, int] = Field(description="Documents per status.")


class FileResultOut(BaseModel):
    path: str = Field(description="The file, relative to the documents folder.")
    document_id: str
    status: str = Field(description="pending, indexed, skipped (see `reason`), removed or failed.")
    reason: str | None = None
    passages: int | None = None


class JobOut(BaseModel):
    id: str
    kind: str = Field(description="upload, replace, delete, or sync (a change of the folder).")
    status: str = Field(description="queued, running, done or failed.")
    created: str
    started: str | None
    finished: str | None
    stage: str | None = Field(description="scan, read, embed or commit while running.")
    progress: dict[str, int] = Field(description="`done` of `total` units of the current stage.")
    rate: float | None = Field(description="Units per second in the current stage.")
    eta_s: float | None = Field(description="Seconds left in the current stage, once measurable.")
    error: str | None
    generation: int | None = Field(description="The index generation the job committed.")
    files: list[FileResultOut]
    summary: dict[str, int] = Field(description="Documents added, updated, removed, and files skipped.")


class JobResponse(BaseModel):
    job: JobOut


class JobsResponse(BaseModel):
    jobs: list[JobOut]


class HealthResponse(BaseModel):
    status: str = Field(description="`ok`, or `degraded` (still serving) with the reason.")
    reason: str | None = Field(default=None, description="Why the status is degraded.")
    index_loaded: bool
    passages: int
    documents: int = 0
    generation: int = 0
    model: str
    index_fresh: bool = Field(description="The served index matches the documents folder as it is now.")
    jobs: int = Field(default=0, description="Jobs queued or running.")
    answer_modes: list[Literal["extractive", "generated"]] = Field(
        description="The `answer_mode`s `/api/ask` accepts here, its default first: `generated` only when "
        "an LLM is configured (CITEQA_LLM_URL).",
    )


class ReloadResponse(BaseModel):
    status: str
    passages: int = Field(description="Passages in the index now served.")
    model: str
    index_fresh: bool = Field(description="The served index matches the documents folder as it is now.")


class ExampleOut(BaseModel):
    question: str = Field(description="A question made from the document's title or a section heading.")
    lang: str = Field(description="Its language (the document's): `zh` or `en`.")
    document_id: str = Field(description="The document it was made from, which the answer cites.")
    title: str
    section: list[str] = Field(description="The section it was made from (empty for the title).")


class ExamplesResponse(BaseModel):
    examples: list[ExampleOut] = Field(
        description="Example questions that CiteQA answers from the served documents, grounded and citing "
        "the document they were made from; empty when it could make none."
    )
    generation: int = Field(description="The index generation they were made for.")


class ErrorResponse(BaseModel):
    error: str = Field(description="A short machine-readable code, e.g. `empty_question`.")
    detail: str = Field(description="What is wrong, in words.")
