import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, sluiceEnv } from '../config.js';

/**
 * SPARK_HOME: the environment's, else the pyspark package in `.tools/venv` (the pip wheel carries `bin/` and
 * `jars/`, which is all spark-submit needs). `undefined` when neither exists; the submitter then names SPARK_HOME
 * in its error.
 */
export function findSparkHome(): string | undefined {
  if (sluiceEnv.spark.home) return sluiceEnv.spark.home;
  const lib = path.join(REPO_ROOT, '.tools/venv/lib');
  if (!existsSync(lib)) return undefined;
  for (const version of readdirSync(lib)
    .filter((d) => d.startsWith('python'))
    .sort()
    .reverse()) {
    const candidate = path.join(lib, version, 'site-packages/pyspark');
    if (existsSync(path.join(candidate, 'bin/spark-submit'))) return candidate;
  }
  return undefined;
}

/** The Python for PySpark: SLUICE_SPARK_PYTHON or PYSPARK_PYTHON, else the venv's. */
export function findSparkPython(): string | undefined {
  if (sluiceEnv.spark.python) return sluiceEnv.spark.python;
  const venv = path.join(REPO_ROOT, '.tools/venv/bin/python');
  return existsSync(venv) ? venv : undefined;
}
