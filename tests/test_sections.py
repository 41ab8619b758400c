"""Section headings speak for what is under them: a table of rates under "住宿标准" is about lodging, and
its column header names the unit of every value (real model, a small folder of one policy)."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory, encoder) -> Pipeline:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("sections")
    docs = tmp / "documents"
    docs.mkdir()
    (docs / "policy.md").write_text(POLICY, encoding="utf-8")
    return Pipeline.load(make_settings(Path(tmp), documents_dir=docs), encoder=encoder)


def test_a_row_under_a_heading_states_what_the_heading_says(policy: Pipeline) -> None:
    question = "经理出差住宿标准是多少？"
    search = policy.retriever.search(question, 5)
    scored = policy.answerer.score(question, search, list(search.hits))
    best = max(scored, key=lambda s: s.score)
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
    tmp = tmp_path_factory.mktemp("titles")
    docs = tmp / "documents"
    docs.mkdir()
    (docs / "mill.md").write_text(
        "# Kettleby Tidal Mill\n\nThe mill was built in 1788 by a grain merchant.\n\n"
        "It still grinds flour on the ebb tide twice a day.\n",
        encoding="utf-8",
    )
    pipeline = Pipeline.load(make_settings(Path(tmp), documents_dir=docs), encoder=encoder)
    question = "When was the Kettleby mill built?"
    search = pipeline.retriever.search(question, 5)
    hits = list(search.hits)
    scored = pipeline.answerer.score(question, search, hits)
    best = max(scored, key=lambda s: s.score)
    assert best.text == "The mill was built in 1788 by a grain merchant."
    assert "Kettleby" not in best.text and hits[best.rank - 1].passage.title == "Kettleby Tidal Mill"
    assert pipeline.answerer.evidence(question, search, hits, best).names == 1.0
