"""pyiceberg's side of the Iceberg benchmarks (bench/iceberg/run.ts), one case per process.

  append --table T   create T (unpartitioned, untimed), then time `table.append` of base.parquet
  upsert --table T   `table.upsert` of the updates and inserts in changes.parquet, then `table.delete` of its deletes
                     (pyiceberg's upsert has no delete op); the orchestrator times the whole process

Prints one JSON line: the phase timings in ms, `cpuMs` (user + system, all threads) and `peakRssMiB`
(getrusage(RUSAGE_SELF).ru_maxrss).
"""

from __future__ import annotations

import time

IMPORTED_AT = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

CATALOG_NAME = "sluice_bench"
NAMESPACE = "bench"


def ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def open_catalog(args: argparse.Namespace):
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        CATALOG_NAME,
        uri=f"sqlite:///{Path(args.catalog).resolve()}",
        warehouse=f"file://{Path(args.warehouse).resolve()}",
        init_catalog_tables="true",
    )


def bench_schema():
    from pyiceberg.schema import Schema
    from pyiceberg.types import (
        BooleanType,
        DoubleType,
        IntegerType,
        LongType,
        NestedField,
        StringType,
        TimestamptzType,
    )

    return Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "amount", DoubleType(), required=False),
        NestedField(4, "updated_at", TimestamptzType(), required=False),
        NestedField(5, "quantity", IntegerType(), required=False),
        NestedField(6, "active", BooleanType(), required=False),
        identifier_field_ids=[1],
    )


def append(args: argparse.Namespace) -> dict:
    import pyarrow.parquet as pq

    catalog = open_catalog(args)
    catalog.create_namespace_if_not_exists(NAMESPACE)
    start = time.perf_counter()
    df = pq.read_table(Path(args.data) / "base.parquet")
    load_ms = ms_since(start)
    table = catalog.create_table(f"{NAMESPACE}.{args.table}", schema=bench_schema())
    start = time.perf_counter()
    cpu_before = cpu_seconds()
    table.append(df)
    append_ms = ms_since(start)
    append_cpu_ms = round((cpu_seconds() - cpu_before) * 1000)
    files = table.inspect.files()
    return {
        "rows": df.num_rows,
        "loadMs": load_ms,
        "appendMs": append_ms,
        "appendCpuMs": append_cpu_ms,
        "dataFiles": files.num_rows,
        "bytes": sum(files.column("file_size_in_bytes").to_pylist()),
    }


def upsert(args: argparse.Namespace) -> dict:
    started_ms = round(IMPORTED_AT * 1000 - args.spawned_at) if args.spawned_at else None
    start = time.perf_counter()
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyiceberg.expressions import In

    import_ms = ms_since(start)
    start = time.perf_counter()
    table = open_catalog(args).load_table(f"{NAMESPACE}.{args.table}")
    load_ms = ms_since(start)
    start = time.perf_counter()
    changes = pq.read_table(Path(args.data) / "changes.parquet")
    is_delete = pc.equal(changes.column("op"), "delete")
    upserts = changes.filter(pc.invert(is_delete)).drop_columns(["op"])
    deleted_ids = changes.filter(is_delete).column("id").to_pylist()
    read_ms = ms_since(start)
    start = time.perf_counter()
    result = table.upsert(upserts)
    upsert_ms = ms_since(start)
    start = time.perf_counter()
    table.delete(In("id", deleted_ids))
    delete_ms = ms_since(start)
    return {
        "startupMs": started_ms,
        "importMs": import_ms,
        "loadTableMs": load_ms,
        "readMs": read_ms,
        "upsertMs": upsert_ms,
        "deleteMs": delete_ms,
        "changes": changes.num_rows,
        "updated": result.rows_updated,
        "inserted": result.rows_inserted,
        "deleted": len(deleted_ids),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["append", "upsert"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--spawned-at", type=float, help="epoch ms at which the orchestrator spawned this process")
    args = parser.parse_args()
    result = {"append": append, "upsert": upsert}[args.mode](args)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpuMs"] = round((usage.ru_utime + usage.ru_stime) * 1000)
    result["peakRssMiB"] = round(usage.ru_maxrss / 1024, 1)
    sys.stdout.write(json.dumps({"engine": "pyiceberg", "mode": args.mode, **result}) + "\n")


if __name__ == "__main__":
    main()
