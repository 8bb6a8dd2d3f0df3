"""pyiceberg types to canonical types (see canonical_json.py), and the schema list every read script prints."""

from __future__ import annotations

from typing import Any

from canonical_json import CanonicalType


def canonical_type(iceberg_type: Any) -> CanonicalType:
    from pyiceberg.types import ListType, MapType, StructType

    if isinstance(iceberg_type, StructType):
        return {
            "type": "struct",
            "fields": [
                {"name": f.name, "type": canonical_type(f.field_type), "required": f.required}
                for f in iceberg_type.fields
            ],
        }
    if isinstance(iceberg_type, ListType):
        return {
            "type": "list",
            "element": canonical_type(iceberg_type.element_type),
            "element-required": iceberg_type.element_required,
        }
    if isinstance(iceberg_type, MapType):
        return {
            "type": "map",
            "key": canonical_type(iceberg_type.key_type),
            "value": canonical_type(iceberg_type.value_type),
            "value-required": iceberg_type.value_required,
        }
    # Primitive str() is the Iceberg type string: long, decimal(10, 2), fixed[16], timestamptz, …
    return str(iceberg_type)


def schema_columns(schema: Any) -> list[dict[str, Any]]:
    """Top-level columns of a pyiceberg Schema as [{"name", "type", "required"}]."""
    return [{"name": f.name, "type": canonical_type(f.field_type), "required": f.required} for f in schema.fields]
