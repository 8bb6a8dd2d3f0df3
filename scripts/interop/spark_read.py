#!/usr/bin/env python3
"""Reads an Iceberg table with Spark 4.1 + iceberg-spark-runtime (JdbcCatalog) and prints canonical JSON.

Example:
  .tools/venv/bin/python scripts/interop/spark_read.py --catalog-uri sqlite:////tmp/cat.db --catalog-name cat \
      --warehouse file:///tmp/wh --table db.t --order-by id
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts in the work tree

import argparse  # noqa: E402

import cli
import spark_session
from canonical_json import encode_rows


def _quoted(identifier: str) -> str:
    return ".".join(f"`{part.replace('`', '``')}`" for part in identifier.split("."))


def read_table(args: argparse.Namespace) -> dict:
    cli.split_identifier(args.table)
    spark = spark_session.build_session(args, "sluice-interop-read")
    reader = spark.read
    if args.snapshot_id is not None:
        reader = reader.option("snapshot-id", str(args.snapshot_id))
    df = reader.table(f"{_quoted(args.catalog_name)}.{_quoted(args.table)}")
    if args.filter:
        df = df.where(args.filter)
    columns = cli.column_list(args.columns)
    if columns:
        df = df.select(*[f"`{c}`" for c in columns])
    schema = spark_session.schema_columns(df.schema)
    rows = spark_session.collect(df)
    return {
        "engine": "spark",
        "table": args.table,
        "schema": schema,
        "rows": encode_rows(rows, schema, cli.column_list(args.order_by)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="spark_read.py", description=__doc__.splitlines()[0])
    spark_session.add_spark_catalog_args(parser)
    parser.add_argument("--table", required=True, help="<namespace>.<table>")
    parser.add_argument("--snapshot-id", type=int, help="read this snapshot instead of the current one")
    parser.add_argument("--filter", help="a Spark SQL condition, e.g. \"id > 5\"")
    parser.add_argument("--columns", help="comma-separated projection (default: all; Spark cannot read time columns)")
    parser.add_argument("--order-by", help="comma-separated columns to sort the rows by (nulls first)")
    cli.run("spark_read.py", parser, read_table)


if __name__ == "__main__":
    main()
