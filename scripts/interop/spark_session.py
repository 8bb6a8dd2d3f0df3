"""A lean local Spark session with an Iceberg JdbcCatalog on the shared SQLite/PostgreSQL catalog database.

One JVM per script run: local[2] (the CI machine has two cores), no UI, two shuffle partitions, UTC session time
zone, WARN logging on stderr, and the Iceberg/JDBC jars from .tools/jars through spark.jars (never Ivy/--packages).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import cli
from canonical_json import CanonicalType

HERE = Path(__file__).resolve().parent
JARS_DIR = Path(os.environ.get("SLUICE_SPARK_JARS_DIR", HERE.parent.parent / ".tools" / "jars"))
REQUIRED_JARS = ("iceberg-spark-runtime-4.1_2.13-", "iceberg-aws-bundle-", "sqlite-jdbc-", "postgresql-")


def _jars() -> list[str]:
    found = sorted(JARS_DIR.glob("*.jar")) if JARS_DIR.is_dir() else []
    jars = []
    for prefix in REQUIRED_JARS:
        match = [j for j in found if j.name.startswith(prefix)]
        if not match:
            raise FileNotFoundError(f"no {prefix}*.jar in {JARS_DIR}; run `npm run setup` to fetch the Spark jars")
        jars.append(str(match[-1]))
    return jars


def _prepare_environment() -> None:
    import pyspark

    # SPARK_HOME is the pip package; SPARK_SCALA_VERSION must be visible to the driver or any executor launch fails
    # with "Cannot find any build directories" (docs/interop.md).
    os.environ["SPARK_HOME"] = os.path.dirname(pyspark.__file__)
    os.environ.setdefault("SPARK_SCALA_VERSION", "2.13")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # PySpark turns timestamps into Python datetimes in the process's local zone; pin it to UTC like the session.
    os.environ["TZ"] = "UTC"
    time.tzset()


def build_session(args: argparse.Namespace, app_name: str):
    _prepare_environment()
    from pyspark.sql import SparkSession

    name = args.catalog_name
    jdbc = cli.jdbc_target(args.catalog_uri)
    prefix = f"spark.sql.catalog.{name}"
    conf: dict[str, str] = {
        "spark.jars": ",".join(_jars()),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": os.environ.get("SLUICE_SPARK_DRIVER_MEMORY", "1g"),
        # C1-only JIT and the serial GC: these JVMs live for seconds on tiny tables, where C2 compilation threads
        # only compete for the two cores (measured ~30% faster start-to-result on the CI machine).
        "spark.driver.extraJavaOptions": (
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
        ),
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.defaultCatalog": name,
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "jdbc",
        f"{prefix}.uri": jdbc.url,
        f"{prefix}.warehouse": args.warehouse,
    }
    if jdbc.user:
        conf[f"{prefix}.jdbc.user"] = jdbc.user
    if jdbc.password:
        conf[f"{prefix}.jdbc.password"] = jdbc.password
    s3 = cli.s3_options(args)
    if s3:
        conf.update(
            {
                f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
                f"{prefix}.s3.endpoint": s3.endpoint,
                f"{prefix}.s3.path-style-access": "true",
                f"{prefix}.s3.access-key-id": s3.access_key_id,
                f"{prefix}.s3.secret-access-key": s3.secret_access_key,
                f"{prefix}.client.region": s3.region,
            }
        )
    builder = SparkSession.builder.master("local[2]").appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def add_spark_catalog_args(parser: argparse.ArgumentParser) -> None:
    cli.add_catalog_args(parser, warehouse_required=True)


def canonical_type(spark_type: Any) -> CanonicalType:
    from pyspark.sql import types as T

    if isinstance(spark_type, T.StructType):
        return {
            "type": "struct",
            "fields": [
                {"name": f.name, "type": canonical_type(f.dataType), "required": not f.nullable} for f in spark_type.fields
            ],
        }
    if isinstance(spark_type, T.ArrayType):
        return {
            "type": "list",
            "element": canonical_type(spark_type.elementType),
            "element-required": not spark_type.containsNull,
        }
    if isinstance(spark_type, T.MapType):
        return {
            "type": "map",
            "key": canonical_type(spark_type.keyType),
            "value": canonical_type(spark_type.valueType),
            "value-required": not spark_type.valueContainsNull,
        }
    if isinstance(spark_type, T.DecimalType):
        return f"decimal({spark_type.precision}, {spark_type.scale})"
    # Spark has no uuid or fixed: Iceberg's Spark reader gives them as string and binary.
    simple = [
        (T.BooleanType, "boolean"),
        (T.ByteType, "int"),
        (T.ShortType, "int"),
        (T.IntegerType, "int"),
        (T.LongType, "long"),
        (T.FloatType, "float"),
        (T.DoubleType, "double"),
        (T.DateType, "date"),
        (T.TimestampNTZType, "timestamp"),
        (T.TimestampType, "timestamptz"),
        (T.StringType, "string"),
        (T.BinaryType, "binary"),
    ]
    for cls, name in simple:
        if isinstance(spark_type, cls):
            return name
    raise ValueError(f"Spark type {spark_type.simpleString()} has no canonical encoding (see docs/interop.md)")


def schema_columns(struct: Any) -> list[dict[str, Any]]:
    return [{"name": f.name, "type": canonical_type(f.dataType), "required": not f.nullable} for f in struct.fields]


def collect(df: Any) -> list[dict[str, Any]]:
    """Rows as Arrow to_pylist() dicts: exact microseconds and decimals, same Python shapes as the other engines."""
    return df.toArrow().to_pylist()
