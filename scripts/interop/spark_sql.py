#!/usr/bin/env python3
"""Runs SQL statements, in order and in one Spark session, against the Iceberg JdbcCatalog; prints each result.

Statements come from repeated --sql arguments, or as a JSON array of strings from --file or stdin. The catalog is
the session's default catalog, so `db.t` and `<catalog>.db.t` both work, and Iceberg's SQL extensions (MERGE INTO,
CALL <catalog>.system.rewrite_data_files(…)) are on. Prints {"results": [{"sql", "schema", "rows"}, …]}; with
--continue-on-error a failed statement is {"sql", "error"} and the rest still run.

Example:
  .tools/venv/bin/python scripts/interop/spark_sql.py --catalog-uri sqlite:////tmp/cat.db --catalog-name cat \
      --warehouse file:///tmp/wh --sql "CREATE TABLE db.t (id bigint) USING iceberg" --sql "SELECT * FROM db.t"
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts in the work tree

import argparse  # noqa: E402
import json

import cli
import spark_session
from canonical_json import encode_rows


def _statements(args: argparse.Namespace) -> list[str]:
    if args.sql:
        return args.sql
    text = open(args.file).read() if args.file else sys.stdin.read()
    statements = json.loads(text)
    if not isinstance(statements, list) or not all(isinstance(s, str) for s in statements):
        raise ValueError("the statements file/stdin must be a JSON array of SQL strings")
    return statements


def run_statements(args: argparse.Namespace) -> dict:
    statements = _statements(args)
    if not statements:
        raise ValueError("no SQL statements given (use --sql, --file or a JSON array on stdin)")
    spark = spark_session.build_session(args, "sluice-interop-sql")
    results = []
    for index, sql in enumerate(statements):
        try:
            df = spark.sql(sql)
            schema = spark_session.schema_columns(df.schema)
            rows = spark_session.collect(df) if schema else []
        except Exception as err:
            if args.continue_on_error:
                results.append({"sql": sql, "error": f"{type(err).__name__}: {' '.join(str(err).split())}"})
                continue
            raise RuntimeError(f"statement {index + 1} of {len(statements)} failed: {sql!r}: {err}") from err
        results.append({"sql": sql, "schema": schema, "rows": encode_rows(rows, schema, None)})
    return {"engine": "spark", "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="spark_sql.py", description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    spark_session.add_spark_catalog_args(parser)
    parser.add_argument("--sql", action="append", help="a statement; repeat for several (run in order)")
    parser.add_argument("--file", help="a JSON array of statements (default: stdin when no --sql)")
    parser.add_argument(
        "--continue-on-error",
        action="store_true",
        help='record a failing statement as {"sql", "error"} and go on (default: stop and exit 1)',
    )
    cli.run("spark_sql.py", parser, run_statements)


if __name__ == "__main__":
    main()
