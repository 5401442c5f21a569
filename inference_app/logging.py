"""Structured logs: one JSON object per line, carrying the request id and the ticket id when known.

- :class:`JsonFormatter` writes ``{"ts", "level", "logger", "message", "request_id", "ticket_id", ...}``
  (``LOG_FORMAT=json``, the default in production); :class:`TextFormatter` writes the same fields as
  one readable line (``LOG_FORMAT=text``).
- :class:`RequestIdMiddleware` takes the caller's ``X-Request-ID`` (or makes one), binds it to every
  log line of the request and returns it in the response's ``X-Request-ID`` header.
- :func:`log_context` binds fields (``ticket_id=...``) to every log line written inside it, in this
  thread or task; :func:`bind_log_context` does so until the surrounding context ends.
- :func:`install_celery_context` carries the request id from the web request into the Celery tasks it
  enqueues, and binds a pipeline task's ticket id while the task runs.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # settings import this module: keep it free of Django imports at run time
    from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's id only when it is short and harmless (it is echoed in headers and logs).
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
# Attributes every LogRecord has: anything else on a record came from ``extra=`` and is logged.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_CONTEXT_FIELDS = ("request_id", "ticket_id")

_NOTHING_BOUND: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "switchboard_log_context", default=_NOTHING_BOUND
)

logger = logging.getLogger("switchboard.request")


def current_context() -> dict[str, Any]:
    """The fields bound to log lines here and now (a copy)."""
    return dict(_context.get())


def current_request_id() -> str | None:
    value = _context.get().get("request_id")
    return str(value) if value is not None else None


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind ``fields`` (e.g. ``ticket_id=42``) to every log line written inside the block.

    >>> with log_context(ticket_id=ticket.pk):
    ...     logger.info("routed")            # {"message": "routed", "ticket_id": 42, ...}
    """
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**fields: Any) -> None:
    """Bind ``fields`` until the current context ends (the request, the task); prefer :func:`log_context`."""
    _context.set({**_context.get(), **fields})


def new_request_id() -> str:
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record, so handlers and formatters can use it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }
    for key, value in _context.get().items():
        fields.setdefault(key, value)
    # django.request logs a failed response after the middleware returned: its record carries the request.
    request = fields.pop("request", None)
    if request is not None:
        request_id = getattr(request, "request_id", None)
        if request_id is not None:
            fields.setdefault("request_id", request_id)
    return fields


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, context and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extra_fields(record).items():
            entry.setdefault(key, _jsonable(value))
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...``: the same fields as JSON, for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _extra_fields(record)
        ordered = [key for key in _CONTEXT_FIELDS if key in fields] + sorted(
            key for key in fields if key not in _CONTEXT_FIELDS
        )
        suffix = " ".join(f"{key}={fields[key]}" for key in ordered)
        if not suffix:
            return line
        head, _, tail = line.partition("\n")
        return f"{head} {suffix}" + (f"\n{tail}" if tail else "")


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` when it looks sane), logs the request
    when it ends (method, route, status, duration) and returns the id in ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if _SAFE_REQUEST_ID.match(offered) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        with log_context(request_id=request_id):
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            match = getattr(request, "resolver_match", None)
            route = getattr(request, "probe_route", None) or (match.route if match is not None else "")
            logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
        return response


# --- Celery: the request id travels with the task; a pipeline task logs its ticket id ---------------

_TICKET_PARAMETER = "ticket_id"


def _ticket_id_of(task: Any, args: Any, kwargs: Any) -> Any:
    if isinstance(kwargs, Mapping) and _TICKET_PARAMETER in kwargs:
        return kwargs[_TICKET_PARAMETER]
    if not args:
        return None
    try:
        parameters = list(inspect.signature(task.run).parameters)
    except (TypeError, ValueError):
        return None
    if parameters and parameters[0] == _TICKET_PARAMETER:
        return args[0]
    return None


def _on_before_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = current_request_id()
    if headers is not None and request_id and "request_id" not in headers:
        headers["request_id"] = request_id


_task_tokens: dict[str, contextvars.Token[Mapping[str, Any]]] = {}


def _on_task_prerun(
    task_id: str = "", task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    fields: dict[str, Any] = {"task": getattr(task, "name", ""), "task_id": task_id}
    request_id = getattr(getattr(task, "request", None), "request_id", None)
    if request_id:
        fields["request_id"] = request_id
    ticket_id = _ticket_id_of(task, args, kwargs) if task is not None else None
    if ticket_id is not None:
        fields["ticket_id"] = ticket_id
    _task_tokens[task_id] = _context.set({**_context.get(), **fields})


def _on_task_postrun(task_id: str = "", **_: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            _context.reset(token)
        except ValueError:  # set in another context (a pool that switched threads): just clear
            _context.set(_NOTHING_BOUND)


def install_celery_context() -> None:
    """Connect the Celery signals above (idempotent: signals ignore a receiver connected twice)."""
    from celery import signals

    signals.before_task_publish.connect(_on_before_publish, weak=False, dispatch_uid="sb_log_publish")
    signals.task_prerun.connect(_on_task_prerun, weak=False, dispatch_uid="sb_log_prerun")
    signals.task_postrun.connect(_on_task_postrun, weak=False, dispatch_uid="sb_log_postrun")


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The ``LOGGING`` dict for settings: everything to stderr in ``log_format`` (json or text)."""
    formatter = "json" if log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "inference_app.logging.ContextFilter"}},
        "formatters": {
            "json": {"()": "inference_app.logging.JsonFormatter"},
            "text": {"()": "inference_app.logging.TextFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": formatter, "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # One line per request comes from RequestIdMiddleware; Django's own would repeat it.
            "django.server": {"level": "WARNING"},
        },
    }
