"""The data dictionary an emulated instance serves: ``sys_db_object`` (one row per table, ``super_class`` pointing
at the table it extends) and ``sys_dictionary`` (per table one collection row with an empty ``element``, then one
row per column the table itself defines; inherited columns are rows of the parent table), made from the same
table definitions the emulator serves rows from. Shape: ``shared/reference/servicenow-facts-2.md`` §8.

Pure functions over the schema. Must never import: starlette or any HTTP library, the client, the engine.
"""

from __future__ import annotations

from mtls_config.emulator.seed import seed_sys_id
from mtls_config.emulator.store import Record
from mtls_config.emulator.tables import INTERNAL_TYPES, Column, Schema, Table

# [I] max_length per type where a column does not state its own (the instance's dictionary has one per column).
_MAX_LENGTH = {"reference": 32, "sys_id": 32, "glide_list": 4000, "password": 255, "password2": 255, "string": 255}


def _audit(sys_id: str, created_on: str) -> Record:
    return {
        "sys_id": sys_id,
        "sys_created_on": created_on,
        "sys_created_by": "system",
        "sys_updated_on": created_on,
        "sys_updated_by": "system",
        "sys_mod_count": "0",
    }


def db_object_id(table: str) -> str:
    return seed_sys_id("sys_db_object", table)


def db_object_rows(schema: Schema, created_on: str) -> list[Record]:
    parents = {schema[name].parent for name in schema}
    return [
        {
            "name": table.name,
            "label": table.label,
            "super_class": db_object_id(table.parent) if table.parent else "",
            "sys_name": table.label,
            "is_extendable": "true" if table.name in parents else "false",
            "ws_access": "true",
            **_audit(db_object_id(table.name), created_on),
        }
        for table in (schema[name] for name in schema)
    ]


def _collection_row(table: Table, created_on: str) -> Record:
    return {
        "name": table.name,
        "element": "",
        "column_label": table.label,
        "internal_type": "collection",
        "reference": "",
        "max_length": "40",
        "mandatory": "false",
        "read_only": "false",
        "active": "true",
        "display": "false",
        "default_value": "",
        "choice": "0",
        **_audit(seed_sys_id("sys_dictionary", table.name, ""), created_on),
    }


def _column_row(table: Table, column: Column, created_on: str) -> Record:
    internal_type = INTERNAL_TYPES[column.type]
    max_length = column.max_length or _MAX_LENGTH.get(internal_type, 40)
    return {
        "name": table.name,
        "element": column.name,
        "column_label": column.column_label,
        "internal_type": internal_type,
        "reference": column.reference or "",
        "max_length": str(max_length),
        "mandatory": "true" if column.mandatory else "false",
        "read_only": "true" if column.read_only else "false",
        "active": "true",
        "display": "true" if column.name == table.display_field else "false",
        "default_value": column.default,
        "choice": "1" if column.choices else "0",
        **_audit(seed_sys_id("sys_dictionary", table.name, column.name), created_on),
    }


def dictionary_rows(schema: Schema, created_on: str) -> list[Record]:
    rows: list[Record] = []
    for name in schema:
        table = schema[name]
        rows.append(_collection_row(table, created_on))
        rows.extend(_column_row(table, column, created_on) for column in table.own_columns)
    return rows
