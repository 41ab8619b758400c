"""Answer types from CLDR (service.answertype): what a question asks for, what a sentence states."""

from __future__ import annotations

import pytest

from service.answertype import (
    AREA,
    DATE,
    DURATION,
    LENGTH,
    MASS,
    MONEY,
    NUMBER,
    PERCENT,
    QUANTITIES,
    SPEED,
    TEMPERATURE,
    VOLUME,
    asked_kinds,
    dating_years,
    expected_answer,
    stated_kinds,
)


@pytest.mark.parametrize(
    ("sentence", "kinds"),
    [
        ("Tickets cost 6 euros.", {MONEY, NUMBER}),
        ("Entry is £3, or 3,000 yen.", {MONEY, NUMBER}),
        ("总投资3亿元。", {MONEY, NUMBER}),
        ("票价6欧元。", {MONEY, NUMBER}),
        ("The tower is 34 metres tall.", {LENGTH, NUMBER}),
        ("The tower is 34 meters tall.", {LENGTH, NUMBER}),
        ("灯塔高34米。", {LENGTH, NUMBER}),
        ("面积四十五万平方公里", {NUMBER}),  # area, checked below
        ("It weighs 12 kg.", {MASS, NUMBER}),
        # SI prefixes from CLDR's prefix patterns, for the prefixed units CLDR does not list
        ("The Amazon absorbs 1.5 gigatons of carbon dioxide.", {MASS, NUMBER}),
        ("a yield of 15 kilotons", {MASS, NUMBER}),
        ("The pulse lasts 3 nanoseconds.", {DURATION, NUMBER}),
        ("气温零下5摄氏度", {TEMPERATURE, NUMBER}),
        ("水温23~28℃", {TEMPERATURE, NUMBER}),  # NFKC: ℃ is °C
        ("时速120公里", {NUMBER}),
        ("It reached 60 km/h.", {SPEED, NUMBER}),
        ("Turnout was 40%.", {PERCENT, NUMBER}),
        ("增长了百分之三十", {PERCENT, NUMBER}),
        ("It had 3,000 residents and 12 deaths.", {NUMBER}),
        ("盒马7000个社区免费提供45万件蔬菜", {NUMBER}),
        ("全国安全生产事故起数和死亡人数连续十八年“双下降”", {NUMBER, DURATION}),
        ("The team won three times.", {NUMBER}),
        ("阿里巴巴集团紧急捐款援驰。", set()),
        ("统一部署，进一步加强。", set()),  # 一 inside words is not a number
        ("一名工人受伤", {NUMBER}),
    ],
)
def test_stated_kinds(sentence: str, kinds: set[str]) -> None:
    assert kinds <= stated_kinds(sentence)
    if not kinds:
        assert not stated_kinds(sentence) & QUANTITIES


@pytest.mark.parametrize(
    ("sentence", "kinds"),
    [
        ("It carries a 3-year limited warranty.", {DURATION, NUMBER}),
        ("a 42-kilometre footpath", {LENGTH, NUMBER}),
        ("a 10-minute walk", {DURATION, NUMBER}),
        ("a two-week course", {DURATION, NUMBER}),
        ("a 3.5-inch screen", {LENGTH, NUMBER}),
        ("a 24\u2011hour service", {DURATION, NUMBER}),  # a non-breaking hyphen
        ("a 5-star hotel", {NUMBER}),  # a star is no unit
        ("3-D printing", {NUMBER}),  # one letter after the hyphen names no unit
        ("a 2-in-1 laptop", {NUMBER}),
        ("a 3-5 year plan", {DURATION, NUMBER}),  # a range, not a compound
    ],
)
def test_a_compound_adjective_states_its_unit(sentence: str, kinds: set[str]) -> None:
    """English writes a number and its unit as one hyphenated adjective before a noun ("a 3-year
    warranty"): the unit is stated as in "3 years"."""
    assert stated_kinds(sentence) == kinds


def test_a_compound_adjective_answers_how_long() -> None:
    warranty = "The AquaFlow X200 carries a 3-year limited warranty."
    assert expected_answer("How long is the warranty?").stated_by(warranty)
    assert expected_answer("AquaFlow X200 控制器的保修期是多久？").stated_by(warranty)
    trail = "The coast trail is a 42-kilometre footpath."
    assert expected_answer("How long is the trail?").stated_by(trail)
    assert expected_answer("How many kilometres long is the trail?").stated_by(trail)


def test_digits_in_a_name_are_no_quantity_unless_a_number_that_names_is_asked() -> None:
    for sentence in (
        "Here, i32 is the type of each element.",
        "chpasswd(8), passwd(5), shadow(5), usermod(8).",
        "It is sent as UTF-8 over an x86_64 machine.",
        "中国国家高速公路网编号为G11。",
    ):
        assert NUMBER not in stated_kinds(sentence), sentence
    assert NUMBER in stated_kinds("Length: 32-bit | Signed: i32")
    assert NUMBER in stated_kinds("COVID-19 killed 12 people in the mid-1930s.")
    assert not expected_answer("shadow 文件有多少个字段？").stated_by("passwd(5), shadow(5).")
    assert expected_answer("高速公路的编号是多少？").stated_by("中国国家高速公路网编号为G11。")
    assert expected_answer("What was the launch pad number?").stated_by("The countdown ran on LC-34.")
    assert not expected_answer("What is the number of pads?").stated_by("The countdown ran on LC-34.")


def test_a_year_where_years_stand_counts_nothing() -> None:
    for sentence in (
        "The festival was founded in 1998 by fishermen.",
        "2025年举办了庆典。",
        "Since 2019, it has grown.",
    ):
        assert NUMBER not in stated_kinds(sentence), sentence
        assert DATE in stated_kinds(sentence), sentence
    assert NUMBER in stated_kinds("The club has 2000 members.")  # a count that looks like a year
    assert NUMBER in stated_kinds("2025年，图书馆接待读者约3.2万人次。")  # other numbers still count
    assert not expected_answer("How many people attended?").stated_by("It was founded in 1998.", None)
    # Nor is "2021年" a span of 2021 years: it answers no "how long" (年 is also the unit of a duration).
    assert DURATION not in stated_kinds("2021年夏天，河南遭遇罕见特大暴雨。")
    assert DURATION in stated_kinds("工期3年，耗资20亿元。")


def test_a_unit_past_a_classifier_or_one_modifier_word() -> None:
    durations = ("须在十个工作日内提交", "须在10个工作日内提交", "约需两个小时", "within ten working days")
    for sentence in durations:
        assert DURATION in stated_kinds(sentence), sentence
    # The gap is never a way into a unit that is not there: a classifier's noun that merely starts like a
    # unit word (国家元首 is not 元, yuan), or a short abbreviation after a noun ("3 goals in" is no inch).
    assert MONEY not in stated_kinds("两个国家元首会面")
    assert LENGTH not in stated_kinds("He scored 3 goals in 2 games.")
    assert stated_kinds("十个工作人员参加了会议。") & QUANTITIES == {NUMBER}


def test_a_unit_named_by_the_label_of_a_value() -> None:
    # Table headers name the unit once for the column; a row is read as "header: value | ...".
    row = "职级：经理 | 一线城市（元/晚）：600 | 其他城市（元/晚）：450"
    assert MONEY in stated_kinds(row)
    assert MASS in stated_kinds("Weight (kg): 0.4")
    assert MONEY in stated_kinds("Price (EUR): 20")
    assert "area" in stated_kinds("面积（平方米）：120")
    assert PERCENT in stated_kinds("Share (%): 12")
    # Only a unit the label names, and only for the value right after it.
    assert stated_kinds("Name (first): 3") & QUANTITIES == {NUMBER}
    assert MASS not in stated_kinds("Weight (kg) is listed below; 3 items")


def test_money_names_are_currencies_in_use() -> None:
    # A currency name's last word stands for it ("20 Swiss francs" -> "francs") only for currencies in use
    # today; funds and retired currencies would make "units", "account" or "rights" money.
    assert MONEY in stated_kinds("It cost 20 Swiss francs, or 30 rupees.")
    assert MONEY not in stated_kinds("It delivers three to four units of heat per unit of electricity.")
    assert MONEY not in stated_kinds("Two accounts were opened and 3 rights granted.")


def test_areas_durations_and_dates() -> None:
    assert "area" in stated_kinds("面积四十五万平方公里")
    assert DURATION in stated_kinds("They stayed for 3 days.")
    for sentence in (
        "It was built in 1886.",
        "It was built during the reign of Henry VIII.",
        "It was built in the nineteenth century.",
        "去年夏天河南遭遇暴雨",
        "江户时代传入日本",
        "With 4:51 left in regulation",
        "It opened in March.",
        "It flowers in late spring.",  # the seasons, which CLDR does not name
        "晚春或初夏开花，花白色或粉红色。",
        "每年秋季举行",
    ):
        assert DATE in stated_kinds(sentence), sentence
    assert DATE not in stated_kinds("It was built by monks in Paris.")
    assert DATE not in stated_kinds("春晖中学位于夏威夷。")  # 春 and 夏 in names are no season


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("How much does a ticket cost?", {MONEY}),
        ("票价是多少？", {MONEY}),
        ("特斯拉的股价是多少？", {MONEY}),  # any word headed by 价 is a price
        ("2008年《选择》杂志的定价是多少？", {MONEY}),
        ("How much money did Ant Group donate?", {MONEY}),
        ("马云公益基金会向河南捐款的金额是多少？", {MONEY}),
        ("What is the total investment in the bases?", {MONEY}),
        ("What is the library's annual budget?", {MONEY}),  # a possessive and an adjective before it
        ("What is the name of the budget office?", set()),  # the budget is not what is asked
        ("How tall is the lighthouse?", {LENGTH}),
        ("灯塔有多高？", {LENGTH}),
        ("这座桥有多少米长？", {LENGTH}),
        ("How many miles long is the river?", {LENGTH}),
        ("他工作了几年？", {DURATION}),
        ("第二段路程要带多少升水？", {VOLUME}),  # jieba cuts 升水 (a finance word) as one word
        ("岩画可以追溯到多少年前？", {DURATION}),
        ("How long did the war last?", {LENGTH, DURATION, DATE}),
        ("What percentage of voters agreed?", {PERCENT, NUMBER}),
        ("When did the heavy rain hit Henan?", {DATE}),
        ("哪一年发布了白皮书？", {DATE}),
        ("大曲车站设站于几几年？", {DATE, DURATION}),  # 几几年 is "which year" (its 几年 reads as a span too)
        ("How many residents live there?", set(QUANTITIES)),
        ("盒马提供了多少件生活日用品？", set(QUANTITIES)),
        ("How many pounds of steam does it use?", {MASS, MONEY}),  # a unit and a currency
        ("How many square kilometres were flooded?", {AREA}),  # a unit of several words
        ("How many square miles is the park?", {AREA}),
        ("Who is the CEO of Alibaba Cloud?", set()),
        ("Who was the leader when the Franks entered the valley?", set()),  # "when" is no question word
        ("几乎所有人都去了哪里？", set()),  # 几乎 is "almost"
        ("What is the area called near the gorge?", set()),
        ("亚里士多德认为地球由多少个元素组成？", set(QUANTITIES)),  # 元素 is not 元 (yuan)
    ],
)
def test_asked_kinds(question: str, kinds: set[str]) -> None:
    assert asked_kinds(question) == kinds


def test_the_kind_asked_must_be_stated() -> None:
    assert expected_answer("How much does a ticket cost?").stated_by("Tickets cost 6 euros.")
    assert not expected_answer("How much does a ticket cost?").stated_by("Tickets sell out every summer.")
    assert expected_answer("How tall is the lighthouse?").stated_by("The tower is 34 metres tall.")
    assert not expected_answer("How tall is the lighthouse?").stated_by("The tower was built in 1890.")
    assert expected_answer("How many residents live there?").stated_by("The town has 3,000 residents.")
    assert expected_answer("How many deaths were there?").stated_by("There were 12 deaths.")
    assert not expected_answer("How many people died?").stated_by("Many people died.")
    assert expected_answer("Who is the CEO?").stated_by("")  # no kind: anything may answer


def test_years_date_a_passage_unless_they_are_a_baseline() -> None:
    wanted = expected_answer("2021年全国GDP增长了多少？")
    assert wanted.years == ("2021",)
    assert wanted.stated_by("全国GDP较2020年增长8.1%。")  # 2020 is the baseline, not the date
    assert not wanted.stated_by("2020年全国GDP增长2.3%。")
    assert wanted.stated_by("2021年全国GDP较2020年增长8.1%。")
    assert dating_years("Sales rose in 2021 compared with 2019.") == {"2021"}
    sentence = "全国因自然灾害死亡失踪591人，为历史最低。"
    assert not wanted.stated_by(sentence, "2020年我国多地遭受1998年以来最严重汛情。" + sentence)
    assert wanted.stated_by(sentence, sentence)  # an undated passage may still answer
    assert expected_answer("What happened in the 1970s?").years == ()  # decades are not years
