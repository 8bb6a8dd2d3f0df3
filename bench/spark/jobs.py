"""The Spark benchmark suite (bench/spark/run.ts): one PySpark script, one job per name, each with its own memory
profile. Two heavy skewed jobs hold one huge group on one executor's heap (collect_list buffers are not tracked by
Spark's memory manager, so they cannot spill: too small an executor dies with java.lang.OutOfMemoryError); the
others are light or spill-capable. The strings are long and repetitive, so the shuffles compress well and the heavy
jobs cost heap, not disk or CPU. Usage: jobs.py JOB"""
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

job = sys.argv[1]
spark = SparkSession.builder.appName(f"bench-{job}").getOrCreate()
spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")

if job == "collect-list-skew":
    # Heavy: every row under one key, ~700 MB of strings in one task's collect_list buffer. Measured: OOM at 1g,
    # succeeds at 2g.
    rows = spark.range(0, 70_000, numPartitions=4).select(
        F.lit(1).alias("k"), F.concat(F.col("id").cast("string"), F.expr("repeat('x', 10000)")).alias("s")
    )
    result = rows.groupBy("k").agg(F.size(F.collect_list("s")).alias("n")).collect()[0][0]
elif job == "skewed-join":
    # Heavy: 90% of the fact rows share one key; after the sort-merge join the hot key's payloads (~180 MB) are
    # collected into one list in one task, next to the join's sort buffers. Measured: OOM at 2g, succeeds at 3g.
    facts = spark.range(0, 20_000, numPartitions=4).select(
        F.when(F.col("id") % 10 < 9, F.lit(0)).otherwise(F.col("id")).alias("k"),
        F.concat(F.col("id").cast("string"), F.expr("repeat('p', 10000)")).alias("payload"),
    )
    dims = spark.range(0, 20_000, numPartitions=2).select(F.col("id").alias("k"), F.lit("dim").alias("d"))
    out = facts.join(dims, "k").groupBy("k").agg(F.collect_list("payload").alias("p")).select(F.size("p").alias("n"))
    result = out.agg(F.max("n")).collect()[0][0]
elif job == "large-aggregation":
    # Many keys, each collecting a list of strings: the aggregation buffers live on the heap, but spread over keys.
    rows = spark.range(0, 400_000, numPartitions=4).select(
        (F.col("id") % 2000).alias("k"), F.expr("repeat('a', 300)").alias("s")
    )
    result = rows.groupBy("k").agg(F.collect_list("s").alias("l")).select(F.sum(F.size("l"))).collect()[0][0]
elif job == "wide-shuffle":
    rows = spark.range(0, 2_000_000, numPartitions=4).select(
        F.col("id"), (F.col("id") * 7919 % 100_003).alias("k"), F.expr("sha2(cast(id as string), 256)").alias("h")
    )
    result = rows.repartition(64, "k").sortWithinPartitions("h").select(F.count("*")).collect()[0][0]
elif job == "explode":
    base = spark.range(0, 20_000, numPartitions=4).select(
        F.col("id"), F.expr("sequence(1, 150)").alias("xs"), F.expr("repeat('e', 40)").alias("tag")
    )
    result = (
        base.select("id", F.explode("xs").alias("x"), "tag")
        .groupBy((F.col("x") % 10).alias("b"))
        .agg(F.collect_list(F.concat("tag", F.col("id").cast("string"))).alias("l"))
        .select(F.sum(F.size("l")))
        .collect()[0][0]
    )
elif job == "small-sum":
    result = spark.range(0, 1_000_000, numPartitions=4).selectExpr("sum(id % 7)").collect()[0][0]
elif job == "small-sql":
    spark.range(0, 50_000, numPartitions=2).selectExpr("id", "id % 13 as g").createOrReplaceTempView("t")
    result = spark.sql("select g, count(*) c, avg(id) a from t group by g order by g").count()
else:
    raise ValueError(f"unknown bench job {job!r}")

print(f"RESULT {job}={result}")
spark.stop()
