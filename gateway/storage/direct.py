"""Hot statements run on the database driver, inside SQLAlchemy's transaction.

Every message passes through a dozen small statements (look up a key record, a
detainee, a contact; insert the message and its feed row). SQLAlchemy Core spends
about 20 microseconds of Python on each execution (cache lookup, parameter
processing, result set-up) against 2 to 3 for the same statement on the DBAPI
cursor; on the send path that overhead was the largest item in the profile
(docs/performance.md).

``Direct`` keeps the statement as SQLAlchemy Core, compiles it once per dialect
and parameter set, and runs the compiled SQL on the connection's DBAPI
connection, in whatever transaction or savepoint the SQLAlchemy ``Connection``
has open. What SQLAlchemy would still do for these statements is kept:

- bound values and result values pass through the column types' processors for
  the dialect (for example SQLite's ``Boolean`` comes back as ``bool``);
- a driver error is raised as SQLAlchemy's wrapper (``IntegrityError``,
  ``OperationalError``, ...), without the parameters in its message, and a lost
  server connection invalidates the ``Connection`` and the pool as SQLAlchemy would.

Rows are named tuples, the selected columns by attribute and by position: the
NamedTuple class given with the statement (``Direct(statement, SomeRow)``), whose
fields must be the selected columns in order, which is checked when the statement is
wrapped; or, without one, a named tuple of the select's own column names, typed
``Record`` (``Any``). Statements with expanding (``IN``) parameters are not
supported; build those per call through SQLAlchemy.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, overload

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select

#: A row of a ``Direct`` select given no row class: a named tuple of the selected columns.
Record: TypeAlias = Any
#: The row class of a ``Direct`` select.
RowT = TypeVar("RowT", bound=tuple[Any, ...])

_Processor = Callable[[Any], Any] | None
#: The name of ``savepoint``'s savepoints (a nested one shadows it until released).
_SAVEPOINT = "sealpost_job"
#: What ``Direct`` runs: a select, insert, update or delete.
Statement: TypeAlias = Select[Any] | UpdateBase


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: bool
    #: Bind names in the order the SQL uses them (positional) or all of them (named).
    names: tuple[str, ...]
    #: Values of binds the statement carries itself (a LIMIT, a literal in a WHERE).
    defaults: Mapping[str, Any]
    bind_processors: Mapping[str, Callable[[Any], Any]]
    result_processors: tuple[_Processor, ...]
    row: Callable[[Sequence[Any]], Any] | None


def _compile(
    statement: Statement,
    connection: Connection,
    keys: tuple[str, ...],
    row_class: type[Any] | None,
) -> _Compiled:
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    binds = compiled.binds
    if any(bind.expanding for bind in binds.values()):
        raise ValueError("Direct statements cannot have expanding (IN) parameters")
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup or ()) if positional else tuple(binds)
    defaults = {
        name: bind.effective_value
        for name, bind in binds.items()
        if name not in keys and not bind.required
    }
    bind_processors = {}
    for name, bind in binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            bind_processors[name] = processor
    result_processors: tuple[_Processor, ...] = ()
    row = None
    if isinstance(statement, Select):
        # The keys SQLAlchemy's own rows would have (a repeated name gets a suffix).
        fields = list(statement.selected_columns.keys())
        result_processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        if row_class is not None:
            row = row_class._make
        else:
            row = namedtuple("Record", fields, rename=True)._make  # type: ignore[attr-defined]
    return _Compiled(
        sql=compiled.string,
        positional=positional,
        names=names,
        defaults=defaults,
        bind_processors=bind_processors,
        result_processors=result_processors,
        row=row,
    )


class Direct(Generic[RowT]):
    """A SQLAlchemy Core statement run on the DBAPI cursor (see the module text)."""

    @overload
    def __init__(self: Direct[Record], statement: Statement) -> None: ...

    @overload
    def __init__(self, statement: Statement, row: type[RowT]) -> None: ...

    def __init__(self, statement: Statement, row: type[Any] | None = None) -> None:
        """Wrap ``statement``, whose rows are ``row`` (a NamedTuple class) if given.

        It is compiled at first use, once per dialect and parameter set. TypeError if
        ``row``'s fields are not the columns the statement selects, in order.
        """
        if row is not None:
            selected = (
                tuple(statement.selected_columns.keys()) if isinstance(statement, Select) else ()
            )
            if getattr(row, "_fields", None) != selected:
                raise TypeError(f"{row.__name__} is not a named tuple of {selected}")
        self.statement = statement
        self._row = row
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def rows(self, connection: Connection, parameters: Mapping[str, Any]) -> list[RowT]:
        """Every row of a select."""
        compiled, cursor = self._run(connection, parameters)
        try:
            return [self._record(compiled, values) for values in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, connection: Connection, parameters: Mapping[str, Any]) -> RowT | None:
        """The first row of a select, or None."""
        compiled, cursor = self._run(connection, parameters)
        try:
            values = cursor.fetchone()
        finally:
            cursor.close()
        return None if values is None else self._record(compiled, values)

    def scalar(self, connection: Connection, parameters: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None when there is no row."""
        row = self.first(connection, parameters)
        return None if row is None else row[0]

    def execute(self, connection: Connection, parameters: Mapping[str, Any]) -> int:
        """Run an insert, update or delete; returns the number of rows it touched."""
        _compiled, cursor = self._run(connection, parameters)
        try:
            count: int = cursor.rowcount
        finally:
            cursor.close()
        return count

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run an insert or update once per parameter set, in one driver call."""
        if not rows:
            return
        compiled = self._get(connection, rows[0])
        arguments = [self._arguments(compiled, parameters) for parameters in rows]
        _on_driver(
            connection, compiled.sql, lambda cursor: cursor.executemany(compiled.sql, arguments)
        )

    def sql(self, connection: Connection, parameters: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL and driver arguments a call with ``parameters`` runs (to read its plan)."""
        compiled = self._get(connection, parameters)
        return compiled.sql, self._arguments(compiled, parameters)

    # ----------------------------------------------------------------------------- internals

    def _get(self, connection: Connection, parameters: Mapping[str, Any]) -> _Compiled:
        keys = tuple(parameters)
        key = (connection.dialect.name, keys)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _compile(self.statement, connection, keys, self._row)
        return compiled

    @staticmethod
    def _arguments(compiled: _Compiled, parameters: Mapping[str, Any]) -> Any:
        values = dict(compiled.defaults)
        values.update(parameters)
        for name, processor in compiled.bind_processors.items():
            if name in values:
                values[name] = processor(values[name])
        if compiled.positional:
            return tuple(values[name] for name in compiled.names)
        return values

    def _run(self, connection: Connection, parameters: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled = self._get(connection, parameters)
        arguments = self._arguments(compiled, parameters)
        cursor = _on_driver(
            connection, compiled.sql, lambda cursor: cursor.execute(compiled.sql, arguments)
        )
        return compiled, cursor

    @staticmethod
    def _record(compiled: _Compiled, values: Sequence[Any]) -> Any:
        assert compiled.row is not None, "not a select"
        if any(compiled.result_processors):
            values = [
                value if processor is None or value is None else processor(value)
                for processor, value in zip(compiled.result_processors, values, strict=True)
            ]
        return compiled.row(values)


@contextmanager
def savepoint(connection: Connection) -> Iterator[None]:
    """A savepoint set on the driver: released when the block ends, rolled back if it raises.

    The same as SQLAlchemy's ``Connection.begin_nested`` at a tenth of the cost, for
    group commit's one savepoint per job. Savepoints of either kind nest.
    """
    execute_sql(connection, f"SAVEPOINT {_SAVEPOINT}")
    try:
        yield
    except OperationalError:
        raise  # the connection is gone or unusable; the transaction fails as a whole
    except BaseException:
        execute_sql(connection, f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        execute_sql(connection, f"RELEASE SAVEPOINT {_SAVEPOINT}")
        raise
    execute_sql(connection, f"RELEASE SAVEPOINT {_SAVEPOINT}")


def execute_sql(connection: Connection, sql: str) -> None:
    """Run a statement without parameters or results (BEGIN, SAVEPOINT ...) on the driver."""
    _on_driver(connection, sql, lambda cursor: cursor.execute(sql)).close()


def _on_driver(connection: Connection, sql: str, run: Callable[[Any], Any]) -> Any:
    """A new DBAPI cursor after ``run(cursor)``; driver errors as SQLAlchemy's exceptions."""
    dbapi_connection = connection.connection.driver_connection
    assert dbapi_connection is not None
    dialect = connection.dialect
    base_error = dialect.loaded_dbapi.Error
    cursor = dbapi_connection.cursor()
    try:
        run(cursor)
    except base_error as exc:
        lost = dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
        cursor.close()
        if lost:
            # As SQLAlchemy does for its own statements: this connection, and every
            # pooled one connected before it failed (the server restarted), are replaced.
            connection.invalidate(exc)
            connection.engine.dispose()
        raise DBAPIError.instance(
            sql,
            None,
            exc,
            base_error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=dialect,
        ) from exc
    except BaseException:
        cursor.close()
        raise
    return cursor
