"""Example questions (``GET /api/examples``), and a passage's place (section, page, language) in responses.

The candidates are checked as pure functions over hand-made records; that a kept example is answered is
checked against the real model and index (the seed corpus, and a corpus with nothing to make one from).
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from index.store import DocumentRecord
from index.types import Hit, Passage
from service.app import create_app
from service.examples import Example, candidates, document_candidates, verified
from service.pipeline import Pipeline, RankedPassage
from service.views import passage_out
from tests.conftest import REPO, SEED_ID, make_settings


def record(doc_id: str, title: str, path: str = "", updated: str = "2024-01-01T00:00:00Z") -> DocumentRecord:
    return DocumentRecord(
        id=doc_id,
        path=path or f"{doc_id}.md",
        title=title,
        format="markdown",
        encoding="utf-8",
        pages=None,
        size=1,
        mtime_ns=1,
        content_hash="x",
        added=updated,
        updated=updated,
        segment="s",
        rows=(0, 1),
        sentence_rows=(0, 1),
    )


def passage(doc_id: str, paragraph: int, section: tuple[str, ...] = (), text: str = "text") -> Passage:
    return Passage(
        id=Passage.make_id(doc_id, paragraph),
        document_id=doc_id,
        title="t",
        paragraph=paragraph,
        text=text,
        start=0,
        end=len(text),
        section=section,
    )


def test_candidates_come_from_titles_and_headings_in_their_own_language() -> None:
    doc = record("guide", "Harbour guide")
    passages = [
        passage("guide", 1, ("Lighthouse",)),
        passage("guide", 2, ("Lighthouse",)),  # the same heading: one question
        passage("guide", 3, ("Ferries", "营业时间")),  # the innermost heading, in its own language
        passage("guide", 4, ("Harbour guide",)),  # a heading repeating the title: nothing new
        passage("guide", 5, ("42",)),  # no script to ask in
        passage("guide", 6, ("x" * 61,)),  # a sentence, not a topic
        passage("guide", 7),
    ]
    got = document_candidates(doc, passages)
    assert [(e.question, e.lang, e.section) for e in got] == [
        ("What is “Harbour guide” about?", "en", ()),
        ("What does the document say about Lighthouse?", "en", ("Lighthouse",)),
        ("关于“营业时间”，文中是怎么说的？", "zh", ("Ferries", "营业时间")),
    ]
    assert {e.document_id for e in got} == {"guide"}


def test_a_title_that_is_only_the_file_name_makes_no_question_and_quotes_are_not_doubled() -> None:
    assert document_candidates(record("notes", "notes", "notes.txt"), [passage("notes", 1)]) == []
    assert document_candidates(record("a/b", "b", "a/b.txt"), [passage("a/b", 1)]) == []
    (book,) = document_candidates(record("w", "《白皮书》发布"), [])
    assert book.question == "《白皮书》发布的主要内容是什么？"
    (quoted,) = document_candidates(record("q", "“Tide tables”"), [])
    assert quoted.question == "What is “Tide tables” about?"


def test_candidates_take_turns_across_documents_newest_first() -> None:
    old = record("old", "Old notes", updated="2024-01-01T00:00:00Z")
    new = record("new", "新的笔记", updated="2024-06-01T00:00:00Z")
    passages = [passage("old", 1, ("Alpha",)), passage("new", 1, ("第一章",)), passage("old", 2, ("Beta",))]
    got = [(e.document_id, e.question) for e in candidates([old, new], passages)]
    assert got == [
        ("new", "“新的笔记”的主要内容是什么？"),
        ("old", "What is “Old notes” about?"),
        ("new", "关于“第一章”，文中是怎么说的？"),
        ("old", "What does the document say about Alpha?"),
        ("old", "What does the document say about Beta?"),
    ]


def test_only_questions_the_pipeline_answers_from_their_own_document_are_kept(pipeline: Pipeline) -> None:
    title = pipeline.retriever.saved.documents[0].title
    on_topic = Example(f"{title}的主要内容是什么？", "zh", SEED_ID, title)
    pool = [
        Example("What is the capital of Australia?", "en", SEED_ID, title),  # abstains
        Example(on_topic.question, "zh", "another-document", title),  # answered, but from another document
        Example(on_topic.question, "zh", SEED_ID, title, ("No such section",)),  # not from that section
        on_topic,
    ]
    assert verified(pipeline, pool) == [on_topic]
    assert verified(pipeline, pool, tries=3) == []  # the bound on questions asked holds


def test_examples_endpoint_serves_answered_questions_not_the_seed_sets(client: TestClient) -> None:
    response = client.get("/api/examples")
    assert response.status_code == 200
    body = response.json()
    assert body["examples"], body
    seed_questions = {
        json.loads(line)["question"] for line in (REPO / "eval" / "seed.jsonl").read_text().splitlines()
    }
    for example in body["examples"]:
        assert example["question"] not in seed_questions
        assert example["document_id"] == SEED_ID and example["lang"] == "zh"
        answer = client.post("/api/ask", json={"question": example["question"]}).json()
        assert not answer["abstained"] and answer["grounded"], answer
        cited = {c for s in answer["answer"]["sentences"] for c in s["citations"]}
        assert SEED_ID in {p["document_id"] for p in answer["passages"] if p["rank"] in cited}
    assert client.get("/api/examples").json() == body  # computed once per index generation


def test_a_corpus_with_nothing_to_ask_about_gets_no_examples(tmp_path: Path, encoder) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / "notes.txt").write_text("The garden has four apple trees.\n\nThe gate is painted green.\n")
    settings = make_settings(tmp_path, documents_dir=docs)
    with TestClient(create_app(settings, Pipeline.load(settings, encoder=encoder))) as c:
        response = c.get("/api/examples")
    assert response.status_code == 200
    assert response.json()["examples"] == []


def test_passages_carry_their_place_section_page_and_language(client: TestClient) -> None:
    response = client.post("/api/retrieve", json={"question": "盒马提供了多少件生活日用品？"})
    top = response.json()["passages"][0]
    assert (top["section"], top["page"], top["lang"]) == ([], None, "zh")  # the article has no headings

    placed = Passage(
        id="manual:3", document_id="manual", title="Manual", paragraph=3, text="Fit the inverter.", start=0,
        end=17, section=("Installation", "Inverter"), page=4, lang="en",
    )  # fmt: skip
    out = passage_out(RankedPassage(1, Hit(placed, 0.5, similarity=0.8), ((0, 17),)))
    assert (out.section, out.page, out.lang) == (["Installation", "Inverter"], 4, "en")
