"""The canonical JSON form of Iceberg values shared by every interop script (docs/interop.md, "Canonical JSON").

A *canonical type* is the Iceberg type as JSON: a primitive is its Iceberg type string ("long", "decimal(10, 2)",
"fixed[16]", "timestamptz"), a nested type is a dict:
  {"type": "struct", "fields": [{"name": …, "type": …, "required": bool | None}]}
  {"type": "list", "element": …, "element-required": bool | None}
  {"type": "map", "key": …, "value": …, "value-required": bool | None}
Each engine script maps its own types onto this, and `encode` turns the Python values that Arrow (`to_pylist`) hands
back into JSON-exact values, so that rows read by different engines compare with `==`.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
import struct
import uuid
from typing import Any

CanonicalType = Any  # str | dict, see the module docstring

_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_FIXED = re.compile(r"^fixed\[(\d+)\]$")
_UTC = dt.timezone.utc
_DECIMAL_CONTEXT = decimal.Context(prec=80)


def decimal_scale(type_string: str) -> int | None:
    m = _DECIMAL.match(type_string)
    return int(m.group(2)) if m else None


def _float32_shortest(value: float) -> float:
    """The shortest decimal that reads back as the same float32, so 0.1f prints as 0.1 in every engine."""
    target = struct.pack("<f", value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        try:
            if struct.pack("<f", candidate) == target:
                return candidate
        except OverflowError:
            # Rounding near float32's maximum can step past it (3.403e38); more digits will not.
            continue
    return value


def _special_float(value: float) -> str | None:
    # JSON has no NaN/Infinity, and JavaScript's JSON.stringify turns -0 into 0, so these travel as strings.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 and math.copysign(1.0, value) < 0:
        return "-0.0"
    return None


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"expected bytes, got {type(value).__name__}")


def _utc_iso(value: dt.datetime) -> str:
    # Naive values come from engines that already converted to the UTC session zone (Spark collect, DuckDB).
    if value.tzinfo is not None:
        value = value.astimezone(_UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "+00:00"


def encode(value: Any, ctype: CanonicalType) -> Any:
    """Encodes one value of canonical type `ctype` (see docs/interop.md for the table)."""
    if value is None:
        return None
    if isinstance(ctype, dict):
        kind = ctype["type"]
        if kind == "struct":
            get = value.get if isinstance(value, dict) else lambda name: getattr(value, name)
            return {f["name"]: encode(get(f["name"]), f["type"]) for f in ctype["fields"]}
        if kind == "list":
            return [encode(item, ctype["element"]) for item in value]
        if kind == "map":
            pairs = value.items() if isinstance(value, dict) else value
            entries = [{"key": encode(k, ctype["key"]), "value": encode(v, ctype["value"])} for k, v in pairs]
            # Map order is not part of the data; sort so that engines agree.
            return sorted(entries, key=lambda e: json.dumps(e["key"], sort_keys=True))
        raise ValueError(f"unknown nested type {kind!r}")
    if ctype == "boolean":
        return bool(value)
    if ctype == "int":
        return int(value)
    if ctype == "long":
        return str(int(value))
    if ctype in ("float", "double"):
        value = float(value)
        special = _special_float(value)
        if special is not None:
            return special
        return _float32_shortest(value) if ctype == "float" else value
    scale = decimal_scale(ctype)
    if scale is not None:
        d = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
        # Iceberg decimals have up to 38 digits; the default context (28 digits) would refuse to quantize them.
        with decimal.localcontext(_DECIMAL_CONTEXT):
            return format(d.quantize(decimal.Decimal(1).scaleb(-scale)), "f")
    if ctype == "date":
        return value.isoformat()
    if ctype == "time":
        return value.isoformat(timespec="microseconds")
    if ctype == "timestamp":
        if value.tzinfo is not None:
            value = value.astimezone(_UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds")
    if ctype == "timestamptz":
        return _utc_iso(value)
    if ctype == "string":
        return str(value)
    if ctype == "uuid":
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return str(uuid.UUID(bytes=bytes(value)))
        return str(uuid.UUID(str(value)))
    if ctype == "binary" or _FIXED.match(ctype):
        return base64.b64encode(_to_bytes(value)).decode("ascii")
    raise ValueError(f"no canonical encoding for type {ctype!r}")


def decode(value: Any, ctype: CanonicalType) -> Any:
    """The inverse of `encode`: canonical JSON to the Python value pyarrow accepts for the Iceberg type."""
    if value is None:
        return None
    if isinstance(ctype, dict):
        kind = ctype["type"]
        if kind == "struct":
            return {f["name"]: decode(value.get(f["name"]), f["type"]) for f in ctype["fields"]}
        if kind == "list":
            return [decode(item, ctype["element"]) for item in value]
        if kind == "map":
            entries = value if isinstance(value, list) else [{"key": k, "value": v} for k, v in value.items()]
            return [(decode(e["key"], ctype["key"]), decode(e["value"], ctype["value"])) for e in entries]
        raise ValueError(f"unknown nested type {kind!r}")
    if ctype == "boolean":
        return bool(value)
    if ctype in ("int", "long"):
        return int(value)
    if ctype in ("float", "double"):
        return float(value)  # float("NaN") / float("Infinity") parse too
    if decimal_scale(ctype) is not None:
        return decimal.Decimal(str(value))
    if ctype == "date":
        return dt.date.fromisoformat(value)
    if ctype == "time":
        return dt.time.fromisoformat(value)
    if ctype == "timestamp":
        return dt.datetime.fromisoformat(value)
    if ctype == "timestamptz":
        parsed = dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_UTC)
    if ctype == "string":
        return str(value)
    if ctype == "uuid":
        return uuid.UUID(str(value)).bytes
    if ctype == "binary" or _FIXED.match(ctype):
        return base64.b64decode(value, validate=True)
    raise ValueError(f"no canonical decoding for type {ctype!r}")


def _sort_key(value: Any) -> tuple:
    # Nulls first, then by value; mixed types (which a key column never has) fall back to their string form.
    if value is None:
        return (0, 0)
    if isinstance(value, (dict, list, tuple)):
        return (1, json.dumps(value, default=str, sort_keys=True))
    return (1, value)


def encode_rows(
    rows: list[dict[str, Any]], columns: list[dict[str, Any]], order_by: list[str] | None
) -> list[dict[str, Any]]:
    """Encodes Arrow `to_pylist()` rows column by column, sorted by the raw values of `order_by` when given."""
    names = [c["name"] for c in columns]
    for key in order_by or []:
        if key not in names:
            raise ValueError(f"--order-by column {key!r} is not in the result (columns: {', '.join(names)})")
    if order_by:
        rows = sorted(rows, key=lambda r: tuple(_sort_key(r.get(k)) for k in order_by))
    return [{c["name"]: encode(r.get(c["name"]), c["type"]) for c in columns} for r in rows]
