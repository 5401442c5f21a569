"""Many new rows of one model written with PostgreSQL's COPY instead of one long INSERT.

Django's ``bulk_create`` writes one placeholder per value: a batch of 100 tickets is a statement of
about 3,000 placeholders that Django compiles field by field and psycopg then scans and quotes, on
every request (a statement that long is never cached). That was about half of the CPU of a
``POST /tickets/batch`` of 100 (``benchmarks/bench_api.py --profile 30 --endpoints batch``).

On PostgreSQL, :func:`insert_all` takes the primary keys from the table's sequence in one query and
then streams the rows with ``COPY ... FROM STDIN``, which psycopg formats in C: for 100 rows of 32
columns, 2.3 ms of CPU against 15 ms for an ``INSERT ... SELECT FROM unnest(arrays)`` and 18 ms for
the long INSERT (measured on this machine with psycopg 3.3). COPY checks every constraint and fires
every trigger as an INSERT does, in the caller's transaction. The values are prepared by each field
exactly as Django prepares them (``pre_save`` and ``get_db_prep_save``: defaults, ``auto_now_add``,
JSON); a value shared by every row (a default, the batch's timestamp) is prepared once. Other
databases get ``bulk_create``.

:func:`insert_together` is the single-row counterpart: a few new rows of different models (a ticket,
its first audit event, its idempotency key) in one statement, each INSERT a data-modifying CTE of the
next. One round trip instead of five (BEGIN, three INSERTs, COMMIT), atomic on its own, and a
statement whose text is the same every time, built once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection, models, transaction

M = TypeVar("M", bound=models.Model)


def insert_all(objs: Sequence[M]) -> list[M]:
    """Insert ``objs`` (unsaved instances of one model with an automatic primary key) and set their
    primary keys, as ``bulk_create`` does; returns them."""
    if not objs:
        return list(objs)
    model = type(objs[0])
    if connection.vendor != "postgresql":
        return model._default_manager.bulk_create(objs)
    meta = model._meta
    pk = meta.pk
    assert isinstance(pk, models.AutoField), f"{meta.label} has no automatic primary key"
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    with connection.wrap_database_errors, connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(objs)],
        )
        for obj, (new_id,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = new_id
        fields = list(meta.concrete_fields)
        columns = [_column(field, objs) for field in fields]
        names = ", ".join(quote(str(field.column)) for field in fields)
        # Only quoted names from the model's metadata are formatted in; the rows are streamed.
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return list(objs)


def _column(field: models.Field[Any, Any], objs: Sequence[models.Model]) -> list[Any]:
    """The field's database values for ``objs``, prepared once where every row holds the same."""
    raw = [field.pre_save(obj, add=True) for obj in objs]
    first = raw[0]
    kind = type(first)
    if all(type(value) is kind and value == first for value in raw):
        return [field.get_db_prep_save(first, connection)] * len(raw)
    return [field.get_db_prep_save(value, connection) for value in raw]


def next_id(model: type[models.Model]) -> int:
    """A new primary key from ``model``'s sequence (PostgreSQL), for a row whose id other rows of the
    same statement need before it is written (an audit event's hash covers its ticket's id)."""
    meta = model._meta
    with connection.wrap_database_errors, connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s))", [meta.db_table, meta.pk.column])
        (new_id,) = cursor.fetchone()
    return int(new_id)


def insert_together(objs: Sequence[models.Model]) -> None:
    """Insert ``objs`` (unsaved instances of any models, foreign keys set) all or none, and set the
    primary keys of those without one.

    On PostgreSQL this is one statement: every row but the last is an ``INSERT ... RETURNING`` in a
    ``WITH`` clause, which PostgreSQL runs as one atomic statement (no BEGIN and COMMIT needed outside
    a transaction); a unique violation anywhere writes nothing and raises ``IntegrityError``. Inside a
    caller's transaction it is one statement of it. Elsewhere the rows are saved one by one in a
    transaction (a savepoint when nested)."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        with transaction.atomic():
            for obj in objs:
                obj.save(force_insert=True)
        return
    shapes = tuple((type(obj), obj.pk is not None) for obj in objs)
    sql = _together_sql(shapes)
    params = [
        field.get_db_prep_save(field.pre_save(obj, add=True), connection)
        for obj in objs
        for field in _insert_fields(type(obj), obj.pk is not None)
    ]
    with connection.wrap_database_errors, connection.cursor() as cursor:
        cursor.execute(sql, params)
        new_ids = cursor.fetchone()
    for obj, new_id in zip(objs, new_ids, strict=True):
        obj.pk = new_id
        obj._state.adding = False
        obj._state.db = connection.alias


@cache
def _insert_fields(model: type[models.Model], with_pk: bool) -> tuple[models.Field[Any, Any], ...]:
    return tuple(f for f in model._meta.concrete_fields if with_pk or f is not model._meta.pk)


@cache
def _together_sql(shapes: tuple[tuple[type[models.Model], bool], ...]) -> str:
    """``WITH r0 AS (INSERT ... RETURNING id), ... INSERT ... RETURNING (SELECT id FROM r0), ..., id``
    for rows of these (model, primary key given) shapes; only names from the models' metadata."""
    quote = connection.ops.quote_name
    inserts = []
    for model, with_pk in shapes:
        fields = _insert_fields(model, with_pk)
        names = ", ".join(quote(str(field.column)) for field in fields)
        values = ", ".join(["%s"] * len(fields))
        pk = quote(str(model._meta.pk.column))
        table = quote(model._meta.db_table)
        inserts.append((f"INSERT INTO {table} ({names}) VALUES ({values})", pk))  # noqa: S608
    ctes = ", ".join(f"r{n} AS ({insert} RETURNING {pk})" for n, (insert, pk) in enumerate(inserts[:-1]))
    earlier = "".join(f"(SELECT {pk} FROM r{n}), " for n, (_insert, pk) in enumerate(inserts[:-1]))  # noqa: S608
    last, last_pk = inserts[-1]
    return f"{'WITH ' + ctes + ' ' if ctes else ''}{last} RETURNING {earlier}{last_pk}"
