"""The store's row classes agree with the schema (gateway/store/).

A row is built by position from the columns its class names, and the type checker
believes the class: a field typed ``int`` for a column that may be NULL, or ``str``
for a binary one, would let code pass mypy that fails on a real row.
"""

from __future__ import annotations

import types
import typing
from typing import Any, NamedTuple

import pytest
from sqlalchemy import Column

from sealpost.gateway import store
from sealpost.gateway.storage.schema import accounts
from sealpost.gateway.store._common import ROW_COLUMNS, columns

#: Importing the store built every row class's selects, which registered them.
ROW_CLASSES = sorted(ROW_COLUMNS, key=lambda row: row.__name__)


def _allowed(hint: Any) -> set[Any]:
    """The types a field's annotation admits (``int | None``: int and NoneType)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return set(typing.get_args(hint))
    return {hint}


def test_every_row_class_of_the_package_is_checked() -> None:
    exported = {
        value
        for value in vars(store).values()
        if isinstance(value, type) and issubclass(value, tuple) and hasattr(value, "_fields")
    }
    composed = {
        store.AccountContactRow,
        store.DeliveryRow,
        store.EscrowedRow,
        store.FeedRow,
        store.NamedContactRow,
        store.NewsRow,
    }
    assert exported - composed == set(ROW_COLUMNS)


@pytest.mark.parametrize("row", ROW_CLASSES, ids=lambda row: row.__name__)
def test_each_field_has_the_type_of_its_column(row: type[NamedTuple]) -> None:
    hints = typing.get_type_hints(row)
    picked: list[Column[Any]] = ROW_COLUMNS[row]
    assert [column.name for column in picked] == list(row._fields)
    for name, column in zip(row._fields, picked, strict=True):
        allowed = _allowed(hints[name])
        assert (types.NoneType in allowed) == column.nullable, f"{row.__name__}.{name}"
        assert allowed - {types.NoneType} == {column.type.python_type}, f"{row.__name__}.{name}"


def test_composed_rows_nest_checked_rows() -> None:
    for composed, nested in [
        (store.NamedContactRow, store.ContactRow),
        (store.AccountContactRow, store.ContactRow),
        (store.FeedRow, store.MessageRow),
        (store.DeliveryRow, store.MessageRow),
        (store.EscrowedRow, store.MessageRow),
        (store.NewsRow, store.NotificationRow),
    ]:
        assert nested in typing.get_type_hints(composed).values()
        assert nested in ROW_COLUMNS


def test_a_field_that_is_no_column_is_refused_when_the_select_is_built() -> None:
    class Misspelt(NamedTuple):
        id: str
        dispaly_name: str

    with pytest.raises(KeyError, match=r"Misspelt\.dispaly_name"):
        columns(Misspelt, accounts)
