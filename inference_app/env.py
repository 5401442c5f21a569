"""Typed parsing of the environment, failing fast with a one-line reason per bad value.

Settings read every variable through an :class:`Env`. A bad value does not raise at once: it is
recorded, a safe placeholder is returned, and :meth:`Env.raise_for_errors` reports every problem
together, so an operator fixes them in one go instead of one restart each.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

Number = TypeVar("Number", int, float)

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ConfigError(Exception):
    """One or more environment variables hold values the application cannot use."""


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed DATABASE_URL, ready to become a Django ``DATABASES`` entry."""

    engine: str
    name: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: str = ""
    options: tuple[tuple[str, str], ...] = ()

    def as_django(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "ENGINE": self.engine,
            "NAME": self.name,
            "USER": self.user,
            "PASSWORD": self.password,
            "HOST": self.host,
            "PORT": self.port,
            "OPTIONS": dict(self.options),
        }
        if self.engine == "django.db.backends.postgresql":
            config["CONN_MAX_AGE"] = 60
            config["CONN_HEALTH_CHECKS"] = True
        if self.engine == "django.db.backends.sqlite3":
            config["OPTIONS"] = {**SQLITE_OPTIONS, **config["OPTIONS"]}
        return config


SQLITE_OPTIONS: dict[str, Any] = {
    # The web process and the worker write to one file. A transaction that reads first (SQLite's
    # default, DEFERRED) and then writes while the other process writes fails at once with "database
    # is locked": the wait is skipped to avoid a deadlock. IMMEDIATE takes the write lock when the
    # transaction begins, so a writer waits up to ``timeout`` seconds for the other instead.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    # Readers never wait for the writer, and a commit needs one fsync less (the usual WAL settings).
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def parse_database_url(value: str) -> DatabaseUrl:
    """Parse ``postgres://user:pass@host:port/name`` or ``sqlite:///path/to/file``."""
    parts = urlsplit(value)
    if parts.scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ValueError(
                "a PostgreSQL URL needs a database name, as in postgres://user@host:5432/switchboard"
            )
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port ({exc})") from None
        options = tuple((key, values[-1]) for key, values in parse_qs(parts.query).items())
        return DatabaseUrl(
            engine="django.db.backends.postgresql",
            name=name,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            host=parts.hostname or "",
            port=str(port or ""),
            options=options,
        )
    if parts.scheme == "sqlite":
        # sqlite:///relative.db is relative, sqlite:////abs/path.db absolute, sqlite://:memory: in memory.
        path = parts.netloc + parts.path if parts.netloc == ":memory:" else parts.path[1:]
        if not path:
            raise ValueError("a SQLite URL needs a file, as in sqlite:////var/lib/switchboard/db.sqlite3")
        return DatabaseUrl(engine="django.db.backends.sqlite3", name=path)
    raise ValueError("expected postgres://user:password@host:port/name or sqlite:////absolute/path.sqlite3")


class Env:
    """Reads typed values from a mapping (``os.environ`` by default), collecting errors."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self.errors: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _fail(self, name: str, value: str, reason: str) -> None:
        shown = value if len(value) <= 60 else value[:57] + "..."
        self.errors.append(f"{name}={shown!r}: {reason}")

    def is_set(self, name: str) -> bool:
        return self._raw(name) is not None

    def text(self, name: str, default: str) -> str:
        raw = self._raw(name)
        return default if raw is None else raw

    def optional_text(self, name: str) -> str | None:
        return self._raw(name)

    def required_text(self, name: str, reason: str) -> str:
        raw = self._raw(name)
        if raw is None:
            self.errors.append(f"{name} is not set: {reason}")
            return ""
        return raw

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        word = raw.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        self._fail(name, raw, "expected one of true/false, yes/no, on/off, 1/0")
        return default

    def switch(self, name: str, default: str) -> str:
        """``auto``, ``on`` or ``off``; the boolean words (true/false, yes/no, 1/0) mean on and off."""
        raw = self._raw(name)
        if raw is None:
            return default
        word = raw.lower()
        if word == "auto":
            return "auto"
        if word in TRUE_WORDS:
            return "on"
        if word in FALSE_WORDS:
            return "off"
        self._fail(name, raw, "expected auto, on or off")
        return default

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self._fail(name, raw, "expected a whole number")
            return default
        return self._in_range(name, raw, value, default, minimum, maximum)

    def number(
        self, name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
    ) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self._fail(name, raw, "expected a number")
            return default
        if value != value or value in (float("inf"), float("-inf")):
            self._fail(name, raw, "expected a finite number")
            return default
        return self._in_range(name, raw, value, default, minimum, maximum)

    def _in_range(
        self,
        name: str,
        raw: str,
        value: Number,
        default: Number,
        minimum: Number | None,
        maximum: Number | None,
    ) -> Number:
        if minimum is not None and value < minimum:
            self._fail(name, raw, f"must be at least {minimum}")
            return default
        if maximum is not None and value > maximum:
            self._fail(name, raw, f"must be at most {maximum}")
            return default
        return value

    def choice(self, name: str, default: str, choices: Iterable[str]) -> str:
        allowed = tuple(choices)
        raw = self._raw(name)
        if raw is None:
            return default
        canonical = {choice.lower(): choice for choice in allowed}
        if raw.lower() not in canonical:
            self._fail(name, raw, f"expected one of {', '.join(allowed)}")
            return default
        return canonical[raw.lower()]

    def csv_list(self, name: str, default: Iterable[str]) -> list[str]:
        raw = self._raw(name)
        if raw is None:
            return list(default)
        return [item.strip() for item in raw.split(",") if item.strip()]

    def optional_url(self, name: str, *, schemes: Iterable[str]) -> str | None:
        """The URL in ``name``, or None when unset (or bad: the error is recorded)."""
        allowed = tuple(schemes)
        raw = self._raw(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in allowed:
            self._fail(name, raw, f"expected a URL starting with {' or '.join(s + '://' for s in allowed)}")
            return None
        needs_host = parts.scheme not in {"filesystem", "memory", "sqlite"}
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            self._fail(name, raw, "the port is not a number between 0 and 65535")
            return None
        if needs_host and not parts.hostname:
            self._fail(name, raw, "the URL has no host")
            return None
        return raw

    def url(self, name: str, default: str, *, schemes: Iterable[str]) -> str:
        return self.optional_url(name, schemes=schemes) or default

    def database(self, name: str, default: str) -> DatabaseUrl:
        raw = self._raw(name) or default
        try:
            return parse_database_url(raw)
        except ValueError as exc:
            self._fail(name, raw, str(exc))
            return parse_database_url(default)

    def path(self, name: str, default: Path) -> Path:
        raw = self._raw(name)
        return default if raw is None else Path(raw).expanduser().resolve()

    def raise_for_errors(self) -> None:
        if self.errors:
            raise ConfigError("; ".join(self.errors))


def read_dotenv(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines from a ``.env`` file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values
