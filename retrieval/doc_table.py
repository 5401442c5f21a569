"""Per-document metadata used to filter searches: category, team and resolution time.

Kept as parallel NumPy arrays sorted by id (category and team interned as small ints) rather than a dict
of objects: ~24 bytes per document, so 1M tickets cost ~24 MB, and filters are vectorised masks.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval._arrays import as_ids, last_occurrence, sorted_unique
from retrieval._storage import read_container, write_container
from retrieval.errors import IndexCorrupt

FORMAT_VERSION = 1
MAGIC = b"SWBDOC01"
NONE_CODE = -1


class _Interner:
    """Bidirectional str <-> small int mapping; codes are never reused, so stored codes stay valid."""

    def __init__(self, names: Sequence[str] = ()) -> None:
        self.names: list[str] = list(names)
        self.codes: dict[str, int] = {name: code for code, name in enumerate(self.names)}

    def code(self, name: str | None) -> int:
        if name is None:
            return NONE_CODE
        code = self.codes.get(name)
        if code is None:
            code = len(self.names)
            self.names.append(name)
            self.codes[name] = code
        return code

    def name(self, code: int) -> str | None:
        return None if code == NONE_CODE else self.names[code]


class DocTable:
    """Sorted-by-id metadata arrays with vectorised upsert, remove, lookup and filtering."""

    def __init__(self) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self.category = np.zeros(0, dtype=np.int32)
        self.team = np.zeros(0, dtype=np.int32)
        self.resolved_at = np.zeros(0, dtype=np.float64)
        self._categories = _Interner()
        self._teams = _Interner()

    def __len__(self) -> int:
        return int(self.ids.size)

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, int | np.integer):
            return False
        return bool(self.contains(np.array([doc_id]))[0])

    def _locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Insertion points of ``ids`` and whether each is present."""
        pos = np.searchsorted(self.ids, ids)
        safe = np.minimum(pos, max(self.ids.size - 1, 0))
        present = (
            (pos < self.ids.size) & (self.ids[safe] == ids) if self.ids.size else np.zeros(ids.size, bool)
        )
        return pos, present

    def contains(self, ids: Any) -> np.ndarray:
        return self._locate(as_ids(ids))[1]

    def upsert(
        self,
        ids: Any,
        categories: Sequence[str | None],
        teams: Sequence[str | None],
        resolved_at: Sequence[float | None],
    ) -> None:
        """Insert or replace rows; later duplicates in one call win."""
        ids_arr = as_ids(ids)
        if not (ids_arr.size == len(categories) == len(teams) == len(resolved_at)):
            raise ValueError("ids, categories, teams and resolved_at must have the same length")
        if ids_arr.size == 0:
            return
        cat = np.fromiter((self._categories.code(c) for c in categories), dtype=np.int32, count=ids_arr.size)
        team = np.fromiter((self._teams.code(t) for t in teams), dtype=np.int32, count=ids_arr.size)
        resolved = np.fromiter(
            (math.nan if r is None else float(r) for r in resolved_at), dtype=np.float64, count=ids_arr.size
        )
        keep = last_occurrence(ids_arr)
        ids_arr, cat, team, resolved = ids_arr[keep], cat[keep], team[keep], resolved[keep]
        pos, present = self._locate(ids_arr)
        self.category[pos[present]] = cat[present]
        self.team[pos[present]] = team[present]
        self.resolved_at[pos[present]] = resolved[present]
        new = ~present
        at = pos[new]
        self.ids = np.insert(self.ids, at, ids_arr[new])
        self.category = np.insert(self.category, at, cat[new])
        self.team = np.insert(self.team, at, team[new])
        self.resolved_at = np.insert(self.resolved_at, at, resolved[new])

    def remove(self, ids: Any) -> int:
        ids_arr = sorted_unique(ids)
        pos, present = self._locate(ids_arr)
        at = pos[present]
        if at.size:
            self.ids = np.delete(self.ids, at)
            self.category = np.delete(self.category, at)
            self.team = np.delete(self.team, at)
            self.resolved_at = np.delete(self.resolved_at, at)
        return int(at.size)

    def describe(self, ids: Any) -> list[tuple[str | None, str | None]]:
        """``(category, team)`` per id; ``(None, None)`` for unknown ids."""
        ids_arr = as_ids(ids)
        pos, present = self._locate(ids_arr)
        out: list[tuple[str | None, str | None]] = []
        for p, ok in zip(pos.tolist(), present.tolist(), strict=True):
            if ok:
                out.append(
                    (self._categories.name(int(self.category[p])), self._teams.name(int(self.team[p])))
                )
            else:
                out.append((None, None))
        return out

    def filter_ids(
        self,
        *,
        category: str | None = None,
        team: str | None = None,
        resolved_after: float | None = None,
        exclude_ids: Iterable[int] | np.ndarray = (),
    ) -> np.ndarray | None:
        """Sorted ids passing every given filter, or None when no filter is given (everything passes).

        ``resolved_after`` keeps documents resolved strictly after that time; unresolved ones fail it.
        """
        exclude = sorted_unique(exclude_ids)
        if category is None and team is None and resolved_after is None and exclude.size == 0:
            return None
        mask = np.ones(self.ids.size, dtype=bool)
        if category is not None:
            code = self._categories.codes.get(category)
            if code is None:
                return np.zeros(0, dtype=np.int64)
            mask &= self.category == code
        if team is not None:
            code = self._teams.codes.get(team)
            if code is None:
                return np.zeros(0, dtype=np.int64)
            mask &= self.team == code
        if resolved_after is not None:
            with np.errstate(invalid="ignore"):
                mask &= self.resolved_at > float(resolved_after)
        if exclude.size:
            _, excluded = self._locate(exclude)
            mask[np.searchsorted(self.ids, exclude[excluded])] = False
        return self.ids[mask]

    # -- persistence ----------------------------------------------------------------------------------

    def save(self, path: Path, *, meta: dict[str, Any] | None = None) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, ids=self.ids, category=self.category, team=self.team, resolved_at=self.resolved_at)
        header = {
            "format_version": FORMAT_VERSION,
            "count": len(self),
            "categories": self._categories.names,
            "teams": self._teams.names,
            "meta": meta or {},
        }
        write_container(Path(path), MAGIC, header, buffer.getbuffer())

    @classmethod
    def load(cls, path: Path) -> tuple[DocTable, dict[str, Any]]:
        header, payload = read_container(Path(path), MAGIC, format_version=FORMAT_VERSION)
        table = cls()
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
                ids = npz["ids"].astype(np.int64)
                category = npz["category"].astype(np.int32)
                team = npz["team"].astype(np.int32)
                resolved = npz["resolved_at"].astype(np.float64)
            count = int(header["count"])
            table._categories = _Interner([str(name) for name in header["categories"]])
            table._teams = _Interner([str(name) for name in header["teams"]])
        except (KeyError, TypeError, ValueError, OSError, zipfile.BadZipFile) as exc:
            raise IndexCorrupt(f"{path}: cannot read document metadata: {exc}") from exc
        consistent = (
            ids.shape == category.shape == team.shape == resolved.shape == (count,)
            and bool(np.all(ids[1:] > ids[:-1]))
            and bool(np.all((category >= NONE_CODE) & (category < len(table._categories.names))))
            and bool(np.all((team >= NONE_CODE) & (team < len(table._teams.names))))
        )
        if not consistent:
            raise IndexCorrupt(f"{path}: inconsistent document metadata")
        table.ids, table.category, table.team, table.resolved_at = ids, category, team, resolved
        return table, header
