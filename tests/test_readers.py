"""Readers: real files of every format and encoding, made by the tests, and the reasons for refusals."""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import docx
import pytest
from docx.oxml import OxmlElement
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate

from index.errors import UnreadableDocumentError
from index.ingest import scan_folder
from index.readers import FORMATS, MAX_CODE_UNIT_LINES, decode_text, is_noise, join_lines, read_document
from index.types import Block, Document
from tests.conftest import SEED_DOCS, SEED_ID

pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # reportlab's built-in CID font for Chinese

# ---------------------------------------------------------------------------------------------------
# helpers


def read(path: Path) -> Document:
    return read_document(path, path.parent)


def refusal(path: Path) -> UnreadableDocumentError:
    with pytest.raises(UnreadableDocumentError) as info:
        read(path)
    return info.value


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# (font, size, lines) per paragraph, a line indented by leading "> "; headers and footers on every page.
Page = list[tuple[str, float, list[str]]]


def make_pdf(path: Path, pages: list[Page], *, title: str | None = None, encrypt: str | None = None) -> Path:
    c = canvas.Canvas(str(path), pagesize=A4, encrypt=encrypt)
    if title:
        c.setTitle(title)
    width, height = A4
    for number, paragraphs in enumerate(pages, 1):
        c.setFont("Helvetica", 9)
        c.drawString(72, height - 40, "ACME Energy - Field Report 2024")
        y = height - 90
        for font, size, lines in paragraphs:
            c.setFont(font, size)
            for line in lines:
                indent = 10 if line.startswith("> ") else 0
                c.drawString(72 + indent, y, line.removeprefix("> "))
                y -= size * 1.25
            y -= size
        c.setFont("Helvetica", 9)
        c.drawString(width / 2, 30, f"Page {number} of {len(pages)}")
        c.showPage()
    c.save()
    return path


LATIN, CJK = "Helvetica", "STSong-Light"
REPORT: list[Page] = [
    [
        (LATIN, 18, ["Inverter Field Report"]),
        (LATIN, 11, ["String inverters . . . . . . . . . . . . . . . . 1"]),
        (
            LATIN,
            11,
            ["Solar inverters convert direct current into alter-", "nating current for the home grid."],
        ),
        (CJK, 11, ["逆变器把太阳能电池板产生的直流电", "转换为家庭使用的交流电。"]),
        (LATIN, 14, ["String inverters"]),
        (LATIN, 11, ["String inverters connect a row of panels to one"]),
    ],
    [
        (LATIN, 11, ["central unit, which keeps costs low."]),
        (CJK, 14, ["微型逆变器"]),
        (CJK, 11, ["微型逆变器安装在每块电池板背后，", "遮挡一块板不会影响其他板。"]),
        (
            LATIN,
            11,
            ["\u2022 Each panel works alone, so shade on one", "> panel does not drag down the row."],
        ),
        (LATIN, 11, ["\u2022 Cost per watt is higher."]),
        (LATIN, 11, ["3"]),
    ],
]


# ---------------------------------------------------------------------------------------------------
# PDF


def test_pdf_paragraphs_pages_sections_and_running_lines(tmp_path: Path) -> None:
    doc = read(make_pdf(tmp_path / "report.pdf", REPORT, title="Inverter Field Report"))
    assert (doc.id, doc.path, doc.format, doc.title, doc.pages, doc.encoding) == (
        "report",
        "report.pdf",
        "pdf",
        "Inverter Field Report",
        2,
        None,
    )
    # Lines reflowed (hyphenation undone, CJK joined without a space), the paragraph cut by the page
    # break joined and kept on its first page, larger-font lines as sections (the title's dropped),
    # list items as lines (a wrapped item joined), the running header, "Page N of 2" footers, the
    # table-of-contents line and the bare "3" gone.
    assert doc.blocks == (
        Block("Solar inverters convert direct current into alternating current for the home grid.", (), 1),
        Block("逆变器把太阳能电池板产生的直流电转换为家庭使用的交流电。", (), 1),
        Block(
            "String inverters connect a row of panels to one central unit, which keeps costs low.",
            ("String inverters",),
            1,
        ),
        Block("微型逆变器安装在每块电池板背后，遮挡一块板不会影响其他板。", ("微型逆变器",), 2),
        Block(
            "Each panel works alone, so shade on one panel does not drag down the row.\n"
            "Cost per watt is higher.",
            ("微型逆变器",),
            2,
        ),
    )


def test_pdf_chapter_headers_with_the_page_number_are_running_lines(tmp_path: Path) -> None:
    # A manual's header names the chapter and the page ("Chapter 2: Care 3"): each chapter's runs over
    # its own pages only (fewer than half of them), and its number follows the page one for one. A body
    # line that repeats with a number that does not ("Step 1 ...") is text.
    path = tmp_path / "manual.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Kit manual")
    width, height = A4
    chapters = ["Setup", "Setup", "Use", "Use", "Care", "Care"]
    for page, chapter in enumerate(chapters, start=1):
        c.setFont("Helvetica", 9)
        c.drawString(72, height - 40, f"Chapter {chapters.index(chapter) // 2 + 1}: {chapter} {page}")
        c.setFont("Helvetica", 11)
        first = "Step 1 is to unpack the kit." if page in (2, 4) else f"Page {page} text starts here."
        c.drawString(72, height - 90, first)
        c.drawString(72, height - 120, f"The {chapter.lower()} notes end on this page, number {page}.")
        c.showPage()
    c.save()
    text = "\n".join(read(path).paragraphs)
    assert "Chapter" not in text
    assert text.count("Step 1 is to unpack the kit.") == 2
    assert text.count("notes end on this page") == 6


def test_pdf_bullets_set_without_a_space_are_list_items(tmp_path: Path) -> None:
    # CJK typesetting puts no space after the bullet glyph: the items are still one list, glyphs dropped.
    page: Page = [
        (CJK, 14, ["办理事项"]),
        (CJK, 11, ["\u2022新装电表：携带身份证到营业厅办理。"]),
        (CJK, 11, ["\u2022变更户名：需提供原户主同意书。"]),
    ]
    hours: Page = [(CJK, 11, ["营业时间为工作日八点至十七点。"])]
    doc = read(make_pdf(tmp_path / "services.pdf", [page, hours], title="服务指南"))
    assert doc.blocks == (
        Block("新装电表：携带身份证到营业厅办理。\n变更户名：需提供原户主同意书。", ("办理事项",), 1),
        Block("营业时间为工作日八点至十七点。", ("办理事项",), 2),
    )


def test_pdf_glyphs_set_one_by_one_join_into_words(tmp_path: Path) -> None:
    # A browser's "Save as PDF" sets letter-spaced headings and code glyph by glyph, each its own piece of
    # the line: a space comes where the text has one, or where the pieces stand apart by a word's gap.
    path = tmp_path / "glyphs.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    width, height = A4

    def glyphs(x: float, y: float, text: str, font: str, size: float, spacing: float) -> float:
        c.setFont(font, size)
        for ch in text:
            c.drawString(x, y, ch)
            x += pdfmetrics.stringWidth(ch, font, size) + spacing
        return x

    glyphs(72, height - 90, "The Stack and the Heap", "Helvetica-Bold", 18, 1.0)
    c.setFont("Helvetica", 11)
    c.drawString(72, height - 130, "When a value goes out of scope, Rust calls ")
    x = 72 + pdfmetrics.stringWidth("When a value goes out of scope, Rust calls ", "Helvetica", 11)
    x = glyphs(x, height - 130, "drop", "Courier", 11, 0.0)
    c.setFont("Helvetica", 11)
    c.drawString(x, height - 130, " for it.")
    c.drawString(72, height - 150, "Words set apart")
    apart = 72 + pdfmetrics.stringWidth("Words set apart", "Helvetica", 11) + 7  # a gap, no space glyph
    c.drawString(apart, height - 150, "without a space.")
    glyphs(72, height - 190, "Memory and Allocation", "Helvetica-Bold", 11 * 1.17, 0.5)  # a browser's <h3>
    c.setFont("Helvetica", 11)
    c.drawString(72, height - 215, "The memory is requested at run time.")
    c.showPage()
    c.save()
    doc = read(path)
    assert doc.title == "The Stack and the Heap"
    assert [(b.text, b.section) for b in doc.blocks] == [
        ("When a value goes out of scope, Rust calls drop for it. Words set apart without a space.", ()),
        ("The memory is requested at run time.", ("Memory and Allocation",)),
    ]


def test_pdf_items_set_in_without_bullet_glyphs_are_one_list(tmp_path: Path) -> None:
    # A browser draws list bullets as shapes: the items are one-line paragraphs set in from the margin.
    path = tmp_path / "rules.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Ownership")
    width, height = A4
    c.setFont("Helvetica", 11)
    lines = [
        (72, "Ownership is a set of rules that govern how a program manages its memory while it runs."),
        (72, "Keep these rules in mind as we work through the examples:"),
        (100, "Each value has an owner."),
        (100, "There can only be one owner at a time."),
        (100, "When the owner goes out of scope, the value is dropped."),
        (72, "The rules are checked when the program is compiled, so they cost nothing when it runs."),
        (100, "A quotation set in, on a line of its own after a sentence."),
    ]
    y = height - 90
    for i, (x, line) in enumerate(lines):
        c.drawString(x, y, line)
        y -= 44 if i == 0 else 22  # a paragraph's gap after the first line
    c.showPage()
    c.save()
    assert [b.text for b in read(path).blocks] == [
        "Ownership is a set of rules that govern how a program manages its memory while it runs.",
        "Keep these rules in mind as we work through the examples:\nEach value has an owner.\n"
        "There can only be one owner at a time.\nWhen the owner goes out of scope, the value is dropped.",
        "The rules are checked when the program is compiled, so they cost nothing when it runs.",
        "A quotation set in, on a line of its own after a sentence.",
    ]


def test_pdf_labels_of_a_drawing_head_nothing(tmp_path: Path) -> None:
    # A diagram's labels set large ("ptr", "len 5", "capacity 5") look like headings, one after another
    # with no text between: they are left out, and the real heading after them heads its text.
    path = tmp_path / "figure.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Ownership")
    width, height = A4
    y = height - 90
    for font, size, line in [
        ("Helvetica", 11, "A String is made of three parts stored on the stack, shown in the figure"),
        ("Helvetica", 11, "below, and of its text on the heap."),
        ("Helvetica", 15, "ptr"),
        ("Helvetica", 15, "len 5"),
        ("Helvetica", 15, "capacity 5"),
        ("Helvetica", 11, "Figure 4-1: A String holding the value hello."),
        ("Helvetica-Bold", 13, "Ownership and Functions"),
        ("Helvetica", 11, "Passing a variable to a function will move or copy it."),
    ]:
        c.setFont(font, size)
        c.drawString(72, y, line)
        y -= 14 if line.endswith("figure") else 40  # the first paragraph's two lines set the line pitch
    c.showPage()
    c.save()
    assert [(b.text, b.section) for b in read(path).blocks] == [
        (
            "A String is made of three parts stored on the stack, shown in the figure below, "
            "and of its text on the heap.",
            (),
        ),
        ("Figure 4-1: A String holding the value hello.", ()),
        ("Passing a variable to a function will move or copy it.", ("Ownership and Functions",)),
    ]


def test_pdf_table_rows_are_read_as_rows_of_cells(tmp_path: Path) -> None:
    # A table's cells sit on one baseline with wide gaps: each row becomes a line of "header: value"
    # pairs instead of every row run together into one paragraph.
    c = canvas.Canvas(str(tmp_path / "tariff.pdf"), pagesize=A4)
    c.setTitle("Tariff")
    c.setFont(LATIN, 11)
    c.drawString(72, 760, "Connection fees are set by the regulator and reviewed every year.")
    rows = [
        ("Service", "Fee", "Time limit"),
        ("New meter", "free", "5 working days"),
        ("Move", "30 yuan", "2 days"),
    ]
    for i, row in enumerate(rows):
        for x, cell in zip((72, 200, 300), row, strict=True):
            c.setFont(CJK if cell == "30 yuan" else LATIN, 11)
            c.drawString(x, 730 - 16 * i, cell)
    c.setFont(LATIN, 11)
    c.drawString(72, 670, "Only one wide gap:")  # one line with a gap is no table
    c.drawString(250, 670, "not a table.")
    c.drawString(72, 640, "Fees are payable at any service counter.")
    c.drawString(72, 610, "Two lines with")  # wide gaps that do not line up are no table either
    c.drawString(200, 610, "wide gaps")
    c.drawString(72, 596, "that do")
    c.drawString(320, 596, "not line up.")
    c.save()
    doc = read(tmp_path / "tariff.pdf")
    assert doc.paragraphs == (
        "Connection fees are set by the regulator and reviewed every year.",
        "Service: New meter | Fee: free | Time limit: 5 working days\n"
        "Service: Move | Fee: 30 yuan | Time limit: 2 days",
        "Only one wide gap: not a table.",
        "Fees are payable at any service counter.",
        "Two lines with wide gaps",
        "that do not line up.",
    )


def test_pdf_title_falls_back_to_the_first_line_over_a_placeholder(tmp_path: Path) -> None:
    pages: list[Page] = [
        [(LATIN, 16, ["Quarterly Notes"]), (LATIN, 11, ["Sales rose in May."])],
        [(LATIN, 11, ["Costs fell in June."])],
    ]
    doc = read(make_pdf(tmp_path / "q.pdf", pages))  # reportlab writes the title "untitled"
    assert doc.title == "Quarterly Notes"
    assert doc.blocks == (Block("Sales rose in May.", (), 1), Block("Costs fell in June.", (), 2))


@pytest.mark.parametrize(
    ("metadata", "title"),
    [
        (None, "The Ridgeback Trail: A Hiker's Guide"),  # ReportLab's document template writes "(anonymous)"
        ("Untitled Document", "The Ridgeback Trail: A Hiker's Guide"),
        ("Document1", "The Ridgeback Trail: A Hiker's Guide"),
        ("无标题", "The Ridgeback Trail: A Hiker's Guide"),
        ("ridgeback.docx", "The Ridgeback Trail: A Hiker's Guide"),
        ("Microsoft Word - Ridgeback Trail.doc", "The Ridgeback Trail: A Hiker's Guide"),
        ("Ridgeback Trail Guide", "Ridgeback Trail Guide"),  # a real title, as are the next two
        ("ASP.NET on the Trail", "ASP.NET on the Trail"),
        ("Untitled Hills of Kestrel", "Untitled Hills of Kestrel"),
    ],
)
def test_pdf_metadata_placeholder_title_gives_way_to_the_largest_type(
    tmp_path: Path, metadata: str | None, title: str
) -> None:
    """A writer's stand-in for a title (a placeholder word, a file name) is no title: the first page's
    largest type is, and a section heading in the same size under it is not part of it."""
    path = tmp_path / "trail.pdf"
    body = (
        "The Ridgeback Trail is a 42-kilometre footpath in the Kestrel Valley National Park. It runs from "
        "the village of Ashford Mill in the south to Harrow Point lighthouse in the north, and most hikers "
        "complete it in three days. The highest point of the trail is Cairn Tor, at 1,148 metres."
    )
    kwargs = {"title": metadata} if metadata is not None else {}
    styles = getSampleStyleSheet()  # Title and Heading1 are both 18 pt: the title centred, the heading not
    SimpleDocTemplate(str(path), pagesize=A4, **kwargs).build(
        [
            Paragraph("The Ridgeback Trail: A Hiker's Guide", styles["Title"]),
            Paragraph("Overview", styles["Heading1"]),
            Paragraph(body, styles["Normal"]),
        ]
    )
    doc = read(path)
    assert doc.title == title
    assert doc.blocks == (Block(body, ("Overview",), 1),)


def test_pdf_title_is_the_first_pages_largest_type_even_when_it_runs_atop_every_page(tmp_path: Path) -> None:
    """No metadata title; the title, set large on page 1, also runs small atop every page (so it is dropped
    from the text as a running header) and wraps onto a second line."""
    path = tmp_path / "spec.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    width, height = A4
    for number in (1, 2, 3):
        c.setFont("Helvetica", 9)
        c.drawString(72, height - 40, "Shared Database Specification")
        y = height - 90
        if number == 1:
            c.setFont("Helvetica", 24)
            for line in ("Shared Database", "Specification"):
                c.drawString(72, y, line)
                y -= 30
            c.setFont("Helvetica", 14)
            c.drawString(72, y, "Desktop Group (example.org)")
            y -= 30
        c.setFont("Helvetica", 10)
        c.drawString(72, y, f"Body text of page {number} says what the database holds.")
        c.showPage()
    c.save()
    doc = read(path)
    assert doc.title == "Shared Database Specification"
    assert all("Shared Database Specification" not in b.text for b in doc.blocks)


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    err = refusal(make_pdf(tmp_path / "secret.pdf", REPORT, encrypt="hunter2"))
    assert (err.code, err.reason) == ("encrypted", "encrypted PDF: it needs a password to open")


def test_pdf_without_text_layer_is_refused(tmp_path: Path) -> None:
    c = canvas.Canvas(str(tmp_path / "scan.pdf"))
    c.rect(72, 72, 300, 400, fill=1)  # a picture, no text: what a scanner produces
    c.showPage()
    c.save()
    err = refusal(tmp_path / "scan.pdf")
    assert (err.code, err.reason) == ("no_text", "no text layer: scanned PDF? OCR is not supported")


def test_corrupt_pdf_is_refused(tmp_path: Path) -> None:
    good = make_pdf(tmp_path / "good.pdf", REPORT).read_bytes()
    err = refusal(write(tmp_path / "cut.pdf", good[:300]))
    assert err.code == "corrupt" and err.reason.startswith("corrupt PDF: ")
    err = refusal(write(tmp_path / "junk.pdf", b"%PDF-1.4\nthis is not a PDF body\n"))
    assert err.code == "corrupt" and err.reason.startswith("corrupt PDF: ")


# ---------------------------------------------------------------------------------------------------
# DOCX


def make_docx(path: Path) -> Path:
    d = docx.Document()
    d.add_paragraph("Inverter Handbook", style="Title")
    d.add_paragraph("Contents", style="TOC Heading")  # a table of contents: neither section nor text
    d.add_paragraph("This handbook explains inverters.")
    d.add_heading("Types", level=1)
    d.add_paragraph("There are two main types.")
    d.add_heading("String inverters", level=2)
    d.add_paragraph("Cheap and reliable", style="List Bullet")
    d.add_paragraph("One per row of panels", style="List Number")
    table = d.add_table(rows=3, cols=2)
    for r, row in enumerate([("Type", "Efficiency"), ("String", "97%"), ("Micro", "96%")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    d.add_heading("微型逆变器", level=2)
    d.add_paragraph("微型逆变器安装在每块电池板背后。")
    d.add_heading("Safety", level=1)
    d.add_paragraph("")
    d.add_paragraph("Switch off before servicing.")
    d.sections[0].footer.paragraphs[0].text = "Confidential - page footer"
    d.save(str(path))
    return path


def test_docx_headings_lists_and_tables(tmp_path: Path) -> None:
    doc = read(make_docx(tmp_path / "handbook.docx"))
    assert (doc.format, doc.title, doc.encoding, doc.pages) == ("docx", "Inverter Handbook", None, None)
    assert doc.blocks == (
        Block("This handbook explains inverters."),
        Block("There are two main types.", ("Types",)),
        Block("Cheap and reliable\n1. One per row of panels", ("Types", "String inverters")),
        Block("Type | Efficiency\nString | 97%\nMicro | 96%", ("Types", "String inverters")),
        Block("微型逆变器安装在每块电池板背后。", ("Types", "微型逆变器")),
        Block("Switch off before servicing.", ("Safety",)),
    )


def test_table_rows_read_as_header_value_pairs(tmp_path: Path) -> None:
    # A row read alone must say what its values are: each cell is named by its column's header.
    md = (
        "## 住宿标准\n\n| 职级 | 一线城市（元/晚） | 备注 |\n|---|---|---|\n| 经理 | 600 | |\n"
        "| 总监 | 800 | 含早餐 |\n\n| Vendor | Max power |\n|---|---|\n| Huawei | 5 kW |\n"
    )
    doc = read(write(tmp_path / "rates.md", md.encode()))
    assert doc.blocks == (
        Block(
            "职级：经理 | 一线城市（元/晚）：600\n职级：总监 | 一线城市（元/晚）：800 | 备注：含早餐",
            ("住宿标准",),
        ),
        Block("Vendor: Huawei | Max power: 5 kW", ("住宿标准",)),
    )
    d = docx.Document()
    d.add_paragraph("Travel policy", style="Title")
    d.add_heading("Rates", level=1)
    wide = d.add_table(rows=3, cols=3)  # python-docx, like Word, styles the first row as a header
    for r, row in enumerate(
        [("Grade", "Tier-1 city", "Other cities"), ("Manager", "600", "450"), ("Staff", "450", "")]
    ):
        for c, value in enumerate(row):
            wide.cell(r, c).text = value
    pairs = d.add_table(rows=2, cols=2)  # two columns: label | value, no header unless marked as one
    for r, row in enumerate([("Currency", "CNY"), ("Deadline", "10 working days")]):
        for c, value in enumerate(row):
            pairs.cell(r, c).text = value
    marked = d.add_table(rows=2, cols=2)
    marked.rows[0]._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))
    for r, row in enumerate([("Item", "Limit"), ("Taxi", "100 yuan")]):
        for c, value in enumerate(row):
            marked.cell(r, c).text = value
    d.save(str(tmp_path / "rates.docx"))
    assert read(tmp_path / "rates.docx").blocks == (
        Block(
            "Grade: Manager | Tier-1 city: 600 | Other cities: 450\nGrade: Staff | Tier-1 city: 450",
            ("Rates",),
        ),
        Block("Currency | CNY\nDeadline | 10 working days", ("Rates",)),
        Block("Item: Taxi | Limit: 100 yuan", ("Rates",)),
    )


def test_docx_numbered_list_items_keep_the_numbers_word_shows(tmp_path: Path) -> None:
    d = docx.Document()
    d.add_paragraph("Onboarding", style="Title")
    for text in ("Collect your laptop", "Set up two-factor authentication"):
        d.add_paragraph(text, style="List Number")
    d.add_paragraph("Ask your buddy about tools.")
    d.add_paragraph("Meet the team", style="List Number")  # the same list (numId): numbering goes on
    d.add_paragraph("Engineering on Monday", style="List Number 2")  # another list: its own count
    d.add_paragraph("Cheap and reliable", style="List Bullet")  # bullets have no number
    d.save(str(tmp_path / "onboarding.docx"))
    assert read(tmp_path / "onboarding.docx").paragraphs == (
        "1. Collect your laptop\n2. Set up two-factor authentication",
        "Ask your buddy about tools.",
        "3. Meet the team\n1. Engineering on Monday\nCheap and reliable",
    )


def test_docx_title_from_properties_then_first_heading(tmp_path: Path) -> None:
    d = docx.Document()
    d.add_heading("Overview", level=1)
    d.add_paragraph("Body text.")
    d.save(str(tmp_path / "a.docx"))
    doc = read(tmp_path / "a.docx")
    assert doc.title == "Overview" and doc.blocks == (Block("Body text."),)
    d.core_properties.title = "Annual Plan"
    d.save(str(tmp_path / "b.docx"))
    doc = read(tmp_path / "b.docx")
    assert doc.title == "Annual Plan" and doc.blocks == (Block("Body text.", ("Overview",)),)
    d.core_properties.title = "Microsoft Word - plan.docx"  # a file name is no title
    d.save(str(tmp_path / "c.docx"))
    assert read(tmp_path / "c.docx").title == "Overview"


def test_corrupt_docx_is_refused(tmp_path: Path) -> None:
    good = make_docx(tmp_path / "good.docx").read_bytes()
    err = refusal(write(tmp_path / "cut.docx", good[: len(good) // 2]))
    assert err.code == "corrupt" and err.reason.startswith("corrupt DOCX: ")
    err = refusal(write(tmp_path / "old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600))
    assert err.code == "encrypted" and "password-protected" in err.reason


# ---------------------------------------------------------------------------------------------------
# HTML

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Solar Inverters Explained | GreenSite</title></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/blog">Blog</a></nav>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience.
  <button>Accept all cookies</button></div>
<header><h1>Solar Inverters Explained</h1></header>
<main><article>
<p>An inverter converts the direct current produced by solar panels into alternating current.</p>
<h2>String inverters</h2>
<p>String inverters connect a row of panels to <a href="/unit">one central unit</a>. They are cheap.</p>
<ul><li>Low cost per watt</li><li>Easy to service</li></ul>
<h2>Microinverters</h2>
<p>Microinverters sit behind each panel, so shade on one panel does not drag down the others.</p>
<table><tr><th>Type</th><th>Efficiency</th></tr><tr><td>String</td><td>97%</td></tr></table>
<p>Copyright 2024 GreenSite Ltd.</p>
</article></main>
<footer><p>Copyright 2024 GreenSite. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>
"""


def test_html_page_main_content_with_sections(tmp_path: Path) -> None:
    doc = read(write(tmp_path / "inverters.html", PAGE.encode()))
    assert (doc.format, doc.title, doc.encoding) == ("html", "Solar Inverters Explained", "utf-8")
    assert doc.date is None  # no date in the page's metadata; "Copyright 2024" is not one
    assert doc.blocks == (
        Block("An inverter converts the direct current produced by solar panels into alternating current."),
        Block(
            "String inverters connect a row of panels to one central unit. They are cheap.",
            ("String inverters",),
        ),
        Block("Low cost per watt\nEasy to service", ("String inverters",)),
        Block(
            "Microinverters sit behind each panel, so shade on one panel does not drag down the others.",
            ("Microinverters",),
        ),
        Block("Type: String | Efficiency: 97%", ("Microinverters",)),
    )
    text = "\n".join(doc.paragraphs)
    for boilerplate in ("cookies", "Home", "Privacy", "Copyright", "GreenSite"):
        assert boilerplate not in text


@pytest.mark.parametrize(
    ("head", "body", "title"),
    [
        # A book page (mdbook's shape): the site's <h1> and the page's, and a dialog heading whose class
        # says "title" (the extractor's own guess takes it).
        (
            "<title>What is rustdoc? - The rustdoc book</title>",
            '<h1 class="menu-title">The rustdoc book</h1><h2 class="help-title">Keyboard shortcuts</h2>'
            '<h1 id="what">What is rustdoc?</h1>',
            "What is rustdoc?",
        ),
        ("<title>Tide tables | Harbour Office</title>", "", "Tide tables"),
        ("<title>Home</title>", "<h1>Kettleby tidal mill</h1>", "Kettleby tidal mill"),
        ("<title>Untitled Document</title>", "", "page"),  # an editor's placeholder: the file's name
    ],
    ids=["title-part-that-is-an-h1", "title-first-part", "only-h1", "placeholder"],
)
def test_html_title_is_the_marked_up_one(tmp_path: Path, head: str, body: str, title: str) -> None:
    text = "The mill grinds wheat at every ebb tide, as it has since 1790. " * 3
    page = f"<html><head>{head}</head><body>{body}<main><p>{text}</p></main></body></html>"
    assert read(write(tmp_path / "page.html", page.encode())).title == title


def test_tiny_html_page_still_gives_its_text(tmp_path: Path) -> None:
    doc = read(write(tmp_path / "tiny.htm", b"<html><body><div>Opening hours: 9 to 5.</div></body></html>"))
    assert (doc.title, doc.paragraphs) == ("tiny", ("Opening hours: 9 to 5.",))


def test_html_declared_charset_and_article_saved_as_html(tmp_path: Path) -> None:
    gbk = (
        '<html><head><meta charset="gbk"><title>逆变器</title></head>'
        "<body><p>逆变器把直流电转换为交流电。</p></body></html>"
    )
    doc = read(write(tmp_path / "zh.html", gbk.encode("gbk")))
    assert (doc.encoding, doc.title, doc.paragraphs) == (
        "gb18030",
        "逆变器",
        ("逆变器把直流电转换为交流电。",),
    )
    article = "---\ntitle: 文章\ndate: 2024-05-01\n---\n<p>第一段。</p>\n<p>Second &amp; last.</p>\n"
    doc = read(write(tmp_path / "post.html", article.encode()))
    assert (doc.format, doc.title, doc.date, doc.paragraphs) == (
        "article",
        "文章",
        "2024-05-01",
        ("第一段。", "Second & last."),
    )


# ---------------------------------------------------------------------------------------------------
# Markdown and plain text

MARKDOWN = """---
title: Inverter notes
tags: [solar, power]
---
# Inverters

An **inverter** converts [direct current](http://example.com/dc) to `AC`.
Second line of the same paragraph. ![diagram](d.png)

## Types
- String inverter
- Microinverter
  1. with optimiser

| Type | Efficiency |
|------|-----------:|
| String | 97% |

### 中文
逆变器把直流电
转换为交流电。

## Costs

---

> Quoted advice: compare prices.

```
price = panels * 120
```

12

© 2024 ACME. All rights reserved.
"""


def test_markdown_sections_lists_tables_and_inline_markup(tmp_path: Path) -> None:
    doc = read(write(tmp_path / "notes.md", MARKDOWN.encode()))
    assert (doc.format, doc.title, doc.tags, doc.encoding) == (
        "markdown",
        "Inverter notes",
        ("solar", "power"),
        "utf-8",
    )
    assert doc.blocks == (
        Block(
            "An inverter converts direct current to AC. Second line of the same paragraph.",
            ("Inverters",),
        ),
        Block("String inverter\nMicroinverter\n1. with optimiser", ("Inverters", "Types")),
        Block("Type: String | Efficiency: 97%", ("Inverters", "Types")),
        Block("逆变器把直流电转换为交流电。", ("Inverters", "Types", "中文")),
        Block("Quoted advice: compare prices.", ("Inverters", "Costs")),
        Block("price = panels * 120", ("Inverters", "Costs"), code=((0, 20),)),
    )
    assert not any("#" in b.text or "**" in b.text or "](" in b.text for b in doc.blocks)


def test_markdown_ordered_list_items_keep_their_numbers(tmp_path: Path) -> None:
    # "What is the first step?" asks for item 1; the number is the item's content, not markup.
    md = "## 安装\n\n3. 关闭总闸\n4. 拆下旧表\n   - 保留铅封\n5. 接线\n\n- Fuses\n- Fans\n"
    doc = read(write(tmp_path / "steps.md", md.encode()))
    assert doc.blocks == (
        Block("3. 关闭总闸\n4. 拆下旧表\n保留铅封\n5. 接线", ("安装",)),
        Block("Fuses\nFans", ("安装",)),
    )


def test_markdown_title_from_first_h1_else_the_file_name(tmp_path: Path) -> None:
    doc = read(write(tmp_path / "guide.markdown", b"# Setup Guide\n\nInstall it.\n\n## Linux\n\nUse apt.\n"))
    assert doc.title == "Setup Guide"
    assert doc.blocks == (Block("Install it."), Block("Use apt.", ("Linux",)))
    doc = read(write(tmp_path / "faq.md", b"## Why?\n\nBecause.\n"))
    assert doc.title == "faq" and doc.blocks == (Block("Because.", ("Why?",)),)


def test_txt_with_markdown_headings_is_markdown(tmp_path: Path) -> None:
    doc = read(
        write(tmp_path / "inverter.txt", b"## Inverter\n\nIt converts DC to AC.\n\n#hashtag stays text\n")
    )
    assert doc.format == "markdown"
    assert doc.blocks == (
        Block("It converts DC to AC.", ("Inverter",)),
        Block("#hashtag stays text", ("Inverter",)),
    )


def test_plain_text_paragraphs_and_front_matter_title(tmp_path: Path) -> None:
    text = "---\ntitle: Plain notes\n---\nfirst line\nsecond line\n\n\n中文第一行\n第二行\n\n---\n"
    doc = read(write(tmp_path / "plain.txt", text.encode()))
    assert (doc.format, doc.title) == ("text", "Plain notes")
    assert doc.blocks == (Block("first line second line"), Block("中文第一行第二行"))
    # "---" around a paragraph is a Markdown rule, not front matter.
    doc = read(write(tmp_path / "rules.txt", b"---\nJust a paragraph.\n---\n"))
    assert (doc.title, doc.paragraphs) == ("rules", ("Just a paragraph.",))


def test_plain_text_heading_line_is_the_title_not_a_passage(tmp_path: Path) -> None:
    text = "河道清理行动\n\n志愿者们清理了三吨垃圾。\n\n明年将安装十个垃圾桶。\n"
    doc = read(write(tmp_path / "river.txt", text.encode("gbk")))
    assert (doc.title, doc.encoding) == ("河道清理行动", "gb18030")
    assert doc.paragraphs == ("志愿者们清理了三吨垃圾。", "明年将安装十个垃圾桶。")
    # A first paragraph that is a sentence, or a long line, or the only paragraph, stays a passage.
    for body in ("Tides are early today.\n\nThe mill opens at six.", "x " * 50 + "\n\nMore.", "Lone line"):
        doc = read(write(tmp_path / "note.txt", body.encode()))
        assert doc.title == "note" and doc.paragraphs[0] == body.split("\n\n")[0].strip()


def test_seed_article_reads_as_before() -> None:
    doc = read_document(SEED_DOCS / f"{SEED_ID}.txt", SEED_DOCS)
    assert (doc.format, doc.encoding, doc.path, len(doc.blocks)) == ("article", "utf-8", f"{SEED_ID}.txt", 17)
    assert all(b.section == () and b.page is None for b in doc.blocks)


# ---------------------------------------------------------------------------------------------------
# Encodings

ZH = "逆变器把太阳能电池板产生的直流电转换为家庭使用的交流电，微型逆变器安装在每块电池板背后。"
ZH_HANT = "逆變器把太陽能電池板產生的直流電轉換為家庭使用的交流電，微型逆變器安裝在每塊電池板背後。"
EN = "Café owners in Zürich said the naïve façade cost €120 — more than expected."


@pytest.mark.parametrize(
    ("text", "data", "encoding"),
    [
        (ZH, ZH.encode("gbk"), "gb18030"),
        (ZH + "㐀", (ZH + "㐀").encode("gb18030"), "gb18030"),  # U+3400: GB18030 has it, GBK does not
        (ZH_HANT, ZH_HANT.encode("big5"), "big5"),
        (ZH, codecs.BOM_UTF16_LE + ZH.encode("utf-16-le"), "utf-16-le"),
        (ZH, codecs.BOM_UTF16_BE + ZH.encode("utf-16-be"), "utf-16-be"),
        (EN + "\n\n" + ZH, (EN + "\n\n" + ZH).encode("utf-16-le"), "utf-16-le"),  # no BOM
        (ZH, codecs.BOM_UTF8 + ZH.encode(), "utf-8"),
        (ZH, ZH.encode(), "utf-8"),
        (EN, EN.encode("cp1252"), "cp1252"),
    ],
    ids=[
        "gbk",
        "gb18030",
        "big5",
        "utf16le-bom",
        "utf16be-bom",
        "utf16le-nobom",
        "utf8-bom",
        "utf8",
        "cp1252",
    ],
)
def test_decode_text(text: str, data: bytes, encoding: str, tmp_path: Path) -> None:
    assert decode_text(data) == (text, encoding)
    doc = read(write(tmp_path / "a.txt", data))
    assert (doc.encoding, doc.paragraphs) == (encoding, tuple(text.split("\n\n")))


def test_utf8_bom_is_stripped_from_the_title_too(tmp_path: Path) -> None:
    doc = read(write(tmp_path / "bom.md", codecs.BOM_UTF8 + "# 标题\n\n正文。\n".encode()))
    assert (doc.title, doc.paragraphs, doc.encoding) == ("标题", ("正文。",), "utf-8")


def test_binary_and_undecodable_data_is_refused() -> None:
    with pytest.raises(UnreadableDocumentError, match=r"^binary data, not text \(it holds NUL bytes\)$"):
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    with pytest.raises(UnreadableDocumentError, match=r"^binary data, not text \(control"):
        decode_text(bytes(range(1, 32)) * 10)
    with pytest.raises(UnreadableDocumentError, match=r"^cannot detect the text encoding \(tried UTF-8"):
        decode_text(random.Random(1).randbytes(4000).replace(b"\x00", b"\x01"))


# ---------------------------------------------------------------------------------------------------
# Refusals and the folder


def test_empty_and_whitespace_files_are_refused(tmp_path: Path) -> None:
    err = refusal(write(tmp_path / "empty.txt", b""))
    assert (err.code, err.reason) == ("empty", "empty file")
    err = refusal(write(tmp_path / "blank.md", b" \n\t\n"))
    assert (err.code, err.reason) == ("empty", "empty file")
    err = refusal(write(tmp_path / "only-heading.md", b"# Title\n\n## Section\n\n- - -\n\n12\n"))
    assert (err.code, err.reason) == ("empty", "no text to index: the file holds no paragraphs")


def test_unknown_suffix_is_refused_with_the_supported_list(tmp_path: Path) -> None:
    err = refusal(write(tmp_path / "data.xyz", b"hello"))
    assert err.code == "unsupported_type"
    assert (
        err.reason == "unsupported file type .xyz "
        "(supported: .docx, .htm, .html, .markdown, .md, .pdf, .rst, .text, .txt, .xhtml)"
    )
    assert refusal(write(tmp_path / "README", b"hello")).reason.startswith(
        "unsupported file type (no suffix)"
    )


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_random_bytes_are_refused_never_crash(suffix: str, tmp_path: Path) -> None:
    rng = random.Random(suffix)
    for i in range(20):
        path = write(tmp_path / f"r{i}{suffix}", rng.randbytes(rng.choice([200, 2000, 20000])))
        assert refusal(path).code in ("undecodable", "corrupt", "no_text", "empty")


def test_damaged_pdf_and_docx_never_crash(tmp_path: Path) -> None:
    rng = random.Random(9)
    originals = {
        ".pdf": make_pdf(tmp_path / "o.pdf", REPORT, title="T").read_bytes(),
        ".docx": make_docx(tmp_path / "o.docx").read_bytes(),
    }
    outcomes = set()
    for i in range(40):
        suffix = ".pdf" if i % 2 else ".docx"
        data = bytearray(originals[suffix])
        for _ in range(rng.randint(1, 30)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = write(tmp_path / f"d{i}{suffix}", bytes(data[: rng.randint(len(data) // 2, len(data))]))
        try:
            outcomes.add(read(path).format)
        except UnreadableDocumentError as exc:
            outcomes.add(exc.code)
    assert "corrupt" in outcomes


def test_blocks_that_are_noise_are_not_emitted() -> None:
    for noise in (
        "12",
        "- 3 -",
        "Page 4 of 10",
        "第 5 页",
        "iv",
        "* * *",
        "—",
        "Copyright © 2024 ACME",
        "版权所有",
    ):
        assert is_noise(noise), noise
    for text in ("In 2024 sales rose.", "第五章", "Copyright law protects authors' works in most countries."):
        assert not is_noise(text), text


def test_join_lines_reflows_cjk_and_latin() -> None:
    assert join_lines(["中文第一行", "第二行"]) == "中文第一行第二行"
    assert join_lines(["first", "second"]) == "first second"
    assert join_lines(["alter-", "nating"], dehyphenate=True) == "alternating"
    assert join_lines(["Jean-", "Pierre"], dehyphenate=True) == "Jean-Pierre"
    assert join_lines(["well-", "known"]) == "well- known"  # Markdown and text: a hyphen is the author's
    assert join_lines(["使用", "Python", "编程"]) == "使用Python编程"


def test_document_files_lists_every_file_but_hidden_ones(tmp_path: Path) -> None:
    for name in ("a.txt", "b.xyz", "sub/c.pdf", ".hidden.txt", ".git/config", "~$lock.docx", "README"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [f.rel for f in scan_folder(tmp_path)] == [
        "README",
        "a.txt",
        "b.xyz",
        "sub/c.pdf",
    ]


def test_html_definition_list_keeps_each_term_with_its_definition(tmp_path: Path) -> None:
    page = (
        "<html><head><title>Glossary</title></head><body><nav><a href='/'>Home</a></nav><main><article>"
        "<h1>Glossary</h1><p>The terms used in heat pump datasheets, explained for buyers.</p><dl>"
        "<dt>COP</dt><dd>Heat delivered divided by electricity used.</dd>"
        "<dt>SCOP</dt><dt>Seasonal COP</dt><dd>The COP averaged over a heating season.</dd>"
        "<div><dt>供水温度</dt><dd>送往散热器的水温。</dd><dd>通常为35至55摄氏度。</dd></div>"
        "</dl></article></main><footer>Contact us</footer></body></html>"
    )
    doc = read(write(tmp_path / "glossary.html", page.encode()))
    assert doc.blocks[-1].text.split("\n") == [
        "COP: Heat delivered divided by electricity used.",
        "SCOP, Seasonal COP: The COP averaged over a heating season.",
        "供水温度：送往散热器的水温。",
        "供水温度：通常为35至55摄氏度。",
    ]


def test_html_list_of_links_a_paragraph_introduces_is_content(tmp_path: Path) -> None:
    # An index page (mdbook's shape): each item links to its own page, which makes the list as dense in
    # links as a menu; the lead-in says it is content. The menu above introduces nothing and stays out.
    page = (
        "<html><head><title>测试</title></head><body><nav><ul><li><a href='/'>首页</a></li>"
        "<li><a href='/types.html'>类型</a></li><li><a href='/testing.html'>测试</a></li></ul></nav><main>"
        "<h1>测试</h1><p>Rust 是一种非常注重正确性的编程语言，它内置了编写软件测试的支持。</p>"
        "<p>测试分为三种类型：</p><ul><li><a href='unit.html'>单元测试</a></li>"
        "<li><a href='doc.html'>文档测试</a></li><li><a href='integration.html'>集成测试</a></li></ul>"
        "<p>Tests can also use extra crates:</p><ol><li><a href='dev.html'>dev-dependencies</a></li></ol>"
        "</main></body></html>"
    )
    doc = read(write(tmp_path / "testing.html", page.encode()))
    assert [b.text for b in doc.blocks] == [
        "Rust 是一种非常注重正确性的编程语言，它内置了编写软件测试的支持。",
        "测试分为三种类型：\n单元测试\n文档测试\n集成测试",
        "Tests can also use extra crates:\n1. dev-dependencies",
    ]
    assert "首页" not in "\n".join(doc.paragraphs)


def test_code_blocks_are_marked_in_markdown_and_html_also_after_a_lead_in(tmp_path: Path) -> None:
    md = "# CI\n\nYou can add Clippy to Travis CI:\n\n```yaml\nlanguage: rust\nrust:\n  - stable\n```\n"
    html = (
        "<html><head><title>CI</title></head><body><main><h1>CI</h1><p>A long enough paragraph that says "
        "what the example below does, so that the page has a main text.</p><p>Run it like this:</p>"
        "<pre><code>$ cargo clippy\n$ cargo clippy --fix</code></pre></main></body></html>"
    )
    for name, data, lead, code in (
        ("ci.md", md, "You can add Clippy to Travis CI:", "language: rust\nrust:\n  - stable"),
        ("ci.html", html, "Run it like this:", "$ cargo clippy\n$ cargo clippy --fix"),
    ):
        block = read(write(tmp_path / name, data.encode())).blocks[-1]
        assert block.text == f"{lead}\n{code}"
        assert block.code == ((len(lead) + 1, len(block.text)),)
    # A program is read line by line: its comments answer questions one by one.
    program = "\n".join(f"let x{i} = {i}; // 第{i}行" for i in range(MAX_CODE_UNIT_LINES + 1))
    block = read(write(tmp_path / "long.md", f"# Long\n\n```rust\n{program}\n```\n".encode())).blocks[-1]
    assert block.text == program and block.code == ()


def test_plain_text_underlined_headings_and_wrapped_list_items(tmp_path: Path) -> None:
    text = (
        "TRIGGERS\n========\n\nIntroduction\n------------\n\nA trigger records an event for later.\n\n"
        "Updates since v2.27\n-------------------\n\nThere are three kinds of triggers:\n"
        " * Explicit triggers.  These are activated by any program\n   running dpkg-trigger.\n"
        " * File triggers.  These are activated by dpkg\n   when a file is installed.\n"
        " 2. Future kinds\n\n"
        "The old spool stays where it was\n- and so does the new one - until an upgrade.\n"
    )
    doc = read(write(tmp_path / "triggers.txt", text.encode()))
    assert doc.title == "TRIGGERS"
    assert doc.blocks == (
        Block("A trigger records an event for later.", ("Introduction",)),
        Block(
            "There are three kinds of triggers:\n"
            "Explicit triggers. These are activated by any program running dpkg-trigger.\n"
            "File triggers. These are activated by dpkg when a file is installed.\n"
            "2. Future kinds",
            ("Updates since v2.27",),
        ),
        # a dash opening a line in the middle of a sentence is prose
        Block(
            "The old spool stays where it was - and so does the new one - until an upgrade.",
            ("Updates since v2.27",),
        ),
    )


def test_plain_text_heading_lines_head_the_paragraphs_under_them(tmp_path: Path) -> None:
    text = (
        "储能电站运维手册\n\n第一章 日常巡检\n\n运维人员每日巡检一次电池舱。\n"
        "温度应保持在十五至三十摄氏度之间。\n\n第二章 消防要求\n\n每个电池舱配备七氟丙烷灭火系统。\n\n"
        "Spare parts\n\nFuses\n\nCooling fans\n"
    )
    doc = read(write(tmp_path / "manual.txt", text.encode("gbk")))
    assert doc.title == "储能电站运维手册"
    assert doc.blocks == (
        Block("运维人员每日巡检一次电池舱。温度应保持在十五至三十摄氏度之间。", ("第一章 日常巡检",)),
        Block("每个电池舱配备七氟丙烷灭火系统。", ("第二章 消防要求",)),
        # short unpunctuated lines in a row are a list, not headings
        Block("Spare parts", ("第二章 消防要求",)),
        Block("Fuses", ("第二章 消防要求",)),
        Block("Cooling fans", ("第二章 消防要求",)),
    )


def test_plain_text_numbered_heading_over_its_text_with_no_blank_line_heads_it(tmp_path: Path) -> None:
    text = (
        "红烧狮子头的做法\n\n红烧狮子头是淮扬菜的传统名菜。\n\n"
        "一、准备食材\n猪肉馅500克，要求三分肥七分瘦。\n另备荸荠6个、鸡蛋1个。\n\n"
        "二、制作步骤\n将荸荠去皮切成碎末。\n砂锅中加入清水800毫升，小火炖煮1个半小时即可。\n"
        "第三章 保存\n第一条 做好的狮子头冷藏可保存3天。\n（一）冷冻\n冷冻可保存一个月。\n\n"
        # numbered lines of one shape in a row are a list, not headings
        "所需工具\n一、砂锅\n二、油锅\n"
    )
    doc = read(write(tmp_path / "狮子头.txt", text.encode("gbk")))
    assert doc.title == "红烧狮子头的做法"
    assert doc.blocks == (
        Block("红烧狮子头是淮扬菜的传统名菜。"),
        Block("猪肉馅500克，要求三分肥七分瘦。另备荸荠6个、鸡蛋1个。", ("一、准备食材",)),
        Block("将荸荠去皮切成碎末。砂锅中加入清水800毫升，小火炖煮1个半小时即可。", ("二、制作步骤",)),
        Block("第一条 做好的狮子头冷藏可保存3天。", ("第三章 保存",)),
        Block("冷冻可保存一个月。", ("（一）冷冻",)),
        Block("所需工具一、砂锅二、油锅", ("（一）冷冻",)),
    )


def test_plain_text_numbered_heading_lines_are_told_from_numbered_list_items(tmp_path: Path) -> None:
    text = (
        "Field Guide to the Kestrel Valley\n\n"
        "1. Introduction\nThis guide covers the trails of the Kestrel Valley and the huts along them, with\n"
        "the distances and climbs of every stage.\n\n"
        "1.2 Scope\nOnly the marked trails are described.\n"
        "Chapter 3 Permits\nA free permit is required between June and September.\n\n"
        "Part II\nHikers should carry water.\n\n"
        # items in a run, an item that ends a sentence, an item wrapped onto its next line
        "Before you set out:\n1. Install the app\n2. Download the maps\n\n"
        "Steps to take.\n1. Install the package.\nThen run the setup program.\n\n"
        "1. Install the package from the internal\nmirror that the IT department runs.\n2. Start it.\n\n"
        "3. Check the service\n   It answers on port 8080.\n"
    )
    doc = read(write(tmp_path / "guide.txt", text.encode()))
    assert doc.title == "Field Guide to the Kestrel Valley"
    assert doc.blocks == (
        Block(
            "This guide covers the trails of the Kestrel Valley and the huts along them, with the distances "
            "and climbs of every stage.",
            ("1. Introduction",),
        ),
        Block("Only the marked trails are described.", ("1.2 Scope",)),
        Block("A free permit is required between June and September.", ("Chapter 3 Permits",)),
        Block("Hikers should carry water.", ("Part II",)),
        Block("Before you set out:\n1. Install the app\n2. Download the maps", ("Part II",)),
        Block("Steps to take.\n1. Install the package. Then run the setup program.", ("Part II",)),
        Block(
            "1. Install the package from the internal mirror that the IT department runs.\n2. Start it.",
            ("Part II",),
        ),
        Block("3. Check the service It answers on port 8080.", ("Part II",)),
    )


def test_plain_text_set_like_a_manual_page_has_sections_and_terms(tmp_path: Path) -> None:
    # A manual page rendered as text (man, groff): headings at the margin over text set in, terms over
    # their definitions, words broken at line ends with U+2010.
    text = (
        "PASSWD(1)                    用户命令                    PASSWD(1)\n\n"
        "名称\n       passwd - 更改用户密码\n\n"
        "描述\n       The passwd command changes passwords for user accounts. It is speci\u2010\n"
        "       fied by the administrator.\n\n"
        "选项\n       -l, --lock\n           锁定指定账户的密码。\n\n"
        "       -q, --quiet\n           Run in quiet mode.\n\n"
        "退出值\n       The passwd command exits with the following values:\n\n"
        "       0\n           success\n\n"
        "       if (size > 9)\n           size = 9;\n"
    )
    doc = read(write(tmp_path / "passwd.txt", text.encode("gb18030")))
    assert doc.title == "PASSWD(1) 用户命令 PASSWD(1)"
    assert [(b.text, b.section) for b in doc.blocks] == [
        ("passwd - 更改用户密码", ("名称",)),
        (
            "The passwd command changes passwords for user accounts. It is specified by the administrator.",
            ("描述",),
        ),
        ("-l, --lock: 锁定指定账户的密码。", ("选项",)),
        ("-q, --quiet: Run in quiet mode.", ("选项",)),
        ("The passwd command exits with the following values:\n0: success", ("退出值",)),
        ("if (size > 9) size = 9;", ("退出值",)),  # a line of code is no term over the next
    ]


def test_plain_text_at_the_margin_keeps_a_short_line_over_indented_ones_as_text(tmp_path: Path) -> None:
    # Prose that starts at the margin: a short line over indented lines introduces them, heads nothing.
    text = (
        "Report bugs\n  - in the bug tracker at <https://example.org/bugs>\n  - or by email.\n\n"
        "The configure script provides a non-standard option.\n"
        "It is also available in other packages.\n\n"
        "Written by\n    Richard Stallman and others.\n"
    )
    doc = read(write(tmp_path / "README.txt", text.encode()))
    assert all(b.section == () for b in doc.blocks)
    assert doc.blocks[-1].text == "Written by Richard Stallman and others."


def test_plain_text_diagram_is_one_code_block_with_its_line_breaks(tmp_path: Path) -> None:
    # dpkg's triggers spec draws its states so; read as prose, the drawing was one run-on "sentence"
    # ("+-----------+ activate +---...") that could outrank the text around it.
    diagram = (
        "+-----------+  activate   +------------------+\n"
        "| installed | ----------> | triggers-pending |\n"
        "+-----------+             +------------------+\n"
        "      ^                            |\n"
        "      |    postinst triggered      |\n"
        "      +----------------------------+"
    )
    indented = "".join(f"    {line}\n" for line in diagram.split("\n"))
    text = f"A package moves between two states:\n\n{indented}\nThe postinst runs once per dpkg run.\n"
    doc = read(write(tmp_path / "states.txt", text.encode()))
    lead = "A package moves between two states:"
    assert doc.blocks == (
        Block(f"{lead}\n{diagram}", code=((len(lead) + 1, len(lead) + 1 + len(diagram)),)),
        Block("The postinst runs once per dpkg run."),
    )
    # Unicode box drawing with CJK labels, not indented, is a drawing too.
    boxes = "┌────────┐    ┌────────┐\n│ 电池舱 │ →  │ 变流器 │\n└────────┘    └────────┘"
    doc = read(write(tmp_path / "boxes.txt", f"储能电站的能量从电池舱流向变流器。\n\n{boxes}\n".encode()))
    assert doc.blocks[-1] == Block(boxes, code=((0, len(boxes)),))


def test_plain_text_literal_block_after_a_double_colon_and_commands_under_a_lead_in(tmp_path: Path) -> None:
    text = (
        "Install it from source::\n\n    make install\n\n"
        "Start the service and check it::\n\n    citeqa serve --port 8080\n    citeqa status\n\n"
        "A trigger may be activated explicitly with:\n"
        "   dpkg-trigger [--by-package <package>] <name-of-trigger>\n"
        "   dpkg-trigger --no-await <name-of-trigger>\n"
        "There will be no output to stdout.\n"
    )
    doc = read(write(tmp_path / "install.txt", text.encode()))
    expected = [
        ("Install it from source::", "make install"),
        ("Start the service and check it::", "citeqa serve --port 8080\nciteqa status"),
        (
            "A trigger may be activated explicitly with:",
            "dpkg-trigger [--by-package <package>] <name-of-trigger>\n"
            "dpkg-trigger --no-await <name-of-trigger>",
        ),
    ]
    assert doc.blocks == (
        *(
            Block(f"{lead}\n{code}", code=((len(lead) + 1, len(lead) + 1 + len(code)),))
            for lead, code in expected
        ),
        Block("There will be no output to stdout."),  # after the command: a sentence, no heading
    )


def test_plain_text_prose_with_dashes_and_pipes_stays_prose_and_a_table_keeps_its_rows(
    tmp_path: Path,
) -> None:
    prose = (
        "The reader has three modes - fast | careful | strict - and the default --\n"
        "careful -- suits most files. A value like a|b is passed through; see the\n"
        "table below for what each mode costs.\n"
    )
    quote = (
        "    A package which has pending triggers, or which awaits triggers, is not\n"
        "    considered properly installed.\n"
    )
    drawn = (
        "+------+---------+\n| Mode | Speed   |\n+------+---------+\n| fast | 10 MB/s |\n+------+---------+"
    )
    columns = "Status      Pending   Awaited\nunpacked    never     maybe\ninstalled   never     never"
    text = f"Modes\n-----\n\n{prose}\nThe spec says:\n\n{quote}\n{drawn}\n\n{columns}\n"
    doc = read(write(tmp_path / "modes.txt", text.encode()))
    assert doc.blocks == (
        Block(
            "The reader has three modes - fast | careful | strict - and the default -- careful -- suits most "
            "files. A value like a|b is passed through; see the table below for what each mode costs."
        ),
        # indented prose under a lead-in is a quotation, not code
        Block(
            "The spec says:\nA package which has pending triggers, or which awaits triggers, is not "
            "considered properly installed."
        ),
        Block(drawn, code=((0, len(drawn)),)),
        Block(columns, code=((0, len(columns)),)),  # columns aligned by spaces are a table too
    )


def test_plain_text_chinese_prose_stays_prose_when_indented(tmp_path: Path) -> None:
    text = (
        "储能系统说明\n\n"
        "    储能电站由电池舱、变流器和能量管理系统组成。电池舱内的温度\n"
        "    应保持在十五至三十摄氏度之间，超出范围时系统自动报警。\n\n"
        "　　运维人员每日巡检一次电池舱，检查温度、湿度和消防装置，\n"
        "发现异常立即上报，并在运维日志中记录处理结果。\n\n"
        "运维人员须知：\n\n"
        "        巡检时先查看能量管理系统的告警记录，再逐一检查电池舱的\n"
        "        温度、湿度和消防装置。\n\n"
        "┌────────┐    ┌────────┐\n│ 电池舱 │ →  │ 变流器 │\n└────────┘    └────────┘\n"
    )
    doc = read(write(tmp_path / "storage.txt", text.encode("gbk")))
    assert doc.title == "储能系统说明"
    assert [(b.text, b.code) for b in doc.blocks[:3]] == [
        (
            "储能电站由电池舱、变流器和能量管理系统组成。电池舱内的温度应保持在十五至三十摄氏度之间，超出范围时系统自动报警。",
            (),
        ),
        (
            "运维人员每日巡检一次电池舱，检查温度、湿度和消防装置，发现异常立即上报，并在运维日志中记录处理结果。",
            (),
        ),
        ("运维人员须知：\n巡检时先查看能量管理系统的告警记录，再逐一检查电池舱的温度、湿度和消防装置。", ()),
    ]
    assert doc.blocks[3].code  # while the drawing after them is code


def test_a_drawing_of_any_size_is_one_unit_but_a_long_program_keeps_its_lines_apart(tmp_path: Path) -> None:
    """A line of a diagram states nothing on its own (quoted alone, "| step 3 |" or "│ config-failed │"
    answered questions about what the drawing shows): a drawing is one unit whatever its length, in plain
    text and in a Markdown fence, while a program over MAX_CODE_UNIT_LINES lines is quoted line by line."""
    boxes = [row for i in range(1, 7) for row in ("+--------+", f"| step {i} |", "+--------+", "    |")][:-1]
    assert len(boxes) > MAX_CODE_UNIT_LINES
    diagram = "\n".join(boxes)
    doc = read(write(tmp_path / "flow.txt", f"The build runs six steps in order.\n\n{diagram}\n".encode()))
    assert doc.blocks[-1] == Block(diagram, code=((0, len(diagram)),))
    doc = read(write(tmp_path / "flow.md", f"# Flow\n\nThe six steps.\n\n```\n{diagram}\n```\n".encode()))
    assert (doc.blocks[-1].text, doc.blocks[-1].code) == (diagram, ((0, len(diagram)),))
    program = "\n".join(f"    x{n} = convert({n});" for n in range(MAX_CODE_UNIT_LINES + 3))
    doc = read(write(tmp_path / "prog.md", f"# Prog\n\nThe program.\n\n```\n{program}\n```\n".encode()))
    assert not doc.blocks[-1].code  # lines of their own


def test_pipe_table_without_a_header_line_is_still_a_table(tmp_path: Path) -> None:
    # An HTML table without <th> comes out of the extractor as "| a | b |" lines with no "|---|" under a
    # header: Markdown reads that as one paragraph, which glued the rows into one line of pipes.
    page = (
        "<html><head><title>Gateway</title></head><body><nav><a href='/'>Home</a></nav><article>"
        "<h1>Gateway</h1><p>The gateway is a small box that reads your inverter every 30 seconds.</p>"
        "<table><tr><td>Weight</td><td>0.4 kg</td></tr><tr><td>Power draw</td><td>2 W</td></tr></table>"
        "<h2>Plans</h2><table><tr><td><b>Plan</b></td><td><b>Price</b></td></tr>"
        "<tr><td>Basic</td><td>£5 a month</td></tr></table></article></body></html>"
    )
    doc = read(write(tmp_path / "gateway.html", page.encode()))
    assert doc.blocks[1:] == (
        Block("Weight | 0.4 kg\nPower draw | 2 W"),
        Block("Plan: Basic | Price: £5 a month", ("Plans",)),  # a bold first row is the header
    )
    md = "## 规格\n\n| 重量 | 0.4 千克 |\n| 功率 | `2 W` \\| 待机 |\n\nA | B is not a table.\n"
    assert read(write(tmp_path / "spec.md", md.encode())).blocks == (
        Block("重量 | 0.4 千克\n功率 | 2 W | 待机", ("规格",)),
        Block("A | B is not a table.", ("规格",)),
    )


def test_short_html_notice_keeps_its_paragraphs_and_drops_the_navigation(tmp_path: Path) -> None:
    # Under 250 characters of content trafilatura used to prefer its baseline: the navigation included
    # and every line run together into one paragraph ("首页新闻中心关于我们停电公告因线路检修…").
    page = (
        '<html><head><meta charset="gb2312"><title>停电公告 - 供电公司</title></head><body><div class="nav">'
        '<a href="/">首页</a> <a href="/news">新闻中心</a> <a href="/about">关于我们</a></div>'
        '<div class="content"><h1>停电公告</h1><p>因线路检修，东城区将于12月5日停电。</p>'
        "<p>如遇紧急情况，请拨打抢修电话95598。</p></div>"
        "<div class='footer'>版权所有 供电公司</div></body></html>"
    )
    doc = read(write(tmp_path / "notice.html", page.encode("gbk")))
    assert (doc.title, doc.encoding) == ("停电公告", "gb18030")
    assert doc.paragraphs == ("因线路检修，东城区将于12月5日停电。", "如遇紧急情况，请拨打抢修电话95598。")


def test_a_lead_in_paragraph_and_the_list_it_introduces_are_one_block(tmp_path: Path) -> None:
    """A paragraph ending in a colon states nothing without what follows it: the two are one block (so one
    passage), in every format; never across a heading."""
    source = (
        "# Backups\n\nThe nightly job writes two files:\n\n"
        "- state.db (the catalogue)\n- blobs.tar (the data)\n\n"
        "备份保存在以下位置：\n\n1. 本地磁盘\n2. 异地机房\n\n"
        "## Restore\n\nRun this:\n\n## Notes\n\nKeep both.\n"
    )
    doc = read(write(tmp_path / "backups.md", source.encode()))
    assert [b.text for b in doc.blocks] == [
        "The nightly job writes two files:\nstate.db (the catalogue)\nblobs.tar (the data)",
        "备份保存在以下位置：\n1. 本地磁盘\n2. 异地机房",
        "Run this:",  # the next block is under another heading
        "Keep both.",
    ]
    page = (
        "<html><head><title>Formats</title></head><body><main><h1>Formats</h1><p>CiteQA reads a folder.</p>"
        "<p>Supported formats:</p><ul><li>PDF files</li><li>DOCX files</li></ul></main></body></html>"
    )
    blocks = read(write(tmp_path / "formats.html", page.encode())).blocks
    assert [b.text for b in blocks] == ["CiteQA reads a folder.", "Supported formats:\nPDF files\nDOCX files"]


def test_a_question_on_its_own_and_the_answer_after_it_are_one_block(tmp_path: Path) -> None:
    """An FAQ's question states nothing: with its answer it is one block (so one passage), in every format;
    not when another question or a heading follows it, and not a paragraph that only ends in a question."""
    source = (
        "# CloudNote FAQ\n\n## 账户与订阅\n\n"
        "**如何取消自动续费？**\n\n请在“我的 > 会员中心”中关闭自动续费。\n\n"
        "**What does CloudNote Premium cost?**\n\nPremium costs 98 yuan per year.\n\n"
        "Can I pay by invoice?\n\nIs there a family plan?\n\nBoth are planned for next year.\n\n"
        "Where is my data stored?\n\n## Data\n\n"
        "Notes sync every minute. Why so often?\n\nConflicts are rare.\n"
    )
    doc = read(write(tmp_path / "faq.md", source.encode()))
    assert doc.blocks == (
        Block("如何取消自动续费？\n请在“我的 > 会员中心”中关闭自动续费。", ("账户与订阅",)),
        Block("What does CloudNote Premium cost?\nPremium costs 98 yuan per year.", ("账户与订阅",)),
        Block("Can I pay by invoice?", ("账户与订阅",)),  # questions in a row stay apart
        Block("Is there a family plan?\nBoth are planned for next year.", ("账户与订阅",)),
        Block("Where is my data stored?", ("账户与订阅",)),  # a heading follows it
        Block("Notes sync every minute. Why so often?", ("Data",)),
        Block("Conflicts are rare.", ("Data",)),
    )
    text = "常见问题\n\n笔记支持导出吗？\n\n支持。笔记可以导出为 Markdown、PDF 或 HTML 格式。\n"
    assert read(write(tmp_path / "faq.txt", text.encode())).paragraphs == (
        "笔记支持导出吗？\n支持。笔记可以导出为 Markdown、PDF 或 HTML 格式。",
    )


def test_old_html_page_keeps_text_set_directly_in_the_body_and_its_code_blocks(tmp_path: Path) -> None:
    """A hand-written page (zlib's usage example is one): prose set straight into <body> between <pre>
    blocks, unclosed <p>, code in <pre><b>. Every sentence is kept, code stays code (its ``#  define``
    lines are no headings, its ``_`` no Markdown escapes)."""
    page = (
        "<html><head><title>Stream Example</title></head><body><h2>Stream Example</h2>\n"
        "We often get questions about how the <tt>pack()</tt> function should be used.\n"
        "This page answers them with an annotated example.\n<p>\nHere is the program:\n"
        "<pre><b>\n#if defined(WIN32)\n#  define SET_MODE(file) set_mode(file)\n#endif\n</b></pre><!-- -->\n"
        "<tt>CHUNK</tt> is simply the buffer size for feeding data to the <em>pack</em> routines.\n"
        "<pre><b>\n#define CHUNK 16384\nint in_size = CHUNK;\n</b></pre>\n"
        "The <tt>pack()</tt> routine compresses data from an input file to an output file.\n"
        "</body></html>"
    )
    doc = read(write(tmp_path / "example.html", page.encode("latin-1")))
    text = "\n".join(b.text for b in doc.blocks)
    for sentence in (
        "We often get questions about how the pack() function should be used.",
        "This page answers them with an annotated example.",
        "CHUNK is simply the buffer size for feeding data to the pack routines.",
        "The pack() routine compresses data from an input file to an output file.",
    ):
        assert sentence in " ".join(text.split()), sentence
    assert (
        "#  define SET_MODE(file) set_mode(file)" in text
        and "#define CHUNK 16384\nint in_size = CHUNK;" in text
    )
    assert all(not b.section for b in doc.blocks)  # no code line became a heading
    assert "**" not in text and "\\_" not in text


RST = """Backup tool
===========

Installing
----------

Install the tool with pip::

    pip install backup-tool

.. code-block:: console

    $ backup --version
    backup 2.1

.. include:: /etc/passwd

.. raw:: html

    <p>Injected</p>

.. toctree::

    usage

Restoring
+++++++++

A restore reads the catalogue first, then the objects it lists (:ref:`catalogue`).
"""


def test_restructured_text_is_read_by_docutils(tmp_path: Path) -> None:
    """Sections under any underline, literal and code blocks as code (a lead-in joined with its block, as in
    the other formats), Sphinx-only directives dropped, and nothing read from outside the file
    (``include``) or passed through raw."""
    doc = read(write(tmp_path / "guide.rst", RST.encode()))
    assert (doc.title, doc.format, doc.encoding) == ("Backup tool", "rst", "utf-8")
    texts = [(b.text, b.section, bool(b.code)) for b in doc.blocks]
    assert texts[0] == ("Install the tool with pip:\npip install backup-tool", ("Installing",), True)
    assert ("$ backup --version\nbackup 2.1", ("Installing",), True) in texts
    # "+++" is a third underline style: a section inside "Installing", as reStructuredText orders them.
    assert texts[-1][1] == ("Installing", "Restoring")
    assert texts[-1][0].startswith("A restore reads the catalogue first")
    joined = "\n".join(t for t, _, _ in texts)
    for absent in ("root:", "Injected", "toctree", "usage"):
        assert absent not in joined


RST_STRUCTURE = """|build| |coverage|

.. |build| image:: https://example.org/build.svg
   :alt: build status
.. |coverage| image:: https://example.org/cov.svg
   :alt: coverage

=========
 安装指南
=========

系统要求：

1. Python 3.9 或更高版本
2. 至少 2 GB 内存

=====  ==========
平台   支持情况
=====  ==========
Linux  完全支持
macOS  部分支持
=====  ==========

:作者: 张伟
:版本: 2.1

.. note::

   升级前请先备份数据。
"""


def test_restructured_text_lists_tables_and_fields_read_as_in_markdown(tmp_path: Path) -> None:
    """A badge line (substituted images) says nothing; a list keeps its numbers, a table's rows are named by
    its header, a field list is "name: value" lines, an admonition's text is a paragraph."""
    doc = read(write(tmp_path / "guide.rst", RST_STRUCTURE.encode("gb18030")))
    assert (doc.title, doc.encoding) == ("安装指南", "gb18030")
    assert [b.text for b in doc.blocks] == [
        "系统要求：\n1. Python 3.9 或更高版本\n2. 至少 2 GB 内存",  # a lead-in joined with its list
        "平台：Linux | 支持情况：完全支持\n平台：macOS | 支持情况：部分支持",
        "作者: 张伟\n版本: 2.1",
        "升级前请先备份数据。",
    ]


TITLEPAGE = '<div class="titlepage"><div><h{n} class="title"><a id="{id}"/>{text}</h{n}></div></div>'
DOCBOOK = f"""<html><head><title>第 2 章 软件包管理</title></head><body>
<div class="navheader"><a href="ch01.html">上一页</a> <a href="ch03.html">下一页</a></div>
<div class="chapter">{TITLEPAGE.format(n=1, id="ch02", text="第 2 章 软件包管理")}
<div class="section">{TITLEPAGE.format(n=2, id="_basics", text="2.1. 基础操作")}
<p>不要使用 “<code class="literal">dpkg -i <span class="emphasis"><em>random_package</em></span></code>”
安装任何软件包。软件包管理会检查依赖关系。</p>
<p>升级前先运行 “<code class="literal">apt
update</code>” 获取档案库元数据，再运行升级命令。</p>
</div>
<div class="section">{TITLEPAGE.format(n=2, id="_recovery", text="2.2. 恢复系统")}
<p>如果系统损坏，可以从救援盘启动，挂载根文件系统，然后重新安装出问题的软件包。</p>
</div></div>
<div class="navfooter"><a href="index.html">起始页</a></div>
</body></html>"""


def test_html_without_a_main_element_keeps_its_sections_and_inline_code(tmp_path: Path) -> None:
    """A generated manual (DocBook) marks no main content and puts a link target in each heading: its
    headings are still sections; inline code that breaks a line or holds markup stays in its sentence."""
    doc = read(write(tmp_path / "ch02.html", DOCBOOK.encode()))
    assert doc.title == "第 2 章 软件包管理"
    assert [(b.text, b.section) for b in doc.blocks] == [
        ("不要使用 “dpkg -i random_package”安装任何软件包。软件包管理会检查依赖关系。", ("2.1. 基础操作",)),
        ("升级前先运行 “apt update” 获取档案库元数据，再运行升级命令。", ("2.1. 基础操作",)),
        ("如果系统损坏，可以从救援盘启动，挂载根文件系统，然后重新安装出问题的软件包。", ("2.2. 恢复系统",)),
    ]


def test_a_table_of_contents_is_left_out_but_a_list_a_sentence_introduces_is_kept(tmp_path: Path) -> None:
    toc = "# Guide\n\n**Contents**\n\n- 1. Install:\n- 2. Upgrade:\n\n## 1. Install\n\nRun the installer.\n\n"
    toc += "## 2. Upgrade\n\nRun the installer again.\n"
    doc = read(write(tmp_path / "guide.md", toc.encode()))
    assert [b.text for b in doc.blocks] == ["Run the installer.", "Run the installer again."]
    parts = "# Tool\n\nThe tool has two parts:\n\n- Parser\n- Printer\n\n"
    parts += "## Parser\n\nIt reads.\n\n## Printer\n\nIt writes.\n"
    doc = read(write(tmp_path / "tool.md", parts.encode()))
    assert doc.blocks[0].text == "The tool has two parts:\nParser\nPrinter"


def test_a_sentence_that_refers_forward_introduces_the_list_after_it(tmp_path: Path) -> None:
    """ "You can do the following tasks." introduces its list as a colon would ("下面有一些提醒。" too); a
    sentence that only mentions "以下" in another sense ("5岁以下"), or precedes prose, introduces nothing."""
    md = (
        "# Accounts\n\nWith this account you can do the following tasks.\n\n"
        "- read any file\n- set any password\n\n"
        "下面有一些提醒。\n\n- 不要共享密码\n- 定期备份\n\n"
        "5岁以下儿童免费。\n\n- 门票 10 元\n- 年票 100 元\n\n"
        "The tool is described below.\n\nIt reads files.\n"
    )
    doc = read(write(tmp_path / "accounts.md", md.encode()))
    assert [b.text for b in doc.blocks] == [
        "With this account you can do the following tasks.\nread any file\nset any password",
        "下面有一些提醒。\n不要共享密码\n定期备份",
        "5岁以下儿童免费。",
        "门票 10 元\n年票 100 元",
        "The tool is described below.",
        "It reads files.",
    ]
