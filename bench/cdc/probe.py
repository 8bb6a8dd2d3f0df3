"""The readers' side of the CDC benchmark (bench/cdc/run.ts): pyiceberg polls; pyiceberg, DuckDB, Spark scan.

  probe              poll the table forever: load it, scan `id < 0` (the marker rows), and print one JSON line per
                     poll that saw new markers: {"pollStartMs", "pollEndMs", "snapshotId", "ids": [...]}; a line
                     {"pollMs": …} every 50 polls says how long polls take
  scan               time full scans of the table's current snapshot with one engine (`--engine`):
                       pyiceberg  `load_table()` + `scan().to_arrow()`
                       duckdb     the metadata location from the catalog row + `iceberg_scan(<metadata.json>)`
                                  fetched as an Arrow table (extensions from the offline wheels, as in
                                  scripts/interop/duckdb_read.py)
                       spark      `spark.read.table()` written to the `noop` sink (every column read; the catalog's
                                  table cache is off, so each scan loads the metadata again)
                     one untimed warm-up scan first (imports, JVM/JIT, extension load), then `--repeats` timed scans;
                     prints {"engine", "ms": [...], "rows": n}

A marker counts as visible at the start of the poll that saw it: a reader that began then saw it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def open_table(args: argparse.Namespace):
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(args.catalog_name, uri=f"sqlite:///{args.catalog}", warehouse=args.warehouse)
    return catalog, args.table


def probe(args: argparse.Namespace) -> None:
    from pyiceberg.expressions import LessThan

    catalog, name = open_table(args)
    seen: set[int] = set()
    polls = 0
    durations: list[float] = []
    while True:
        start = time.time()
        try:
            table = catalog.load_table(name)
            snapshot = table.current_snapshot()
            ids = (
                table.scan(row_filter=LessThan("id", 0), selected_fields=("id",))
                .to_arrow()
                .column("id")
                .to_pylist()
            )
        except Exception as err:  # a commit in flight; poll again
            print(json.dumps({"error": str(err)[:300]}), flush=True)
            time.sleep(args.interval_ms / 1000)
            continue
        end = time.time()
        polls += 1
        durations.append((end - start) * 1000)
        fresh = [i for i in ids if i not in seen]
        seen.update(fresh)
        if fresh:
            print(
                json.dumps(
                    {
                        "pollStartMs": start * 1000,
                        "pollEndMs": end * 1000,
                        "snapshotId": str(snapshot.snapshot_id) if snapshot else None,
                        "ids": fresh,
                    }
                ),
                flush=True,
            )
        if polls % 50 == 0:
            print(json.dumps({"pollMs": durations}), flush=True)
            durations = []
        remaining = args.interval_ms / 1000 - (time.time() - start)
        if remaining > 0:
            time.sleep(remaining)


INTEROP = Path(__file__).resolve().parents[2] / "scripts" / "interop"


def scan_pyiceberg(args: argparse.Namespace):
    catalog, name = open_table(args)

    def once() -> int:
        return catalog.load_table(name).scan().to_arrow().num_rows

    return once, lambda scanned: scanned


def scan_duckdb(args: argparse.Namespace):
    sys.path.insert(0, str(INTEROP))
    import duckdb_read

    con = duckdb_read.connect()
    lookup = argparse.Namespace(
        catalog_uri=f"sqlite:///{args.catalog}", catalog_name=args.catalog_name, table=args.table
    )

    def once() -> int:
        metadata = duckdb_read.metadata_from_catalog(lookup)
        sql = f"SELECT * FROM iceberg_scan({duckdb_read._quote(duckdb_read.local_path(metadata))})"
        return con.sql(sql).to_arrow_table().num_rows

    return once, lambda scanned: scanned


def scan_spark(args: argparse.Namespace):
    sys.path.insert(0, str(INTEROP))
    import spark_session

    session_args = argparse.Namespace(
        catalog_uri=f"sqlite:///{args.catalog}",
        catalog_name=args.catalog_name,
        warehouse=args.warehouse,
        s3_endpoint=None,
        s3_key=None,
        s3_secret=None,
        s3_region=None,
    )
    spark = spark_session.build_session(session_args, "sluice-bench-cdc-scan")
    # Set before the catalog is first used: no table cache, so every scan loads the current metadata, as the
    # other engines do; no count pushed down to metadata for the row count below.
    spark.conf.set(f"spark.sql.catalog.{args.catalog_name}.cache-enabled", "false")
    spark.conf.set("spark.sql.iceberg.aggregate-push-down.enabled", "false")
    ident = ".".join(f"`{part}`" for part in [args.catalog_name, *args.table.split(".")])

    def once() -> None:
        # noop: Spark reads every column of every row and writes nothing; no row count comes back.
        spark.read.table(ident).write.format("noop").mode("overwrite").save()

    def rows(_: None) -> int:
        # Untimed: the same read, counted by a scan (aggregate push-down is off, so not from the manifests).
        return spark.read.table(ident).count()

    return once, rows


def scan(args: argparse.Namespace) -> None:
    engines = {"pyiceberg": scan_pyiceberg, "duckdb": scan_duckdb, "spark": scan_spark}
    once, count_rows = engines[args.engine](args)
    warm = once()  # untimed warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        n = once()
        times.append(round((time.perf_counter() - start) * 1000, 1))
        if n != warm:
            raise RuntimeError(f"{args.engine}: a scan read {n} rows, the warm-up {warm}: did the table change?")
    print(json.dumps({"engine": args.engine, "ms": times, "rows": count_rows(warm)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["probe", "scan"])
    parser.add_argument("--catalog", required=True, help="SQLite catalog file")
    parser.add_argument("--catalog-name", required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--interval-ms", type=float, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engine", choices=["pyiceberg", "duckdb", "spark"], default="pyiceberg", help="scan mode")
    args = parser.parse_args()
    if args.mode == "probe":
        probe(args)
    else:
        scan(args)


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(0)
