"""The typed environment parsers and the one-line failure on bad settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from inference_app.env import ConfigError, Env, parse_database_url, read_dotenv
from tests.conftest import embedded_env, run_manage


def test_unset_and_blank_values_fall_back_to_defaults() -> None:
    env = Env({"BLANK": "  "})
    assert env.text("BLANK", "fallback") == "fallback"
    assert env.integer("MISSING", 7) == 7
    assert env.boolean("MISSING", True) is True
    assert env.errors == []


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("yes", True), ("ON", True), ("false", False), ("0", False)]
)
def test_bool_words(raw: str, expected: bool) -> None:
    assert Env({"FLAG": raw}).boolean("FLAG", not expected) is expected


@pytest.mark.parametrize(
    ("method", "raw", "message"),
    [
        ("boolean", "maybe", "expected one of true/false"),
        ("integer", "ten", "expected a whole number"),
        ("integer", "-3", "must be at least 0"),
        ("number", "nan", "expected a finite number"),
    ],
)
def test_bad_values_are_collected_with_the_variable_name(method: str, raw: str, message: str) -> None:
    env = Env({"X": raw})
    if method == "integer":
        env.integer("X", 1, minimum=0)
    else:
        getattr(env, method)("X", 1.0 if method == "number" else False)
    assert len(env.errors) == 1
    assert env.errors[0].startswith(f"X={raw!r}: {message}")
    with pytest.raises(ConfigError, match=r"^X="):
        env.raise_for_errors()


def test_all_errors_are_reported_together() -> None:
    env = Env({"A": "x", "B": "y"})
    env.integer("A", 1)
    env.number("B", 1.0)
    with pytest.raises(ConfigError) as excinfo:
        env.raise_for_errors()
    assert "A='x'" in str(excinfo.value) and "B='y'" in str(excinfo.value)


def test_choice_and_url() -> None:
    env = Env({"BACKEND": "OpenAI", "BROKER": "ftp://host", "NOHOST": "redis://", "PORT": "redis://h:99999"})
    assert env.choice("BACKEND", "llamacpp", ("llamacpp", "openai")) == "openai"
    assert Env({"M": "all-minilm-l6-v2"}).choice("M", "x", ("All-MiniLM-L6-v2", "x")) == "All-MiniLM-L6-v2"
    assert env.optional_url("BROKER", schemes=("redis",)) is None
    assert env.url("NOHOST", "redis://fallback", schemes=("redis",)) == "redis://fallback"
    assert env.optional_url("PORT", schemes=("redis",)) is None
    assert env.optional_url("UNSET", schemes=("redis",)) is None
    assert [error.split("=")[0] for error in env.errors] == ["BROKER", "NOHOST", "PORT"]


def test_database_urls() -> None:
    pg = parse_database_url("postgres://app:s%40cret@db.internal:6432/switchboard?sslmode=require")
    assert pg.as_django()["ENGINE"] == "django.db.backends.postgresql"
    assert (pg.user, pg.password, pg.host, pg.port, pg.name) == (
        "app",
        "s@cret",
        "db.internal",
        "6432",
        "switchboard",
    )
    assert pg.as_django()["OPTIONS"] == {"sslmode": "require"}
    sqlite = parse_database_url("sqlite:////var/lib/switchboard/db.sqlite3")
    assert sqlite.name == "/var/lib/switchboard/db.sqlite3"
    for bad in ("nonsense", "mysql://x/y", "postgres://host/", "sqlite://"):
        with pytest.raises(ValueError):
            parse_database_url(bad)


def test_dotenv_reader(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nexport A=1\nB = 'two words'\nnot a line\nC=\"x=y\"\n")
    assert read_dotenv(dotenv) == {"A": "1", "B": "two words", "C": "x=y"}
    assert read_dotenv(tmp_path / "missing") == {}


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "nonsense", "DATABASE_URL='nonsense': expected postgres://"),
        ("CELERY_BROKER_URL", "redis//oops", "CELERY_BROKER_URL='redis//oops': expected a URL"),
        ("LLM_BACKEND", "gpt", "LLM_BACKEND='gpt': expected one of llamacpp, openai"),
        ("LLM_TIMEOUT_SECONDS", "soon", "LLM_TIMEOUT_SECONDS='soon': expected a number"),
        ("INJECTION_POLICY", "ignore", "INJECTION_POLICY='ignore': expected one of triage, clean_part"),
    ],
)
def test_bad_setting_stops_start_up_with_one_line(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    env = embedded_env(tmp_path)
    env[variable] = value
    result = run_manage("check", env=env, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Switchboard cannot start, bad configuration: ")
    assert expected in lines[0]


def test_openai_backend_needs_a_base_url(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    env["LLM_BACKEND"] = "openai"
    result = run_manage("check", env=env, timeout=60)
    assert result.returncode == 2
    assert "LLM_BASE_URL is not set" in result.stderr


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/switchboard"
    result = run_manage("migrate", env=env, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Switchboard cannot reach its database: ")


def test_env_example_documents_every_variable_the_settings_read() -> None:
    root = Path(__file__).resolve().parents[2]
    settings_source = (root / "inference_app" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_source))
    documented = set(re.findall(r"^([A-Z_]+)=", (root / ".env.example").read_text(), flags=re.MULTILINE))
    assert read, "found no env reads in settings.py"
    assert read - documented == set(), "variables missing from .env.example"
    assert documented - read == set(), ".env.example lists variables the settings never read"


def test_sqlite_writers_wait_for_each_other_instead_of_failing(
    tmp_path: Path, django_db_blocker: Any
) -> None:
    """The embedded default's web process and worker share one SQLite file. A transaction that reads and
    then writes while the other writes must wait for it, not fail with "database is locked" (it did
    with SQLite's default DEFERRED transactions: a batch create on the demo answered 500)."""
    import threading
    import time

    from django.db.utils import ConnectionHandler

    config = parse_database_url(f"sqlite:///{tmp_path / 'db.sqlite3'}").as_django()
    handler = ConnectionHandler({"default": config, "web": config, "worker": config})
    writing, failures = threading.Event(), []

    def worker_writes_for_half_a_second() -> None:
        worker = handler["worker"]  # made in this thread, as Django's connections are
        try:
            worker.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
            with worker.cursor() as cursor:
                cursor.execute("INSERT INTO tickets (subject) VALUES ('from the worker')")
            writing.set()
            time.sleep(0.5)
            worker.commit()
        except Exception as error:  # reported by the main thread
            failures.append(error)
            writing.set()
        finally:
            worker.close()

    with django_db_blocker.unblock():
        web = handler["web"]
        with web.cursor() as cursor:
            cursor.execute("CREATE TABLE tickets (subject TEXT)")
        thread = threading.Thread(target=worker_writes_for_half_a_second)
        thread.start()
        writing.wait(10)
        web.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
        with web.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM tickets")  # read, then write: the batch create's shape
            cursor.execute("INSERT INTO tickets (subject) VALUES ('from the web')")
        web.commit()
        web.set_autocommit(True)
        thread.join()
        with web.cursor() as cursor:
            cursor.execute("SELECT subject FROM tickets ORDER BY rowid")
            assert [row[0] for row in cursor.fetchall()] == ["from the worker", "from the web"]
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
        web.close()
    assert failures == []
