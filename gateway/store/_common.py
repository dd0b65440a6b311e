"""What the store's modules share: new ids, typed rows, and broken constraints as our errors.

Every function of the store returns plain values or rows of a NamedTuple class
defined beside it, built from the database row inside the store. A row's fields are
the columns it holds, so a misspelt column is a type error, and
tests/unit/test_store_rows.py holds each field's type to its column in the schema.
A select of a row class takes ``columns(RowClass, table, ...)``, the columns in the
class's field order, so its rows are built by position: no name is looked up per row.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, NamedTuple, TypeVar

from sqlalchemy import Column, Connection, Select, Table, insert
from sqlalchemy.exc import IntegrityError

from sealpost.gateway.errors import AlreadyExists, NotFound

RowT = TypeVar("RowT", bound=NamedTuple)

#: Every row class ``columns`` has served, with the column of each of its fields.
ROW_COLUMNS: Final[dict[type[NamedTuple], list[Column[Any]]]] = {}


def new_id(prefix: str) -> str:
    """A random opaque id such as ``acct-3f9c...`` (64 bits of randomness, hex)."""
    return f"{prefix}-{secrets.token_hex(8)}"


def columns(row: type[NamedTuple], *tables: Table) -> list[Column[Any]]:
    """The columns of ``row``'s fields, in its order, each from the first of ``tables`` with one.

    KeyError for a field that no table has a column for: at import, where the store
    builds its selects.
    """
    picked = []
    for name in row._fields:
        table = next((table for table in tables if name in table.c), None)
        if table is None:
            raise KeyError(f"{row.__name__}.{name}: no column of {[t.name for t in tables]}")
        picked.append(table.c[name])
    ROW_COLUMNS[row] = picked
    return picked


def rows(
    connection: Connection,
    query: Select[Any],
    row: type[RowT],
    parameters: Mapping[str, Any] | None = None,
) -> list[RowT]:
    """Every row of ``query`` as ``row``; TypeError if it selects other columns than ``row``'s."""
    result = connection.execute(query, parameters)
    _check(row, tuple(result.keys()))
    make = row._make
    return [make(values) for values in result]


def first(connection: Connection, query: Select[Any], row: type[RowT]) -> RowT | None:
    """The first row of ``query`` as ``row``, or None; TypeError as ``rows``."""
    result = connection.execute(query)
    _check(row, tuple(result.keys()))
    values = result.first()
    return None if values is None else row._make(values)


def _check(row: type[NamedTuple], selected: tuple[str, ...]) -> None:
    if row._fields != selected:
        raise TypeError(f"{row.__name__} is not a named tuple of {selected}")


def found(row: RowT | None, missing: str) -> RowT:
    """``row``, or NotFound(missing) when there is none."""
    if row is None:
        raise NotFound(missing)
    return row


@contextmanager
def exists_already(message: str) -> Iterator[None]:
    """Raise AlreadyExists(message) for a constraint the block's statement breaks.

    The database's IntegrityError goes no further than the store. On PostgreSQL a
    transaction goes on after it only from a savepoint rolled back before this: an
    insert whose transaction may go on is ``insert_unique``.
    """
    try:
        yield
    except IntegrityError as exc:
        raise AlreadyExists(message) from exc


def insert_unique(connection: Connection, table: Table, conflict: str, **values: Any) -> None:
    """Insert one row into ``table``; AlreadyExists(conflict) if it breaks a constraint.

    The insert runs in a savepoint, rolled back if it fails, so the transaction goes on.
    """
    with exists_already(conflict), connection.begin_nested():
        connection.execute(insert(table).values(**values))
