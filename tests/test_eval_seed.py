"""The hand-written seed eval set: every quote and answer is in its article, every paragraph is covered.

Two articles: the seed article as delivered (Chinese) and an English one written for the cross-lingual
gates (eval/seed_documents/001_kettleby_tidal_mill.txt), asked about in both languages.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from eval.dataset import EvalItem, is_relevant, load_items

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "eval" / "seed.jsonl"
DOC_ID = "000_df1882c45adb6c58"
ENGLISH_ID = "001_kettleby_tidal_mill"
ARTICLE = ROOT / "documents" / f"{DOC_ID}.txt"
CJK = re.compile(r"[\u4e00-\u9fff]")


def article_paragraphs(doc_id: str = DOC_ID) -> list[str]:
    """Paragraph texts numbered as the indexer numbers them: one per <p>; a source URL line after
    the last <p> joins the last paragraph (the "（文章来源：东方网）" passage)."""
    folder = ROOT / "documents" if doc_id == DOC_ID else ROOT / "eval" / "seed_documents"
    text = (folder / f"{doc_id}.txt").read_text(encoding="utf-8")
    _, _, body = text.split("---", 2)
    soup = BeautifulSoup(body, "html.parser")
    paragraphs = [p.get_text() for p in soup.find_all("p")]
    url = re.search(r"<(https?://[^>]+)>", body)
    if url is not None:
        paragraphs[-1] = f"{paragraphs[-1]} {url.group(1)}"
    return paragraphs


def all_paragraphs() -> list[tuple[str, int, str]]:
    """(document id, paragraph number, text) for every paragraph of both articles."""
    return [
        (doc, n, text)
        for doc in (DOC_ID, ENGLISH_ID)
        for n, text in enumerate(article_paragraphs(doc), start=1)
    ]


@pytest.fixture(scope="module")
def items() -> list[EvalItem]:
    return load_items(SEED)


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    """Every paragraph of both articles, the seed article's first."""
    return [text for _, _, text in all_paragraphs()]


def paragraphs_of(item: EvalItem, paragraphs: list[str]) -> set[int]:
    return {n for n, text in enumerate(paragraphs, start=1) for q in item.gold_quotes if q in text}


def test_articles_have_17_and_6_paragraphs() -> None:
    seed = article_paragraphs()
    assert len(seed) == 17
    assert seed[-1].startswith("（文章来源：东方网）")
    assert len(article_paragraphs(ENGLISH_ID)) == 6


def test_counts_and_language_balance(items: list[EvalItem]) -> None:
    langs = Counter(item.lang for item in items)
    assert len(items) >= 84
    assert langs["zh"] == langs["en"] == len(items) // 2
    unanswerable = Counter(item.lang for item in items if not item.answerable)
    assert sum(unanswerable.values()) >= 10
    assert unanswerable["zh"] >= 5 and unanswerable["en"] >= 5


def test_ids_unique_and_named_by_language(items: list[EvalItem]) -> None:
    assert len({item.id for item in items}) == len(items)
    for item in items:
        assert re.fullmatch(rf"seed-{item.lang}-\d\d", item.id), item.id


def test_questions_are_in_their_language(items: list[EvalItem]) -> None:
    for item in items:
        assert bool(CJK.search(item.question)) == (item.lang == "zh"), item.id


def test_every_quote_is_verbatim_within_one_sentence(items: list[EvalItem], paragraphs: list[str]) -> None:
    for item in items:
        for quote in item.gold_quotes:
            assert any(quote in text for text in paragraphs), (item.id, quote)
            # A quote inside one sentence survives sentence-aligned splitting of long paragraphs
            # (the chunker ends sentences at 。！？；).
            assert not re.search(r"[。！？；]", quote.rstrip("。！？；")), (item.id, quote)


def test_every_answer_is_in_a_gold_paragraph(items: list[EvalItem], paragraphs: list[str]) -> None:
    for item in items:
        if not item.answerable:
            assert item.answers == item.gold_quotes == item.gold_passages == ()
            continue
        gold = paragraphs_of(item, paragraphs)
        assert gold, item.id
        for answer in item.answers:
            # Answers to questions about the Chinese article are Chinese text or numbers.
            english = all(paragraphs[n - 1].isascii() for n in gold)
            assert english or CJK.search(answer) or re.search(r"\d", answer), (item.id, answer)
            assert any(answer in paragraphs[n - 1] for n in gold), (item.id, answer)


def test_every_paragraph_is_covered_twice(items: list[EvalItem], paragraphs: list[str]) -> None:
    coverage: Counter[int] = Counter()
    for item in items:
        coverage.update(paragraphs_of(item, paragraphs))
    assert {n: coverage[n] for n in range(1, len(paragraphs) + 1) if coverage[n] < 2} == {}


def test_the_english_article_is_asked_about_in_both_languages(items: list[EvalItem]) -> None:
    english = article_paragraphs(ENGLISH_ID)
    about = [i for i in items if any(q in text for q in i.gold_quotes for text in english)]
    assert Counter(i.lang for i in about) == {"zh": 9, "en": 9}


def test_relevance_finds_the_gold_passage(items: list[EvalItem]) -> None:
    for item in items:
        relevant = [(doc, n) for doc, n, text in all_paragraphs() if is_relevant(item, f"{doc}:{n}", text)]
        assert bool(relevant) == item.answerable, item.id
