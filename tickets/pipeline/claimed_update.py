"""One UPDATE for a stage's whole batch: each ticket moved on with its own fields, if still claimed.

The flow's ``advance`` moves one ticket with one conditional UPDATE; a batch of 16 made 16 round
trips per stage, each with Django building and psycopg quoting its statement. On PostgreSQL,
:func:`update_claimed` sends one ``UPDATE ... FROM (VALUES ...)`` per set of changed fields with the
same condition for every row (the ticket is still in the stage it was claimed for, under our claim's
token, with the status we read) and returns the ids it moved, so the caller knows exactly which
tickets were superseded, as ``advance`` does one by one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection, models

from tickets.models import Ticket


def update_claimed(
    rows: Sequence[tuple[Ticket, Mapping[str, Any]]], *, token: Any, set_all: Mapping[str, Any]
) -> set[int]:
    """Set ``set_all`` and each row's own fields (the same field names in every row) on the tickets
    that are still in their stage under ``token`` with their status unchanged; PostgreSQL only.
    Returns the ids updated."""
    if not rows:
        return set()
    meta = Ticket._meta
    quote = connection.ops.quote_name
    names = list(rows[0][1])
    own = [_field(name) for name in names]
    common = [(_field(name), value) for name, value in set_all.items()]
    assignments = [f"{_column(field)} = %s" for field, _ in common]
    assignments += [f"{_column(field)} = v.{_column(field)}" for field in own]
    casts = ["%s::bigint", "%s::varchar", "%s::varchar", *(f"%s::{_cast(field)}" for field in own)]
    params: list[Any] = [_prep(field, value) for field, value in common]
    for ticket, values in rows:
        params += [ticket.pk, ticket.stage, ticket.status]
        params += [_prep(field, values[name]) for field, name in zip(own, names, strict=True)]
    params.append(token)
    columns = ", ".join(["id", "old_stage", "old_status", *(_column(field) for field in own)])
    table = quote(meta.db_table)
    # Only quoted names from the model's metadata and placeholders are formatted in; values are bound.
    sql = (
        f"UPDATE {table} AS t SET {', '.join(assignments)} "  # noqa: S608
        f"FROM (VALUES {', '.join(['(' + ', '.join(casts) + ')'] * len(rows))}) AS v({columns}) "
        "WHERE t.id = v.id AND t.stage = v.old_stage AND t.status = v.old_status "
        "AND t.stage_started_at = %s RETURNING t.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _field(name: str) -> models.Field[Any, Any]:
    field = Ticket._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column, f"{name} is not a column of tickets"
    return field


def _column(field: models.Field[Any, Any]) -> str:
    return connection.ops.quote_name(str(field.column))


def _cast(field: models.Field[Any, Any]) -> str:
    # Without a length (varchar, not varchar(12)): a too long value fails on assignment, as in an
    # ordinary UPDATE, instead of being cut by the cast.
    return str(field.db_type(connection)).split("(")[0]


def _prep(field: models.Field[Any, Any], value: Any) -> Any:
    if isinstance(value, models.Model):  # a foreign key given as the related object
        value = value.pk
    return field.get_db_prep_save(value, connection)
