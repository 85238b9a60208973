"""Insert many new rows of one model fast: what ``bulk_create`` does, without its per-value work.

``QuerySet.bulk_create`` asks every field of every object how to prepare its value and
assembles the SQL value by value; at the monthly close (10,000 invoices of some forty
columns, and their lines) that bookkeeping costs more than the database does. Here each
field's conversion is chosen once, values of the types the database driver takes as they
are (str, int, bool, None) go through untouched, and each batch is one multi-row
``INSERT ... RETURNING`` that sets the new primary keys, as ``bulk_create`` does.

For plain rows only: no multi-table inheritance, no conflict handling, no signals (as
``bulk_create``). A backend that cannot return rows from a bulk insert gets ``bulk_create``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Any

from django.db import connections, router
from django.db.models import Model

# Django field type -> the Python types its database value already has (no conversion needed).
_AS_IS: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("CharField", "TextField", "SlugField", "EmailField"), (str,)),
    **dict.fromkeys(
        (
            "IntegerField", "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
            "PositiveSmallIntegerField", "PositiveBigIntegerField", "ForeignKey", "OneToOneField",
        ),
        (int,),
    ),
    "BooleanField": (bool,),
}
# Parameters per statement, below SQLite's and PostgreSQL's limits (32,766 and 65,535).
_MAX_PARAMS = 30_000


def _as_is_type(field: Any) -> str:
    """The field's type when its values may go to the database as they are, else ""."""
    internal = field.get_internal_type()
    if internal in ("ForeignKey", "OneToOneField") and field.target_field.get_internal_type() not in _AS_IS:
        return ""  # a key to a non-integer primary key: let the field decide
    return internal if internal in _AS_IS else ""


def _converter(field: Any, connection: Any) -> Callable[[Any], Any] | None:
    """How ``field``'s Python value becomes a query parameter: None when it goes as it is."""
    if _as_is_type(field):
        return None
    internal = field.get_internal_type()
    prepare = field.get_db_prep_save
    if internal == "DecimalField":
        adapt = connection.ops.adapt_decimalfield_value
        digits, places = field.max_digits, field.decimal_places
        return lambda value: (
            adapt(value, digits, places) if type(value) is Decimal and value.is_finite() else prepare(value, connection)
        )
    if internal == "DateField":
        adapt_date = connection.ops.adapt_datefield_value
        return lambda value: adapt_date(value) if type(value) is dt.date else prepare(value, connection)
    return lambda value: prepare(value, connection)


def insert_rows(objs: Sequence[Model], *, using: str | None = None) -> None:
    """INSERT ``objs`` (new objects of one model, primary keys unset) and set their keys."""
    if not objs:
        return
    model = type(objs[0])
    alias = using or router.db_for_write(model)
    connection = connections[alias]
    if not connection.features.can_return_rows_from_bulk_insert:
        model._default_manager.using(alias).bulk_create(objs)  # type: ignore[attr-defined]
        return
    opts = model._meta
    pk = opts.pk
    # The database numbers new rows (as bulk_create: the key column is left out when unset).
    fields = [f for f in opts.concrete_fields if f is not pk or getattr(objs[0], pk.attname) is not None]
    stamped = [f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    # Keys to objects saved since they were assigned (a line to its new invoice) follow them.
    relations = [f for f in fields if f.is_relation]
    values_of = attrgetter(*(f.attname for f in fields))
    convert = [_converter(f, connection) for f in fields]
    converted = [(i, conv) for i, conv in enumerate(convert) if conv is not None]
    # The fields passed as they are, with the types the driver takes as they are (else converted).
    checked = [(i, (*_AS_IS[_as_is_type(f)], type(None))) for i, f in enumerate(fields) if convert[i] is None]
    quote = connection.ops.quote_name
    # Only the model's own table and column names (quoted) go into the text; values are parameters.
    columns = ", ".join(quote(f.column) for f in fields)
    head = f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES "  # noqa: S608
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    returning = f" RETURNING {quote(pk.column)}"
    per_batch = max(1, _MAX_PARAMS // max(1, len(fields)))
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_batch):
            batch = objs[start : start + per_batch]
            params: list[Any] = []
            for obj in batch:
                for field in relations:
                    if getattr(obj, field.attname) is None and field.is_cached(obj):
                        target = field.get_cached_value(obj)
                        if target is not None:
                            setattr(obj, field.attname, getattr(target, field.target_field.attname))
                for field in stamped:
                    field.pre_save(obj, True)  # auto_now(_add): stamps the object as save() would
                row = list(values_of(obj)) if len(fields) > 1 else [values_of(obj)]
                for i, conv in converted:
                    row[i] = conv(row[i])
                for i, types in checked:
                    if type(row[i]) not in types:
                        row[i] = fields[i].get_db_prep_save(row[i], connection)
                params.extend(row)
            cursor.execute(head + ", ".join([row_sql] * len(batch)) + returning, params)
            for obj, (key,) in zip(batch, cursor.fetchall(), strict=True):
                setattr(obj, pk.attname, key)
                obj._state.adding = False
                obj._state.db = alias
