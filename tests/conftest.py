from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.pipeline import Pipeline, encoder_for
from service.settings import Settings
from tests.llm_server import ScriptedLLM

REPO = Path(__file__).resolve().parents[1]
SEED_DOCS = REPO / "documents"
# The seed eval set's corpus mixes the seed article with an English document written for it (not part of
# the delivered corpus): a folder holding both, made once per test session.
SEED_EXTRA = REPO / "eval" / "seed_documents"
MIXED_SEED_DOCS = Path(tempfile.mkdtemp(prefix="citeqa-mixed-seed-"))
for _doc in (*SEED_DOCS.glob("*.txt"), *SEED_EXTRA.glob("*.txt")):
    shutil.copy2(_doc, MIXED_SEED_DOCS / _doc.name)
atexit.register(shutil.rmtree, MIXED_SEED_DOCS, True)
DICTIONARIES = REPO / ".citeqa" / "dictionaries"  # the parsed CC-CEDICT (index.translate), built on first use

# A small article that tests add to a copy of the corpus while it is being served.
NEW_ARTICLE = """---
layout: post
title: "Test article"
date: 2024-05-01 10:00:00 +0800
---
<p>The lighthouse keeper counted 312 ships in the winter of the storm.</p>
<p>Zebra crossings were painted blue in the small harbour town.</p>
"""
SEED_ID = "000_df1882c45adb6c58"


def make_settings(tmp: Path, **overrides: object) -> Settings:
    """Settings for a test: the repository's model cache, an index of the test's own."""
    values: dict[str, object] = {
        "documents_dir": SEED_DOCS,
        "data_dir": REPO / ".citeqa",
        "index_dir": tmp / "index",
        "watch_interval": 0,  # tests that want the folder watcher turn it on
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("seed"))


@pytest.fixture(scope="session")
def encoder(seed_settings: Settings):  # type: ignore[no-untyped-def]
    """The real default model, loaded once for the session."""
    return encoder_for(seed_settings)


@pytest.fixture(scope="session")
def pipeline(seed_settings: Settings, encoder) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline.load(seed_settings, encoder=encoder)


@pytest.fixture(scope="session")
def mixed_pipeline(tmp_path_factory: pytest.TempPathFactory, encoder) -> Pipeline:  # type: ignore[no-untyped-def]
    """The real pipeline over the mixed seed corpus (``MIXED_SEED_DOCS``), for the seed gates."""
    settings = make_settings(tmp_path_factory.mktemp("mixed"), documents_dir=MIXED_SEED_DOCS)
    return Pipeline.load(settings, encoder=encoder)


@pytest.fixture(scope="session")
def client(seed_settings: Settings, pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(seed_settings, pipeline)) as c:
        yield c


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    """A private copy of the seed corpus that a test may change."""
    target = tmp_path / "documents"
    shutil.copytree(SEED_DOCS, target)
    return target


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    server = ScriptedLLM().start()
    yield server
    server.stop()
