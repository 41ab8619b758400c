"""Section headings speak for what is under them: a table of rates under "住宿标准" is about lodging, and
its column header names the unit of every value (real model, a small folder of one policy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.embed import Encoder
from index.search import SearchResult
from service.answer import ScoredSentence
from service.pipeline import Pipeline
from tests.conftest import make_settings

POLICY = """# 员工差旅报销制度

## 一、适用范围

本制度适用于公司全体正式员工因公出差产生的交通、住宿和餐饮费用。

## 二、住宿标准

| 职级 | 一线城市（元/晚） | 其他城市（元/晚） |
|---|---|---|
| 普通员工 | 450 | 350 |
| 经理 | 600 | 450 |
| 总监及以上 | 800 | 600 |

## 三、报销流程

1. 出差结束后十个工作日内在OA系统提交报销单
2. 附上发票原件和行程单
"""
MANAGER_ROW = "职级：经理 | 一线城市（元/晚）：600 | 其他城市（元/晚）：450"


def one_document(
    tmp_path_factory: pytest.TempPathFactory, encoder: Encoder, name: str, text: str
) -> Pipeline:
    """A pipeline over a folder holding one document, ``name``, with ``text``."""
    tmp = tmp_path_factory.mktemp(Path(name).stem)
    docs = tmp / "documents"
    docs.mkdir()
    (docs / name).write_text(text, encoding="utf-8")
    return Pipeline.load(make_settings(Path(tmp), documents_dir=docs), encoder=encoder)


def best_sentence(pipeline: Pipeline, question: str) -> tuple[ScoredSentence, SearchResult]:
    """The answerer's best-scored sentence for ``question`` over the top 5 passages, and the search."""
    search = pipeline.retriever.search(question, 5)
    return max(pipeline.answerer.score(question, search, list(search.hits)), key=lambda s: s.score), search


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory, encoder) -> Pipeline:  # type: ignore[no-untyped-def]
    return one_document(tmp_path_factory, encoder, "policy.md", POLICY)


def test_a_row_under_a_heading_states_what_the_heading_says(policy: Pipeline) -> None:
    question = "经理出差住宿标准是多少？"
    best, _ = best_sentence(policy, question)
    # 住宿 and 标准 are stated by the heading above the row; the scope sentence states 出差 and 住宿 itself.
    assert best.text == MANAGER_ROW
    response = policy.ask(question)
    assert not response.answer.abstained
    assert MANAGER_ROW in response.answer.text


def test_a_value_in_a_column_of_yuan_answers_how_much_money(policy: Pipeline) -> None:
    response = policy.ask("经理住宿每晚多少钱？")  # 钱 names the kind of answer, not what it is about
    assert not response.answer.abstained, response.answer.reason
    assert MANAGER_ROW in response.answer.text


def test_a_passage_states_what_its_documents_title_says(
    tmp_path_factory: pytest.TempPathFactory,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    # "Kettleby" is named only by the title over the page: the passage still speaks for it.
    pipeline = one_document(
        tmp_path_factory,
        encoder,
        "mill.md",
        "# Kettleby Tidal Mill\n\nThe mill was built in 1788 by a grain merchant.\n\n"
        "It still grinds flour on the ebb tide twice a day.\n",
    )
    question = "When was the Kettleby mill built?"
    best, search = best_sentence(pipeline, question)
    hits = list(search.hits)
    assert best.text == "The mill was built in 1788 by a grain merchant."
    assert "Kettleby" not in best.text and hits[best.rank - 1].passage.title == "Kettleby Tidal Mill"
    assert pipeline.answerer.evidence(question, search, hits, best).names == 1.0


def test_a_sentence_states_what_its_documents_title_names(
    tmp_path_factory: pytest.TempPathFactory,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    # Chinese prose leaves the article's subject unsaid after its first sentence: "体长可达12公分。" gives
    # the length of the fish the title names, and outscores the first sentence, which names the fish and
    # states no length.
    pipeline = one_document(
        tmp_path_factory,
        encoder,
        "fish.md",
        "# 短齿天竺鲷\n\n短齿天竺鲷，又名短牙天竺鲷、正天竺鲷，俗名大目侧仔，"
        "为辐鳍鱼纲鲈形目鲈亚目天竺鲷科的其中一个种。"
        "本鱼体长圆而侧扁，体呈褐色，腹面较淡。体长可达12公分。栖息在沿岸礁区，以小型甲壳类为食。\n",
    )
    question = "短齿天竺鲷体长可达多少公分？"
    best, _ = best_sentence(pipeline, question)
    assert best.text == "体长可达12公分。"
    response = pipeline.ask(question)
    assert not response.answer.abstained, response.answer.reason
    assert "12公分" in response.answer.text
