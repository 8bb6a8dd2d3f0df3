"""The Spark benchmark suite (bench/spark/run.ts): one PySpark script, one job per name, each with its own memory
profile. Small data, so the suite runs on a laptop-sized local cluster; the heavy jobs still need several times
the heap of the light ones. Usage: jobs.py JOB"""
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

job = sys.argv[1]
spark = SparkSession.builder.appName(f"bench-{job}").getOrCreate()
spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")

if job == "skewed-join":
    # 90% of the fact rows share one key: one reduce task holds a huge group; the payload is collected per key.
    facts = spark.range(0, 150_000, numPartitions=4).select(
        F.when(F.col("id") % 10 < 9, F.lit(0)).otherwise(F.col("id")).alias("k"),
        F.expr("repeat(cast(id as string), 80)").alias("payload"),
    )
    dims = spark.range(0, 20_000, numPartitions=2).select(F.col("id").alias("k"), F.lit("dim").alias("d"))
    out = facts.join(dims, "k").groupBy("k").agg(F.collect_list("payload").alias("p")).select(F.size("p").alias("n"))
    result = out.agg(F.max("n")).collect()[0][0]
elif job == "large-aggregation":
    # Many keys, each collecting a list of strings: the aggregation buffers live on the heap.
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
