"""Spark's side of the Iceberg benchmarks (bench/iceberg/run.ts), one JVM per process.

  upsert --table T   MERGE INTO T from changes.parquet (update, insert, delete by `op`); the orchestrator times
                     the whole process, JVM start included
  scan --table T     two full scans of T (every column materialized into Spark's `noop` sink), cold then warm,
                     then checksums (untimed) to check what Spark read

The session is scripts/interop/spark_session.py's: local[2], Iceberg JdbcCatalog on the SQLite catalog, the jars
from .tools/jars, C1-only JIT and the serial GC. `--jit c2` drops `-XX:TieredStopAtLevel=1` (full tiered JIT).

Peak memory: the Python driver's own ru_maxrss, and the JVM's, read as getrusage(RUSAGE_CHILDREN).ru_maxrss after
the JVM has exited and been reaped (the JVM is the child pyspark starts; on Linux RUSAGE_CHILDREN reports the
largest reaped descendant's peak, not a sum).
"""

from __future__ import annotations

import time

IMPORTED_AT = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "interop"))

CATALOG_NAME = "sluice_bench"
NAMESPACE = "bench"
COLUMNS = ["name", "amount", "updated_at", "quantity", "active"]


def ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def start_session(args: argparse.Namespace):
    import spark_session
    from pyspark.sql import SparkSession

    if args.jit == "c2":
        original = SparkSession.Builder.config

        def config(self, key=None, value=None, conf=None, *, map=None):  # noqa: A002 - pyspark's own parameter name
            if key == "spark.driver.extraJavaOptions" and isinstance(value, str):
                value = value.replace("-XX:TieredStopAtLevel=1", "").strip()
            return original(self, key, value, conf, map=map)

        SparkSession.Builder.config = config
    session_args = argparse.Namespace(
        catalog_uri=f"sqlite:///{Path(args.catalog).resolve()}",
        catalog_name=CATALOG_NAME,
        warehouse=f"file://{Path(args.warehouse).resolve()}",
        s3_endpoint=None,
        s3_key=None,
        s3_secret=None,
        s3_region="us-east-1",
    )
    return spark_session.build_session(session_args, f"sluice-bench-{args.mode}")


def stop_and_reap(spark) -> dict:
    """Stops Spark, waits for the JVM to exit, and returns the peak RSS of both processes."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    start = time.perf_counter()
    spark.stop()
    if gateway is not None:
        gateway.shutdown()
    if proc is not None:
        # The JVM exits when its stdin closes (pyspark's contract); wait so that its rusage is ours to read.
        proc.stdin.close()
        proc.wait(timeout=60)
    stop_ms = ms_since(start)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    jvm_kib = children.ru_maxrss
    driver_kib = own.ru_maxrss
    return {
        "stopMs": stop_ms,
        "cpuMs": round((own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime) * 1000),
        "jvmCpuMs": round((children.ru_utime + children.ru_stime) * 1000),
        "driverPeakRssMiB": round(driver_kib / 1024, 1),
        "jvmPeakRssMiB": round(jvm_kib / 1024, 1),
        # Both peaks added: an upper bound of the pair's peak (they need not peak at the same moment).
        "peakRssMiB": round((driver_kib + jvm_kib) / 1024, 1),
    }


def upsert(args: argparse.Namespace) -> dict:
    started_ms = round(IMPORTED_AT * 1000 - args.spawned_at) if args.spawned_at else None
    start = time.perf_counter()
    spark = start_session(args)
    session_ms = ms_since(start)
    table = f"{NAMESPACE}.{args.table}"
    changes = (Path(args.data) / "changes.parquet").resolve()
    start = time.perf_counter()
    spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW changes USING parquet OPTIONS (path '{changes}')")
    spark.sql(
        f"""
        MERGE INTO {table} t USING changes s ON t.id = s.id
        WHEN MATCHED AND s.op = 'delete' THEN DELETE
        WHEN MATCHED THEN UPDATE SET {", ".join(f"t.{c} = s.{c}" for c in COLUMNS)}
        WHEN NOT MATCHED AND s.op <> 'delete' THEN INSERT (id, {", ".join(COLUMNS)})
          VALUES (s.id, {", ".join(f"s.{c}" for c in COLUMNS)})
        """
    )
    merge_ms = ms_since(start)
    return {
        "startupMs": started_ms,
        "sessionMs": session_ms,
        "mergeMs": merge_ms,
        **stop_and_reap(spark),
    }


def scan(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    spark = start_session(args)
    session_ms = ms_since(start)
    table = f"{NAMESPACE}.{args.table}"
    times = []
    for _ in range(2):
        start = time.perf_counter()
        spark.table(table).write.format("noop").mode("overwrite").save()
        times.append(ms_since(start))
    row = spark.sql(
        f"SELECT count(*) AS rows, sum(id) AS id_sum, sum(quantity) AS quantity_sum, "
        f"sum(CAST(unix_micros(updated_at) AS DECIMAL(38, 0))) AS updated_at_sum FROM {table}"
    ).collect()[0]
    checksums = {
        "rows": row["rows"],
        "idSum": str(row["id_sum"]),
        "quantitySum": str(row["quantity_sum"]),
        "updatedAtSum": str(row["updated_at_sum"]),
    }
    files = spark.sql(f"SELECT content, count(*) AS n FROM {table}.files GROUP BY content ORDER BY content").collect()
    return {
        "sessionMs": session_ms,
        "coldMs": times[0],
        "warmMs": times[1],
        "checksums": checksums,
        "files": {str(r["content"]): r["n"] for r in files},
        **stop_and_reap(spark),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["upsert", "scan"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--jit", choices=["c1", "c2"], default="c1")
    parser.add_argument("--spawned-at", type=float, help="epoch ms at which the orchestrator spawned this process")
    args = parser.parse_args()
    result = {"upsert": upsert, "scan": scan}[args.mode](args)
    sys.stdout.write(json.dumps({"engine": "spark", "mode": args.mode, "jit": args.jit, **result}) + "\n")


if __name__ == "__main__":
    main()
