"""Retrieval quality on the seed corpus with the real default model: the paragraph that answers is in
the top 5 for every question, and first for most of them, in both languages; and on the mixed corpus (the
Chinese seed article beside an English one), every language pair finds its own passage."""

import os
import subprocess
from pathlib import Path

import pytest

from index.lexical import question_lang
from index.search import Candidate
from service.answer import ExtractiveAnswerer, refers_back
from service.pipeline import Pipeline
from tests.conftest import REPO, SEED_ID, make_settings

ENGLISH_ID = "001_kettleby_tidal_mill"

# (question, paragraph(s) that answer it): paragraphs 1 and 3 both state who released the white paper.
QUESTIONS: list[tuple[str, int | tuple[int, ...]]] = [
    ("盒马提供了多少件生活日用品？", 2),
    ("哪些机构联合发布了《安全应急数智化转型白皮书》？", (1, 3)),
    ("2021年夏天河南遭遇了什么灾害？", 2),
    ("菜鸟在河南救灾中做了什么？", 2),
    ("全国安全生产事故起数和死亡人数连续多少年双下降？", 4),
    ("2020年全国因自然灾害死亡失踪多少人？", 4),
    ("哪个部门是安全产业和应急产业管理的牵头部门？", 6),
    ("安全应急数智化转型呈现出哪“四化”趋势？", 9),
    ("服务精准化是什么的必然要求？", 14),
    ("这篇文章的来源是哪里？", 17),
    ("亿元GDP事故死亡率降到了多少？", 4),
    ("白皮书研究安全应急数智化转型是从哪两个方面入手的？", 8),
    ("How many items did Hema give away?", 2),
    ("Which organisations jointly released the white paper?", (1, 3)),
    ("What disaster hit Henan in the summer of 2021?", 2),
    ("How many people died or went missing from natural disasters in 2020?", 4),
    ("Which ministry leads the management of the safety and emergency industries?", 6),
    ("What are the four trends of the digital and intelligent transformation?", 9),
    ("What does equipment intelligence mean for disaster prevention?", 13),
    ("Where did this article come from?", 17),
    ("What technologies such as cloud computing, big data and 5G should be integrated?", 10),
    ("Is China one of the countries most severely affected by natural disasters?", 5),
    ("What is the first trend, integrated supervision, required by?", 11),
    ("What does the white paper hope to provide for the two festivals period?", 1),
]


@pytest.fixture(scope="module")
def pipeline(mixed_pipeline: Pipeline) -> Pipeline:
    """This module asks about both seed documents: the mixed seed corpus (tests/conftest.py)."""
    return mixed_pipeline


@pytest.fixture(scope="module")
def ranks(pipeline: Pipeline) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for question, paragraph in QUESTIONS:
        wanted = paragraph if isinstance(paragraph, tuple) else (paragraph,)
        hits = pipeline.retrieve(question, top_k=5).passages
        out[question] = next(
            (
                p.rank
                for p in hits
                if p.hit.passage.document_id == SEED_ID and p.hit.passage.paragraph in wanted
            ),
            None,
        )
    return out


def test_questions_are_balanced() -> None:
    zh = [q for q, _ in QUESTIONS if not q.isascii()]
    assert len(QUESTIONS) >= 20 and len(zh) == len(QUESTIONS) // 2


@pytest.mark.parametrize(("question", "paragraph"), QUESTIONS)
def test_answering_paragraph_is_in_the_top_5(
    ranks: dict[str, int | None], question: str, paragraph: int | tuple[int, ...]
) -> None:
    assert ranks[question] is not None, f"paragraph {paragraph} not in the top 5 for {question!r}"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_answering_paragraph_is_first_for_most(ranks: dict[str, int | None], lang: str) -> None:
    mine = [q for q, _ in QUESTIONS if q.isascii() == (lang == "en")]
    firsts = sum(ranks[q] == 1 for q in mine)
    # Measured: 11/12 Chinese and 10/12 English (cross-lingual) questions rank it first.
    assert firsts / len(mine) >= 2 / 3, {q: ranks[q] for q in mine}


# Every (question, passage) language pair on one mixed corpus: (question, document, paragraph).
PARAGRAPH_1_FIRST = pytest.mark.xfail(
    strict=True,  # the day it passes, this mark must go
    reason="not met: the right document, but its paragraph 1 (which names the Kettleby tidal mill) ranks "
    "above paragraph 2 (which says who built it); the Chinese question finds paragraph 2 since the "
    "dictionary joins 建造 ('to build') to 'built' by lemma",
)
MIXED: list[object] = [
    ("How wide is the new waterwheel?", ENGLISH_ID, 4),
    ("新水车的直径是多少米？", ENGLISH_ID, 4),
    pytest.param("Who built the tidal mill at Kettleby?", ENGLISH_ID, 2, marks=PARAGRAPH_1_FIRST),
    ("磨坊是谁建造的？", ENGLISH_ID, 2),
    ("How many items did Hema give away?", SEED_ID, 2),
    ("盒马提供了多少件生活日用品？", SEED_ID, 2),
]


@pytest.mark.parametrize(("question", "document", "paragraph"), MIXED)
def test_mixed_corpus_every_pair_finds_its_passage_first(
    pipeline: Pipeline, question: str, document: str, paragraph: int
) -> None:
    """Passages in the question's own language must not crowd out the right one in the other language: the
    pools are scored per language pair and merged on calibrated scores (index.search)."""
    first = pipeline.retrieve(question, top_k=5).passages[0].hit
    assert (first.passage.document_id, first.passage.paragraph) == (document, paragraph)
    assert first.passage.lang == ("en" if document == ENGLISH_ID else "zh")
    assert 0.0 < first.score <= 1.0  # a calibrated probability of relevance


def test_cross_lingual_answers_quote_the_other_language_and_flag_the_pair(pipeline: Pipeline) -> None:
    result = pipeline.ask("新水车的直径是多少米？")
    assert not result.abstained and "6.5 metres" in result.answer.text
    assert result.answer.evidence is not None and result.answer.evidence.pair == "zh-en"  # en evidence
    same = pipeline.ask("How wide is the new waterwheel?")
    assert same.answer.evidence is not None and same.answer.evidence.pair == "en-en"
    assert question_lang("新水车的直径是多少米？") == "zh"


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of Australia?",
        "谁赢得了2018年世界杯？",
        "How do I reverse a list in Python?",
        "今天天气怎么样？",
    ],
)
def test_unanswerable_questions_abstain(pipeline: Pipeline, question: str) -> None:
    result = pipeline.ask(question)
    assert result.abstained and result.answer.sentences == ()
    assert result.grounded  # nothing claimed, nothing unsupported


@pytest.mark.slow
def test_cli_retrieve_prints_score_and_similarity(pipeline: Pipeline) -> None:
    """The plain-text listing shows the ranking score and the comparable cosine similarity."""
    settings = pipeline.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEQA_")} | {
        "CITEQA_DOCUMENTS_DIR": str(settings.documents_dir),
        "CITEQA_DATA_DIR": str(settings.data_dir),
        "CITEQA_INDEX_DIR": str(settings.resolved_index_dir),
    }
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "citeqa"), "retrieve", "How many items did Hema give away?", "-k", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    heads = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert len(heads) == 2
    first = heads[0].split()
    assert first[0] == "[1]" and first[2].startswith("score=") and first[3].startswith("similarity=0.")
    assert 0.5 < float(first[3].removeprefix("similarity=")) < 1.0


def test_a_fusion_tie_goes_to_the_stronger_dense_score(pipeline: Pipeline) -> None:
    """First by one signal and second by the other, against the reverse, is a tie in reciprocal-rank
    fusion; the dense score decides it, not the passage ids."""
    dense_first = Candidate(row=1, pair="zh-zh", dense=0.92, lead=0.06, lexical=0.9, bm25=1.0)
    lexical_first = Candidate(row=0, pair="zh-zh", dense=0.87, lead=0.01, lexical=1.0, bm25=1.1)
    third = Candidate(row=2, pair="zh-zh", dense=0.80, lead=0.0, lexical=0.5, bm25=0.5)
    order = pipeline.retriever._fused_order([lexical_first, third, dense_first])
    assert [c.row for c in order] == [1, 0, 2]


@pytest.mark.parametrize(
    ("question", "lang"),
    [
        ("Which company owns 卫视卡式台?", "en"),  # an English question naming a Chinese entity
        ("What does 数智化 mean?", "en"),
        ("MIT OpenCourseWare指什么？", "zh"),  # a Chinese question naming an English one
        ("Maren Holt的灯塔有多高？", "zh"),
        ("A-135反弹道导弹系统于哪年开始运作？", "zh"),  # "A" is a name, no article
        ("《The Lord of the Rings》的作者是谁？", "zh"),  # what a question quotes is not its grammar
        ("How tall is the lighthouse?", "en"),
        ("灯塔有多高？", "zh"),
    ],
)
def test_a_question_is_in_the_language_of_its_grammar(question: str, lang: str) -> None:
    assert question_lang(question) == lang


LEAD_IN_DOC = """# Runbook

The storage service keeps its data in the data centre in Leeds. It was installed in 2019.

The nightly backup job writes two files:

- catalogue.db, the index of every stored object
- objects.tar, the stored objects themselves

Restores are tested every quarter by the operations team.
"""


def test_an_answer_quoting_a_lead_in_quotes_what_it_introduces(
    tmp_path: Path,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    """ "The job writes two files:" answers nothing by itself: the list after it is quoted with it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "runbook.md").write_text(LEAD_IN_DOC, encoding="utf-8")
    pipeline = Pipeline.load(make_settings(tmp_path, documents_dir=docs), encoder=encoder)
    for question in ("Which files does the nightly backup job write?", "夜间备份任务会写哪些文件？"):
        result = pipeline.ask(question)
        assert not result.abstained, question
        assert "writes two files:" in result.answer.text, question
        assert "catalogue.db" in result.answer.text and "objects.tar" in result.answer.text, question
        assert result.grounded, question


FAQ_DOC = """# CloudNote FAQ

## Subscription

**What does CloudNote Premium cost?**

Premium costs 98 yuan per year, or 12 yuan per month.

**如何取消自动续费？**

在安卓上，请在 CloudNote 应用内的"我的 > 会员中心"中关闭自动续费。
"""


def test_an_faq_question_is_quoted_with_its_answer(
    tmp_path: Path,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    """An FAQ's question matches a question like it best, but states nothing: its answer is quoted with it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.md").write_text(FAQ_DOC, encoding="utf-8")
    pipeline = Pipeline.load(make_settings(tmp_path, documents_dir=docs), encoder=encoder)
    for question, answer in (
        ("How do I cancel auto-renewal?", "会员中心"),
        ("如何取消自动续费？", "会员中心"),
        ("What does CloudNote Premium cost?", "98 yuan"),
    ):
        result = pipeline.ask(question)
        assert not result.abstained, question
        assert answer in result.answer.text, question


BRIDGE_DOC = """# Wend Bridge

The Wend Bridge was finished in 1911 by the council. It carried trams until 1950 and still carries cars.

Trams ran on several routes in the town until 1950, when buses replaced them on every route.
"""


def test_a_sentence_that_refers_back_is_credited_with_what_the_one_before_it_names(
    tmp_path: Path,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    """'It carried trams until 1950' is about the Wend Bridge the sentence before it names: it answers the
    question about the bridge (not the 1911 sentence alone, which names the bridge and nothing asked), and
    its quote starts at that sentence, so the answer says what 'It' is: one quote, one citation."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bridge.md").write_text(BRIDGE_DOC, encoding="utf-8")
    pipeline = Pipeline.load(make_settings(tmp_path, documents_dir=docs), encoder=encoder)
    for question in (
        "Until when did the Wend Bridge carry trams?",
        "What did the Wend Bridge carry until 1950?",
    ):
        result = pipeline.ask(question)
        first = result.answer.sentences[0]
        assert first.text == (
            "The Wend Bridge was finished in 1911 by the council. It carried trams until 1950 and still "
            "carries cars."
        ), question
        assert first.citations == (1,), question
        cited = result.passages[0]
        assert [cited.hit.passage.text[s:e] for s, e in cited.highlight] == [
            "The Wend Bridge was finished in 1911 by the council.",
            "It carried trams until 1950 and still carries cars.",
        ], question  # both sentences of the quote are highlighted


@pytest.mark.parametrize(
    ("sentence", "back"),
    [
        ("这是国家治理体系和治理能力现代化的必然要求。", True),
        ("其中，盒马提供了45万件生活日用品。", True),
        ("It carried trams until 1950.", True),
        ("“These were the first,” he said.", True),
        ("牠们接近灭绝，只余下650头。", True),
        ("，1953年8月15日卒于哥廷根。", True),
        ("; it was rebuilt in 1911.", True),
        ("Trams ran until 1950.", False),
        ("第一，监管一体化。", False),
        ("Ithaca is an island.", False),
    ],
)
def test_refers_back(sentence: str, back: bool) -> None:
    assert refers_back(sentence) is back


FOOTER = "Report problems to the help desk at help@example.org, Monday to Friday."


def test_a_text_repeated_in_several_places_takes_one_rank(
    tmp_path: Path,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    """A footer printed after every section (and again in other files, once spaced otherwise) is one hit
    that lists where else the same text stands, not the whole top of the ranking; the answer quotes it
    once."""
    docs = tmp_path / "docs"
    docs.mkdir()
    sections = [f"## Tool {n}\n\nTool {n} converts {k} files.\n\n{FOOTER}\n" for n, k in enumerate("ABC")]
    (docs / "manual.md").write_text("# Manual\n\n" + "\n".join(sections), encoding="utf-8")
    (docs / "other.md").write_text(f"# Other\n\nThe desk also lends laptops.\n\n{FOOTER}\n", encoding="utf-8")
    spaced = FOOTER.replace(",", " ,")  # as a PDF copy of it spaces it
    (docs / "print.md").write_text(f"# Print\n\nPrinters are on every floor.\n\n{spaced}\n", encoding="utf-8")
    pipeline = Pipeline.load(make_settings(tmp_path, documents_dir=docs), encoder=encoder)
    result = pipeline.ask("Where do I report problems?", top_k=5)
    texts = [p.hit.passage.text for p in result.passages]
    assert sum(t.replace(" ,", ",") == FOOTER for t in texts) == 1, texts
    assert len(set(texts)) == len(texts) == 5, texts  # the freed ranks go to other passages
    footer = next(p.hit for p in result.passages if p.hit.passage.text.replace(" ,", ",") == FOOTER)
    assert len(footer.same_text) == 4, footer
    assert {i.split(":")[0] for i in (footer.passage.id, *footer.same_text)} == {"manual", "other", "print"}
    assert result.answer.text.count("help@example.org") == 1, result.answer.text


CI_DOC = """# Continuous integration

The CI job below builds the project and runs its tests.

```yaml
language: rust
script:
  - cargo build
  - cargo test
```

A failing test fails the build.
"""


def test_a_code_block_answers_alone_or_after_its_lead_in_but_joins_no_other_answer(
    tmp_path: Path,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    """A code block's similarity is loose (the question's words among its keywords): with every sentence
    within the answerer's margin, the prose sentences join the answer and the YAML block does not."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "run.md").write_text("# Running tests\n\nTo run the tests, type cargo test.\n", encoding="utf-8")
    (docs / "ci.md").write_text(CI_DOC, encoding="utf-8")
    settings = make_settings(tmp_path, documents_dir=docs)
    loaded = Pipeline.load(settings, encoder=encoder)
    served = loaded.answerer
    assert isinstance(served, ExtractiveAnswerer)
    lenient = ExtractiveAnswerer(
        loaded.retriever.saved,
        background=served.background,
        abstention=served.abstention,
        focus=served.focus,
        margin=1.0,  # every sentence is close enough to join the best one
    )
    result = Pipeline(settings, loaded.retriever, answerer=lenient).ask("How do I run the tests with cargo?")
    assert not result.abstained
    quoted = [s.text for s in result.answer.sentences]
    assert "To run the tests, type cargo test." in quoted, quoted
    assert len(quoted) > 1, quoted  # other sentences joined
    assert not any("language: rust" in q for q in quoted), quoted


SPOOL_DOC = """# Mail spool

New systems keep the mail spool in /var/mail, a real directory, and /var/spool/mail is a symlink to it.

Upgraded systems keep /var/spool/mail as the real directory.
"""

CAST_DOC = """# 类型转换

Rust 不提供原生类型之间的隐式类型转换，但可以使用 as 关键字进行显式类型转换。

整数转换为新的类型时，超出范围的值会被截断。

转换规则与 C 语言基本一致，除非 C 语言中的行为未定义。
"""


def test_a_weak_match_in_a_small_pool_is_not_its_pools_full_lexical_evidence(
    tmp_path: Path,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    """BM25 evidence is a share of the pool's best match, but never of less than LEXICAL_FLOOR of what the
    question's terms could score: in a pool of three Chinese passages, the one that shares "新" (new) with
    an English question about mail is not the pool's full lexical evidence, and the English passage that
    answers comes first."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "spool.md").write_text(SPOOL_DOC, encoding="utf-8")
    (docs / "cast.md").write_text(CAST_DOC, encoding="utf-8")
    pipeline = Pipeline.load(make_settings(tmp_path, documents_dir=docs), encoder=encoder)
    question = "Where is the mail spool on new systems?"
    candidates = pipeline.retriever.signals(question)
    best = {pair: max(c.lexical for c in candidates if c.pair == pair) for pair in ("en-en", "en-zh")}
    assert best["en-en"] == 1.0, best  # the strong match is its pool's best
    weak = [c for c in candidates if c.pair == "en-zh" and c.bm25 > 0]
    assert weak, "the translation of 'new' finds 新 in the Chinese pool"
    assert best["en-zh"] < 0.9, best  # one term of four, in a pool of three: not 1.0
    hits = pipeline.retriever.retrieve(question, 3)
    assert hits[0].passage.document_id == "spool", [h.passage.id for h in hits]


def test_a_sentence_without_a_letter_or_digit_is_never_evidence(
    tmp_path: Path,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    """A program longer than a quoted block is read line by line: its "}" lines are sentences of the index
    (their similarity to a question is anything), but they state nothing and are not scored."""
    body = "\n".join(f"    let x{n} = {n} as u8; // 第 {n} 个值转换为 u8" for n in range(24))
    program = f"fn main() {{\n    {{\n{body}\n    }}\n}}"
    text = f"# 类型转换\n\n下面的程序把整数转换为 u8：\n\n```rust\n{program}\n```\n"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cast.md").write_text(text, encoding="utf-8")
    pipeline = Pipeline.load(make_settings(tmp_path, documents_dir=docs), encoder=encoder)
    saved = pipeline.retriever.saved
    by_passage = saved.sentences_by_passage
    spans = [(p, saved.sentences[s]) for r, p in enumerate(saved.passages) for s in by_passage[r]]
    assert any(p.text[s.start : s.end] == "}" for p, s in spans)  # the index holds such sentences
    search = pipeline.retriever.search("What is 7 converted to u8?", 5)
    scored = pipeline.answerer.score("What is 7 converted to u8?", search, search.hits)
    assert scored and all(any(ch.isalnum() for ch in s.text) for s in scored), [s.text for s in scored]


ROOT_DOC = """# Accounts

The root account is also called the superuser. With this account you can do the following tasks.

- read, write and delete any file on the system
- set the owner and permissions of any file
- set the password of any user
"""


def test_an_answer_quoting_a_sentence_that_refers_forward_quotes_the_list_it_introduces(
    tmp_path: Path,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    """ "You can do the following tasks." answers nothing by itself, as a lead-in ending in a colon does not:
    the list under it is quoted with it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "accounts.md").write_text(ROOT_DOC, encoding="utf-8")
    pipeline = Pipeline.load(make_settings(tmp_path, documents_dir=docs), encoder=encoder)
    result = pipeline.ask("What tasks can you do with the root account?")
    assert not result.abstained
    assert "the following tasks." in result.answer.text, result.answer.text
    assert "set the password of any user" in result.answer.text, result.answer.text


PRODUCT_DOCS = {
    "aquaflow.md": """# AquaFlow X200 irrigation controller

The AquaFlow X200 controller waters up to eight garden zones on a schedule.

The AquaFlow X200 carries a 3-year limited warranty from the date of purchase. Register the controller
online to claim it.

The display is a 3.5-inch colour screen that shows each zone's next run.
""",
    "trail.md": """# The Kettleby coast path

The Kettleby coast trail is a 42-kilometre footpath along the cliffs between Kettleby and Marsh End.

The visitor centre is a 10-minute walk from the station, and the café serves lunch until three.
""",
}


@pytest.fixture(scope="module")
def product_pipeline(
    tmp_path_factory: pytest.TempPathFactory,
    encoder,  # type: ignore[no-untyped-def]
) -> Pipeline:
    """The real pipeline over a product manual and a trail guide, as a new user's own documents."""
    tmp = tmp_path_factory.mktemp("product")
    docs = tmp / "docs"
    docs.mkdir()
    for name, text in PRODUCT_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    return Pipeline.load(make_settings(tmp, documents_dir=docs), encoder=encoder)


@pytest.mark.parametrize(
    ("question", "quoted"),
    [
        ("How long is the warranty?", "3-year limited warranty"),
        ("AquaFlow X200 控制器的保修期是多久？", "3-year limited warranty"),
        ("How long is the trail?", "42-kilometre footpath"),
        ("How many kilometres long is the trail?", "42-kilometre footpath"),
    ],
)
def test_a_unit_in_a_compound_adjective_answers(
    product_pipeline: Pipeline, question: str, quoted: str
) -> None:
    """ "a 3-year warranty" states a duration and "a 42-kilometre footpath" a length, as "3 years" and
    "42 kilometres" do: no type_mismatch."""
    result = product_pipeline.ask(question)
    assert not result.abstained, result.answer.reason
    assert quoted in result.answer.text, result.answer.text
