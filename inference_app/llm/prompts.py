"""Versioned prompt files (``prompts/<name>-v<N>.txt``), filled in with :class:`string.Template`.

A prompt's version is its file name plus a short hash of its content, so any edit to a prompt shows
in the audit trail and the accounting as a new version.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from string import Template

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"


@dataclass(frozen=True)
class Prompt:
    name: str  # e.g. "classify-v1"
    version: str  # e.g. "classify-v1+3fa2c1d0"
    system: Template
    user: Template

    def messages(self, **values: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system.substitute(values).strip()},
            {"role": "user", "content": self.user.substitute(values).strip()},
        ]


def prompt_names(prefix: str = "") -> list[str]:
    """The prompt files' names (``classify-v1``, ...) that start with ``prefix``, sorted."""
    return sorted(path.stem for path in PROMPT_DIR.glob(f"{prefix}*.txt"))


@functools.cache
def load_prompt(name: str) -> Prompt:
    path = PROMPT_DIR / f"{name}.txt"
    raw = path.read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in raw.splitlines():
        if line.startswith("=== "):
            current = sections.setdefault(line[4:].strip(), [])
        elif current is not None and not line.startswith("#"):
            current.append(line)
    if set(sections) != {"system", "user"}:
        raise ValueError(f"{path}: needs exactly '=== system' and '=== user' sections")
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return Prompt(
        name=name,
        version=f"{name}+{digest}",
        system=Template("\n".join(sections["system"])),
        user=Template("\n".join(sections["user"])),
    )
