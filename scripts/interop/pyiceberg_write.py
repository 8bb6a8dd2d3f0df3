#!/usr/bin/env python3
"""Creates an Iceberg table with pyiceberg's SqlCatalog and commits rows to it from a JSON spec.

The spec (a file with --spec, or stdin) is:
  {"table": "db.t",
   "schema": <Iceberg schema JSON, as in table metadata; needed when the table is created>,
   "partitionSpec": [{"source": "id", "transform": "bucket[4]", "name": "id_bucket"}],   # optional
   "properties": {"write.parquet.compression-codec": "zstd"},                               # optional
   "dropIfExists": false,                                                                 # optional
   "commits": [{"mode": "append", "rows": [<canonical JSON row>, …]},
               {"mode": "overwrite", "rows": […], "filter": "id < 3"},   # filter optional: default all rows
               {"mode": "delete", "filter": "id = 2"}]}
and it prints {"table", "location", "metadataLocation", "snapshots": [{"snapshotId", "operation"}, …]}.
Rows use the canonical JSON encoding of docs/interop.md (longs and decimals as strings, base64 binary, …).
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts in the work tree

import argparse  # noqa: E402
import json
from typing import Any

import cli
from canonical_json import decode
from iceberg_types import schema_columns


def _partition_spec(schema: Any, fields: list[dict[str, Any]]):
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import parse_transform

    built = []
    for i, field in enumerate(fields):
        source = schema.find_field(field["source"])
        built.append(
            PartitionField(
                source_id=source.field_id,
                field_id=1000 + i,
                transform=parse_transform(field["transform"]),
                name=field.get("name") or f"{field['source']}_{field['transform'].split('[')[0]}",
            )
        )
    return PartitionSpec(*built)


def _arrow_rows(schema: Any, rows: list[dict[str, Any]]):
    import pyarrow as pa
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    columns = schema_columns(schema)
    names = {c["name"] for c in columns}
    decoded = []
    for index, row in enumerate(rows):
        unknown = set(row) - names
        if unknown:
            raise ValueError(f"row {index} has columns that are not in the schema: {sorted(unknown)}")
        decoded.append({c["name"]: decode(row.get(c["name"]), c["type"]) for c in columns})
    return pa.Table.from_pylist(decoded, schema=schema_to_pyarrow(schema))


def write_table(args: argparse.Namespace) -> dict:
    from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.schema import Schema

    spec = json.loads(open(args.spec).read() if args.spec else sys.stdin.read())
    identifier = spec["table"]
    namespace, _ = cli.split_identifier(identifier)
    catalog = cli.pyiceberg_catalog(args, init_tables=True)
    try:
        catalog.create_namespace(namespace)
    except NamespaceAlreadyExistsError:
        pass
    if spec.get("dropIfExists"):
        try:
            catalog.drop_table(identifier)
        except NoSuchTableError:
            pass
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        if "schema" not in spec:
            raise ValueError(f"table {identifier!r} does not exist and the spec has no \"schema\" to create it")
        schema = Schema.model_validate(spec["schema"])
        table = catalog.create_table(
            identifier,
            schema=schema,
            partition_spec=_partition_spec(schema, spec.get("partitionSpec") or []),
            properties={k: str(v) for k, v in (spec.get("properties") or {}).items()},
        )
    snapshots = []
    for index, commit in enumerate(spec.get("commits") or []):
        mode = commit.get("mode")
        if mode == "append":
            table.append(_arrow_rows(table.schema(), commit.get("rows") or []))
        elif mode == "overwrite":
            table.overwrite(
                _arrow_rows(table.schema(), commit.get("rows") or []),
                overwrite_filter=commit.get("filter") or AlwaysTrue(),
            )
        elif mode == "delete":
            if not commit.get("filter"):
                raise ValueError(f"commits[{index}] is a delete without a \"filter\"")
            table.delete(delete_filter=commit["filter"])
        else:
            raise ValueError(f"commits[{index}].mode is {mode!r}; use append, overwrite or delete")
        table = table.refresh()
        current = table.current_snapshot()
        snapshots.append(
            {
                "snapshotId": str(current.snapshot_id) if current else None,
                "operation": current.summary.operation.value if current and current.summary else None,
            }
        )
    return {
        "engine": "pyiceberg",
        "table": identifier,
        "location": table.location(),
        "metadataLocation": table.metadata_location,
        "snapshots": snapshots,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="pyiceberg_write.py",
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_catalog_args(parser, warehouse_required=True)
    parser.add_argument("--spec", help="path of the JSON spec (default: read it from stdin)")
    cli.run("pyiceberg_write.py", parser, write_table)


if __name__ == "__main__":
    main()
