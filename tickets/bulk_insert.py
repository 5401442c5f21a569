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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection, models

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
