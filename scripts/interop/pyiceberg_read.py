#!/usr/bin/env python3
"""Reads an Iceberg table through pyiceberg's SqlCatalog and prints {"schema", "rows"} as canonical JSON.

Example:
  .tools/venv/bin/python scripts/interop/pyiceberg_read.py --catalog-uri sqlite:////tmp/cat.db --catalog-name cat \
      --warehouse file:///tmp/wh --table db.t --order-by id
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts in the work tree

import argparse  # noqa: E402

import cli
from canonical_json import encode_rows
from iceberg_types import schema_columns


def read_table(args: argparse.Namespace) -> dict:
    from pyiceberg.expressions import AlwaysTrue

    catalog = cli.pyiceberg_catalog(args, init_tables=False)
    cli.split_identifier(args.table)
    table = catalog.load_table(args.table)
    if args.snapshot_id is not None and table.snapshot_by_id(args.snapshot_id) is None:
        known = [s.snapshot_id for s in table.snapshots()]
        raise ValueError(f"table {args.table!r} has no snapshot {args.snapshot_id}; it has {known}")
    columns = cli.column_list(args.columns)
    scan = table.scan(
        row_filter=args.filter or AlwaysTrue(),
        selected_fields=tuple(columns) if columns else ("*",),
        snapshot_id=args.snapshot_id,
    )
    projected = schema_columns(scan.projection())
    if columns:
        by_name = {c["name"]: c for c in projected}
        projected = [by_name[name] for name in columns]
    rows = scan.to_arrow().to_pylist()
    current = table.current_snapshot()
    return {
        "engine": "pyiceberg",
        "table": args.table,
        "metadataLocation": table.metadata_location,
        "snapshotId": str(args.snapshot_id if args.snapshot_id is not None else current.snapshot_id)
        if (args.snapshot_id is not None or current)
        else None,
        "schema": projected,
        "rows": encode_rows(rows, projected, cli.column_list(args.order_by)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="pyiceberg_read.py", description=__doc__.splitlines()[0])
    cli.add_catalog_args(parser)
    parser.add_argument("--table", required=True, help="<namespace>.<table>")
    parser.add_argument("--snapshot-id", type=int, help="read this snapshot instead of the current one")
    parser.add_argument("--filter", help="pyiceberg row filter, e.g. \"id > 5 AND name = 'x'\"")
    parser.add_argument("--columns", help="comma-separated projection (default: all columns)")
    parser.add_argument("--order-by", help="comma-separated columns to sort the rows by (nulls first)")
    cli.run("pyiceberg_read.py", parser, read_table)


if __name__ == "__main__":
    main()
