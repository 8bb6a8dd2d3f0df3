#!/usr/bin/env python3
"""Reads an Iceberg table with DuckDB's iceberg extension (offline, from the pip wheels) and prints canonical JSON.

Pass the table's metadata.json (--metadata, a path, file:// or s3:// URI), or the catalog (--catalog-uri,
--catalog-name, --table): the script then reads metadata_location from the catalog's iceberg_tables row itself, so it
does not depend on pyiceberg or Spark.

Example:
  .tools/venv/bin/python scripts/interop/duckdb_read.py --metadata s3://bucket/wh/db/t/metadata/00001-….metadata.json \
      --s3-endpoint http://127.0.0.1:9000 --s3-key test-key --s3-secret test-secret --order-by id
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts in the work tree

import argparse  # noqa: E402
import os
from typing import Any
from urllib.parse import unquote, urlsplit

import cli
from canonical_json import CanonicalType, encode_rows

EXTENSIONS = ("avro", "httpfs", "iceberg")  # iceberg reads manifests through avro, and S3 through httpfs


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect():
    """A DuckDB connection with the extensions installed from the duckdb-extension-* wheels; never downloads."""
    import duckdb
    from duckdb_extensions import import_extension

    # Project-local extension directory: nothing lands in ~/.duckdb, and a fresh venv gets fresh binaries.
    extension_dir = os.path.join(sys.prefix, "duckdb-extensions")
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "extension_directory": extension_dir,
        }
    )
    for name in EXTENSIONS:
        try:
            import_extension(name, con=con)
        except ModuleNotFoundError as err:
            raise RuntimeError(
                f"the duckdb-extension-{name} wheel is not installed in {sys.prefix}; run `npm run setup`"
            ) from err
        con.execute(f"LOAD {name}")
    con.execute("SET TimeZone = 'UTC'")
    return con


def configure_s3(con, s3: cli.S3Options) -> None:
    endpoint = urlsplit(s3.endpoint)
    if not endpoint.hostname:
        raise ValueError(f"--s3-endpoint {s3.endpoint!r} is not a URL like http://127.0.0.1:9000")
    host = endpoint.hostname + (f":{endpoint.port}" if endpoint.port else "")
    # DuckDB wants ENDPOINT without a scheme; USE_SSL carries it. URL_STYLE 'path' matches s3proxy.
    con.execute(
        "CREATE OR REPLACE SECRET interop_s3 (TYPE s3, PROVIDER config, "
        f"KEY_ID {_quote(s3.access_key_id)}, SECRET {_quote(s3.secret_access_key)}, REGION {_quote(s3.region)}, "
        f"ENDPOINT {_quote(host)}, URL_STYLE 'path', USE_SSL {'true' if endpoint.scheme == 'https' else 'false'})"
    )


def local_path(location: str) -> str:
    return unquote(urlsplit(location).path) if location.startswith("file:") else location


def metadata_from_catalog(args: argparse.Namespace) -> str:
    """metadata_location of the table, straight from the catalog database (the Iceberg JDBC catalog layout)."""
    namespace, table = cli.split_identifier(args.table)
    uri = cli.sqlalchemy_uri(args.catalog_uri)
    query = (
        "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = {p} AND table_namespace = {p} "
        "AND table_name = {p}"
    )
    params = (args.catalog_name, namespace, table)
    if uri.startswith("sqlite:///"):
        import sqlite3

        path = uri[len("sqlite:///") :]
        if not os.path.exists(path):
            raise FileNotFoundError(f"SQLite catalog {path} does not exist")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute(query.format(p="?"), params).fetchone()
    else:
        import psycopg2

        with psycopg2.connect(uri.replace("postgresql+psycopg2://", "postgresql://", 1)) as db, db.cursor() as cur:
            cur.execute(query.format(p="%s"), params)
            row = cur.fetchone()
    if not row or not row[0]:
        raise LookupError(f"catalog {args.catalog_name!r} has no table {args.table!r} in {args.catalog_uri}")
    return row[0]


def canonical_type(duck_type: Any) -> CanonicalType:
    kind = duck_type.id
    if kind == "struct":
        return {
            "type": "struct",
            "fields": [{"name": n, "type": canonical_type(t), "required": None} for n, t in duck_type.children],
        }
    if kind == "list":
        return {"type": "list", "element": canonical_type(duck_type.children[0][1]), "element-required": None}
    if kind == "map":
        children = dict(duck_type.children)
        return {
            "type": "map",
            "key": canonical_type(children["key"]),
            "value": canonical_type(children["value"]),
            "value-required": None,
        }
    if kind == "decimal":
        params = dict(duck_type.children)
        return f"decimal({params['precision']}, {params['scale']})"
    simple = {
        "boolean": "boolean",
        "tinyint": "int",
        "smallint": "int",
        "integer": "int",
        "bigint": "long",
        "float": "float",
        "double": "double",
        "date": "date",
        "time": "time",
        "timestamp": "timestamp",
        "timestamp with time zone": "timestamptz",
        "varchar": "string",
        "uuid": "uuid",
        "blob": "binary",
    }
    if kind not in simple:
        raise ValueError(f"DuckDB type {duck_type} has no canonical encoding (see docs/interop.md)")
    return simple[kind]


def read_table(args: argparse.Namespace) -> dict:
    if bool(args.metadata) == bool(args.catalog_uri):
        raise ValueError("pass either --metadata or --catalog-uri/--catalog-name/--table")
    if args.catalog_uri and not (args.catalog_name and args.table):
        raise ValueError("--catalog-uri needs --catalog-name and --table")
    metadata = args.metadata or metadata_from_catalog(args)
    con = connect()
    s3 = cli.s3_options(args)
    if s3:
        configure_s3(con, s3)
    scan_args = [_quote(local_path(metadata))]
    if args.snapshot_id is not None:
        scan_args.append(f"snapshot_from_id = {int(args.snapshot_id)}")
    columns = cli.column_list(args.columns)
    select = ", ".join(_ident(c) for c in columns) if columns else "*"
    sql = f"SELECT {select} FROM iceberg_scan({', '.join(scan_args)})"
    if args.filter:
        sql += f" WHERE {args.filter}"
    relation = con.sql(sql)
    schema = [
        {"name": name, "type": canonical_type(duck_type), "required": None}
        for name, duck_type in zip(relation.columns, relation.types)
    ]
    rows = relation.to_arrow_table().to_pylist()
    return {
        "engine": "duckdb",
        "metadataLocation": metadata,
        "schema": schema,
        "rows": encode_rows(rows, schema, cli.column_list(args.order_by)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="duckdb_read.py", description=__doc__.splitlines()[0])
    parser.add_argument("--metadata", help="metadata.json location: /abs/path, file:///abs/path or s3://bucket/key")
    group = parser.add_argument_group("catalog lookup (instead of --metadata)")
    group.add_argument("--catalog-uri", help="sqlite:////abs/catalog.db or postgresql+psycopg2://user@host:port/db")
    group.add_argument("--catalog-name")
    group.add_argument("--table", help="<namespace>.<table>")
    cli.add_s3_args(parser)
    parser.add_argument("--snapshot-id", type=int, help="read this snapshot (iceberg_scan snapshot_from_id)")
    parser.add_argument("--filter", help="a DuckDB SQL WHERE condition, e.g. \"id > 5\"")
    parser.add_argument("--columns", help="comma-separated projection (default: all columns)")
    parser.add_argument("--order-by", help="comma-separated columns to sort the rows by (nulls first)")
    cli.run("duckdb_read.py", parser, read_table)


if __name__ == "__main__":
    main()
