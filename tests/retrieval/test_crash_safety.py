"""A writer killed with SIGKILL in the middle of a save must leave the previous index loadable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from retrieval.vector_index import VectorIndex

REPO = Path(__file__).resolve().parents[2]

WRITER = """
import os, sys, time
from pathlib import Path
import numpy as np
from retrieval.vector_index import VectorIndex

path, mode = Path(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
vectors = rng.standard_normal((40_000, 128))  # a ~20 MB flat index
index = VectorIndex.build(np.arange(40_000), vectors, ivf_threshold=10**9)
if mode == "stall":
    def stall(fd):  # a slow disk: the kill lands after the bytes are written, before the rename
        print("writing", flush=True)
        time.sleep(60)
    os.fsync = stall
    index.save(path, meta={"which": "new"})
else:
    print("writing", flush=True)
    while True:
        index.save(path, meta={"which": "new"})
"""


def _old_index(path: Path) -> None:
    vectors = np.random.default_rng(1).standard_normal((100, 128))
    VectorIndex.build(np.arange(100), vectors).save(path, meta={"which": "old"})


def _start_writer(path: Path, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), mode], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    return proc


def test_sigkill_before_rename_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "vectors.idx"
    _old_index(path)
    proc = _start_writer(path, "stall")
    tmp = path.with_name(f"{path.name}.tmp-{proc.pid}")
    try:
        assert tmp.stat().st_size > 20_000_000  # the new index really was being written
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    index, header = VectorIndex.load(path)
    assert header["meta"] == {"which": "old"} and len(index) == 100
    assert tmp.exists()  # the dead writer's leftover...
    _old_index(path)
    assert not tmp.exists()  # ...is cleaned up by the next save


def test_sigkill_at_random_moments_never_leaves_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "vectors.idx"
    _old_index(path)
    rng = random.Random(7)
    for _ in range(4):
        proc = _start_writer(path, "loop")
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        index, header = VectorIndex.load(path)  # raises IndexCorrupt on a torn file
        assert (header["meta"]["which"], len(index)) in {("old", 100), ("new", 40_000)}
