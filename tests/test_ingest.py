"""Incremental ingest: only new and changed text is embedded, counted by the texts the encoder saw."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from index.ingest import (
    COMPACT_SEGMENTS,
    Progress,
    embedding_text,
    index_status,
    passage_embedding_text,
    update_index,
)
from index.store import SEGMENTS, load_index, read_manifest
from tests.conftest import SEED_DOCS
from tests.fakes import HashingEncoder

PARAGRAPHS = [
    "The ferry leaves the harbour at seven. It returns at noon.",
    "Tickets cost six euros. Children travel free.",
    "The lighthouse was built in 1874. It is 34 metres tall.",
]


class CountingEncoder(HashingEncoder):
    """Records every text it embeds."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.seen: list[str] = []

    def encode_passages(self, texts):  # type: ignore[no-untyped-def]
        self.seen.extend(texts)
        return super().encode_passages(texts)


def write(folder: Path, name: str, paragraphs: list[str]) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


def texts_of(paragraphs: list[str]) -> set[str]:
    """What embedding a plain-text document of these paragraphs costs: each paragraph and each sentence."""
    out = set()
    for p in paragraphs:
        out.add(p)
        out.update(s.strip() + ("" if s.strip().endswith(".") else ".") for s in p.split(". ") if s.strip())
    return {embedding_text(t) for t in out}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    write(docs, "ferry.txt", PARAGRAPHS)
    write(docs, "notes/market.txt", ["The market opens on Saturdays. It sells fish and bread."])
    return docs


def update(folder: Path, enc: HashingEncoder, **kwargs: object):  # type: ignore[no-untyped-def]
    return update_index(folder, folder.parent / "index", enc, **kwargs)  # type: ignore[arg-type]


def test_a_second_update_with_nothing_changed_embeds_and_commits_nothing(folder: Path) -> None:
    enc = CountingEncoder()
    first = update(folder, enc)
    assert first.added == ("ferry", "notes/market") and first.embedded == len(set(enc.seen))
    enc.seen.clear()
    again = update(folder, enc)
    assert enc.seen == [] and again.embedded == 0 and not again.changed
    assert again.manifest.generation == first.manifest.generation


def test_touching_a_file_without_changing_it_reembeds_nothing(folder: Path) -> None:
    enc = CountingEncoder()
    update(folder, enc)
    enc.seen.clear()
    stat = (folder / "ferry.txt").stat()
    os.utime(folder / "ferry.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    report = update(folder, enc)
    assert enc.seen == [] and report.unchanged == 2 and not report.changed
    assert index_status(
        folder, folder.parent / "index", fingerprint=enc.fingerprint, max_tokens=480
    ).state == ("fresh")


def test_adding_a_file_embeds_that_file_only(folder: Path) -> None:
    enc = CountingEncoder()
    update(folder, enc)
    enc.seen.clear()
    new = ["Bicycles can be hired at the station. They cost ten euros a day."]
    write(folder, "bikes.txt", new)
    report = update(folder, enc)
    assert report.added == ("bikes",) and report.unchanged == 2
    assert set(enc.seen) == texts_of(new)
    saved = load_index(folder.parent / "index", model=enc.name, fingerprint=enc.fingerprint)
    assert [p.id for p in saved.passages] == ["bikes:1", "ferry:1", "ferry:2", "ferry:3", "notes/market:1"]


def test_changing_one_paragraph_embeds_that_paragraph_and_its_sentences_only(folder: Path) -> None:
    enc = CountingEncoder()
    update(folder, enc)
    enc.seen.clear()
    changed = [PARAGRAPHS[0], "Tickets cost seven euros. Children travel free.", PARAGRAPHS[2]]
    write(folder, "ferry.txt", changed)
    report = update(folder, enc)
    assert report.updated == ("ferry",) and report.added == () and report.removed == ()
    # "Children travel free." is a sentence the index already holds: reused, not embedded again.
    assert set(enc.seen) == {changed[1], "Tickets cost seven euros."}
    assert report.reused == len(texts_of(changed)) - 2
    saved = load_index(folder.parent / "index", model=enc.name, fingerprint=enc.fingerprint)
    assert saved.passages[saved.row_of["ferry:2"]].text == changed[1]


def test_a_paragraph_moved_to_another_file_is_not_embedded_again(folder: Path) -> None:
    enc = CountingEncoder()
    update(folder, enc)
    enc.seen.clear()
    write(folder, "ferry.txt", PARAGRAPHS[:2])
    write(folder, "lighthouse.txt", [PARAGRAPHS[2]])
    report = update(folder, enc)
    assert report.added == ("lighthouse",) and report.updated == ("ferry",)
    assert enc.seen == []


def test_removing_a_file_drops_its_passages(folder: Path) -> None:
    enc = CountingEncoder()
    update(folder, enc)
    (folder / "notes" / "market.txt").unlink()
    report = update(folder, enc)
    assert report.removed == ("notes/market",) and report.embedded == 0
    saved = load_index(folder.parent / "index", model=enc.name, fingerprint=enc.fingerprint)
    assert {p.document_id for p in saved.passages} == {"ferry"}


def test_unreadable_files_are_skipped_with_their_reason_and_never_stop_the_update(folder: Path) -> None:
    enc = CountingEncoder()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "photo.bmp").write_bytes(b"BM\x00\x01")
    write(folder, "ferry.md", ["A second file with the id 'ferry'."])
    report = update(folder, enc)
    assert {d.id for d in report.manifest.documents} == {"ferry", "notes/market"}
    codes = {s.path: s.code for s in report.skipped}
    assert codes == {"empty.txt": "empty", "photo.bmp": "unsupported_type", "ferry.txt": "duplicate_id"} or (
        codes == {"empty.txt": "empty", "photo.bmp": "unsupported_type", "ferry.md": "duplicate_id"}
    )
    reasons = {s.path: s.reason for s in report.skipped}
    assert "unsupported file type .bmp" in reasons["photo.bmp"]
    # Unchanged skipped files are remembered: the next update has nothing to do.
    again = update(folder, enc)
    assert not again.changed and again.manifest.generation == report.manifest.generation


def test_a_document_that_becomes_unreadable_leaves_the_index(folder: Path) -> None:
    enc = CountingEncoder()
    update(folder, enc)
    (folder / "notes" / "market.txt").write_bytes(b"")
    report = update(folder, enc)
    assert {d.id for d in report.manifest.documents} == {"ferry"}
    assert [s.path for s in report.skipped] == ["notes/market.txt"]


def test_long_updates_commit_checkpoints_and_later_segments_are_compacted(folder: Path) -> None:
    enc = CountingEncoder()
    for i in range(6):
        write(folder, f"extra/{i}.txt", [f"Extra document number {i} talks about topic {i}."])
    events: list[Progress] = []
    report = update(folder, enc, checkpoint_seconds=0.0, group_texts=4, progress=events.append)
    manifest = report.manifest
    assert manifest.generation > 2  # several commits in one update
    assert len(manifest.documents) == 8
    embeds = [e for e in events if e.stage == "embed"]
    assert embeds[-1].done == embeds[-1].total == report.embedded
    # Many small updates: the number of segments stays bounded by compaction.
    for i in range(COMPACT_SEGMENTS + 4):
        write(folder, f"more/{i}.txt", [f"More text {i}, about something else entirely {i}."])
        report = update(folder, enc)
    manifest = read_manifest(folder.parent / "index")
    assert len(manifest.segments) <= COMPACT_SEGMENTS
    assert len(manifest.documents) == 8 + COMPACT_SEGMENTS + 4
    on_disk = {p.name for p in (folder.parent / "index" / SEGMENTS).iterdir()}
    assert on_disk <= {s.name for s in manifest.segments} | set(manifest.previous_segments)


def test_another_model_reembeds_everything_and_other_chunking_reuses_vectors(folder: Path) -> None:
    enc = CountingEncoder()
    first = update(folder, enc)
    other = CountingEncoder(name="test/other")
    report = update(folder, other)
    assert "built with model 'test/hashing'" in report.reason
    assert set(other.seen) == set(enc.seen) and report.embedded == first.embedded
    other.seen.clear()
    report = update(folder, other, max_tokens=200)
    assert "chunking changed" in report.reason and other.seen == []  # same texts, same vectors


def test_a_slow_file_is_announced_with_its_size_and_an_estimate(folder: Path) -> None:
    enc = CountingEncoder()
    big = [f"Paragraph {i} of a long report about harbours and ferries and tides." for i in range(1500)]
    write(folder, "big.txt", big)
    report = update(folder, enc)
    (warning,) = report.warnings
    assert warning.startswith("big.txt (0.1 MB, 1,500 passages) will take about ") and "to embed" in warning


def test_sections_are_embedded_with_their_text() -> None:
    from index.types import Passage

    p = Passage("d:1", "d", "T", 1, "It converts DC to AC.", 0, 21, section=("Parts", "Inverter"))
    assert passage_embedding_text(p) == "Parts / Inverter\nIt converts DC to AC."


def test_the_seed_index_is_reused_by_a_copy_of_the_folder(tmp_path: Path) -> None:
    """A fresh index of the seed costs every text once; the same folder again costs nothing."""
    enc = CountingEncoder()
    report = update_index(SEED_DOCS, tmp_path / "index", enc)
    assert report.passages == 17 and len(enc.seen) == len(set(enc.seen)) == report.embedded


def test_a_code_block_is_indexed_as_one_sentence_and_its_span_is_saved(folder: Path) -> None:
    (folder / "ci.md").write_text(
        "# CI\n\nAdd Clippy to Travis CI like this:\n\n```yaml\nlanguage: rust\nrust:\n  - stable\n```\n",
        encoding="utf-8",
    )
    enc = CountingEncoder()
    update(folder, enc)
    saved = load_index(folder.parent / "index", model=enc.name, fingerprint=enc.fingerprint)
    row = saved.row_of["ci:1"]
    passage = saved.passages[row]
    code = "language: rust\nrust:\n  - stable"
    assert passage.code == ((passage.text.index(code), len(passage.text)),)  # read back from the segment
    sentences = [passage.text[s.start : s.end] for s in saved.sentences if s.passage_row == row]
    assert sentences == ["Add Clippy to Travis CI like this:", code]
    assert "rust:" not in enc.seen
