"""Parse source files into ``Document`` records.

Two formats:

* Article files as delivered (``documents/*.txt``): YAML front matter between ``---`` lines, then an HTML
  body. One paragraph per ``<p>``; entities are unescaped and tags dropped by a real HTML parser. The
  source line (``<p class="em_media">（文章来源：…）</p>``) and the source URL after the HTML become one
  last paragraph, so a question about the source is answerable. Navigation links are dropped.
* Plain ``.md``/``.txt`` files without HTML paragraphs: paragraphs are split on blank lines; an optional
  front matter or a leading ``# heading`` gives the title.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

import yaml
from bs4 import BeautifulSoup

from index.errors import DocumentError, EmptyCorpusError
from index.types import Block, Document

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_HAS_P = re.compile(r"<p[\s>]", re.IGNORECASE)
_URL_LINE = re.compile(r"^<?(https?://[^\s<>]+)>?$")
_NAV_LINK = re.compile(r"^\[[^\]]*\]\([^)]*\)")
_SOURCE_HINT = re.compile(r"来源|source", re.IGNORECASE)
_WS = re.compile(r"\s+")


def document_id_for(path: Path, root: Path) -> str:
    """Stable id from the path relative to the corpus root, without suffix (``:`` is reserved)."""
    rel = path.relative_to(root).with_suffix("")
    return "/".join(rel.parts).replace(":", "_")


def clean(text: str) -> str:
    """Collapse runs of whitespace; strip the ends."""
    return _WS.sub(" ", text).strip()


def _as_tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return tuple(str(value).split())


def _split_front_matter(raw: str, path: Path) -> tuple[dict[str, object], str]:
    match = _FRONT_MATTER.match(raw)
    if not match:
        return {}, raw
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise DocumentError(f"{path}: the front matter is not valid YAML ({exc})") from exc
    if not isinstance(meta, dict):
        raise DocumentError(f"{path}: the front matter must be a YAML mapping, got {type(meta).__name__}")
    return meta, raw[match.end() :]


def _html_paragraphs(body: str) -> tuple[list[str], str | None]:
    # The lines after the last </p> are markdown-ish (``<http://…>`` autolinks, ``[text](url)`` links),
    # which an HTML parser would swallow as tags: read them as plain lines.
    cut = body.lower().rfind("</p>")
    html, tail = (body[: cut + 4], body[cut + 4 :]) if cut >= 0 else (body, "")
    soup = BeautifulSoup(html, "html.parser")
    paragraphs: list[str] = []
    source_index: int | None = None
    for p in soup.find_all("p"):
        text = clean(p.get_text(" "))
        if not text:
            continue
        classes: list[str] = list(p.get("class") or [])
        if "em_media" in classes or (_SOURCE_HINT.search(text) and len(text) < 40):
            source_index = len(paragraphs)
        paragraphs.append(text)
    source_url = None
    for line in tail.splitlines():
        line = line.strip()
        m = _URL_LINE.match(line)
        if m:
            source_url = source_url or m.group(1)
        elif line and not _NAV_LINK.match(line):
            paragraphs.append(clean(BeautifulSoup(line, "html.parser").get_text(" ")))
    if source_url:
        if source_index is not None:
            paragraphs[source_index] = f"{paragraphs[source_index]} {source_url}"
        else:
            paragraphs.append(f"Source: {source_url}")
    return [p for p in paragraphs if p], source_url


def _plain_paragraphs(body: str) -> tuple[list[str], str | None]:
    blocks = re.split(r"\n[ \t]*\n", body.replace("\r\n", "\n"))
    return [clean(b) for b in blocks if clean(b)], None


def parse_document(path: Path, root: Path | None = None) -> Document:
    """Parse one file. Raises ``DocumentError`` when it cannot be read or parsed."""
    root = root or path.parent
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{path}: cannot read it as UTF-8 text ({exc})") from exc
    meta, body = _split_front_matter(raw, path)
    if _HAS_P.search(body):
        paragraphs, source_url = _html_paragraphs(body)
    else:
        paragraphs, source_url = _plain_paragraphs(body)
    title = str(meta.get("title") or "").strip()
    if not title and paragraphs and paragraphs[0].startswith("#"):
        title = paragraphs.pop(0).lstrip("#").strip()
    date = meta.get("date")
    return Document(
        id=document_id_for(path, root),
        title=title or path.stem,
        blocks=tuple(Block(p) for p in paragraphs),
        path=str(path),
        format="article" if _HAS_P.search(body) else "text",
        encoding="utf-8",
        date=str(date) if date is not None else None,
        categories=_as_tuple(meta.get("categories")),
        tags=_as_tuple(meta.get("tags")),
        source_url=source_url,
    )


def document_files(root: Path) -> list[Path]:
    """Every parseable file under ``root``, sorted, hidden files skipped."""
    if not root.is_dir():
        raise EmptyCorpusError(f"documents folder {root} does not exist; create it and add article files")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def load_documents(root: Path) -> list[Document]:
    """Parse every file of the corpus; refuse an empty corpus with a clear message."""
    files = document_files(root)
    docs = [parse_document(p, root) for p in files]
    docs = [d for d in docs if d.blocks]
    if not docs:
        raise EmptyCorpusError(
            f"documents folder {root} holds no paragraphs to index "
            f"(looked for {', '.join(SUFFIXES)} files); add article files and run `citeqa build`"
        )
    return docs


def corpus_hash(files: Iterable[Path], root: Path) -> str:
    """Hash of the corpus content and file names: an index is stale when this changes."""
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(root)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()
