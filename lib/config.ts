import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The one module that reads Sluice's environment. Entry points (CLI, workers, benchmarks, test fixtures) import
 * it; workflows never do. Temporal's own connection variables (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
 * `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`, `TEMPORAL_PROFILE`, `TEMPORAL_CONFIG_FILE`) are read by
 * `@temporalio/envconfig`, not here.
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | `SLUICE_CONFIG` | path of the stack description | `<repo>/temporal-dev.yml` |
 * | `SLUICE_STATE_DIR` | where the local stack keeps its files | `<repo>/.sluice` |
 * | `SLUICE_TASK_QUEUE` | base task queue (overrides temporal-dev.yml) | from the file, `sluice` |
 * | `SLUICE_GPU_HOST` | this GPU worker's host name | the machine's host name |
 * | `SLUICE_LOG_LEVEL` | `trace`…`fatal` | `info` |
 * | `SLUICE_CODEC_KEYS` | `id:base64key[,id:base64key…]`, 32-byte AES keys | none (codec off) |
 * | `SLUICE_CODEC_KEY_ID` | which key encrypts new payloads; setting it turns the codec on | none |
 * | `SLUICE_CODEC_AUTH_TOKEN` | bearer token the codec server requires | none |
 * | `TEMPORAL_CLI_PATH` | the `temporal` binary | `.tools/venv/bin/temporal`, then PATH |
 * | `SLUICE_S3PROXY_JAR` | the s3proxy jar | `.tools/s3proxy/…jar` |
 * | `SLUICE_WORKFLOW_BUNDLE` | a prebuilt workflow bundle for the cpu workers | none: bundle from source at start |
 * | `SLUICE_S3_ENDPOINT` | S3 endpoint for an `s3://` warehouse (path-style) | none: AWS's default |
 * | `SLUICE_S3_REGION` | its region | `us-east-1` |
 * | `SLUICE_S3_ACCESS_KEY_ID`, `SLUICE_S3_SECRET_ACCESS_KEY` | its credentials | the AWS SDK's default chain |
 * | `SLUICE_QUOTA_DATABASE_URL` | PostgreSQL of the quota store (cpu workers register the quota activities when set) | none |
 * | `SLUICE_QUOTA_SCHEMA` | its PostgreSQL schema | `sluice_quota` |
 * | `SLUICE_QUOTA_TRUSTED_PRINCIPALS` | comma-separated service principals that may change any quota | `sluice-rightsizer` |
 * | `SLUICE_QUOTA_CLUSTER_CAPACITY` | `memoryMb=N,vcores=N`: Σ guaranteed must stay within it | none (not checked) |
 * | `SLUICE_QUOTA_WEBHOOK_SECRET` | HMAC secret of the quota webhook | none (unsigned) |
 * | `SPARK_HOME` | Spark distribution (or pyspark package dir) holding bin/spark-submit | the pyspark in `.tools/venv` |
 * | `SLUICE_SPARK_HISTORY_URL` | PostgreSQL of the Spark sizing history (cpu workers register the Spark activities when set) | none |
 * | `SLUICE_SPARK_WORK_DIR` | driver logs and event logs of Spark attempts | `<state dir>/spark` |
 * | `SLUICE_SPARK_PYTHON` | Python for PySpark drivers and workers | `.tools/venv/bin/python`, else PYSPARK_PYTHON |
 * | `SLUICE_TEST_CRASH_AT` | TEST ONLY: CDC merge crash points, `after-commit:0.3,…` (lib/cdc/crash-points.ts) | none |
 * | `SLUICE_MODELS` | models a GPU worker loads and warms up at start: `dir@version[,dir@version…]` (dir relative to the repo or absolute) | none (loaded on first use) |
 * | `SLUICE_INFERENCE_PROVIDER` | `auto`, `cpu` or `cuda` (docs/inference.md) | `auto` |
 * | `SLUICE_INFERENCE_INTRA_OP_THREADS`, `SLUICE_INFERENCE_INTER_OP_THREADS` | ONNX Runtime threads per session | 0 (ONNX Runtime's choice) |
 * | `SLUICE_INFERENCE_MAX_BATCH` | most items per `session.run` | 64 |
 * | `SLUICE_INFERENCE_MAX_WAIT_MS` | longest an item waits for its batch to fill | 5 |
 * | `SLUICE_INFERENCE_TOKENIZER_THREADS` | worker threads tokenizing large text requests | 0 (the event loop's thread) |
 * | `SLUICE_GPU_SLOTS` | concurrent GPU activities of this GPU worker (overrides `workers.gpu.hosts[].slots`) | from temporal-dev.yml |
 * | `SLUICE_VLM_URL` | an OpenAI-compatible vision endpoint the demo's collections build uses (docs/collections.md) | none: zero-shot dual encoder |
 * | `SLUICE_VLM_MODEL` | its model name | `default` |
 * | `SLUICE_VLM_API_KEY` | its API key (workers read it; the run names the variable, never the key) | none |
 * | `SLUICE_VLM_PRICE_PER_1K_TOKENS` | USD per 1,000 tokens, for the cost estimate | 0 |
 */

/** Repository root (this file lives in `<root>/lib`). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

export interface SluiceEnv {
  configPath: string;
  stateDir: string;
  taskQueueOverride: string | undefined;
  gpuHost: string | undefined;
  logLevel: LogLevel;
  codecKeys: string | undefined;
  codecKeyId: string | undefined;
  codecAuthToken: string | undefined;
  temporalCliPath: string | undefined;
  s3proxyJar: string | undefined;
  workflowBundle: string | undefined;
  /** TEST ONLY: the CDC kill loop's crash points (`SLUICE_TEST_CRASH_AT`). */
  testCrashAt: string | undefined;
  /** Whether a behind CDC merge reads its next batch ahead (`SLUICE_CDC_PREFETCH=1`; off by default; docs/cdc-pipeline.md). */
  cdcPrefetch: boolean;
  s3: { endpoint?: string; region: string; credentials?: { accessKeyId: string; secretAccessKey: string } };
  /** Spark jobs (docs/spark.md). */
  spark: { home: string | undefined; historyUrl: string | undefined; workDir: string; python: string | undefined };
  /** The inference engine of GPU workers (issue 6, docs/inference.md). */
  inference: {
    models: { path: string; version: string }[];
    provider: 'auto' | 'cpu' | 'cuda';
    intraOpThreads: number;
    interOpThreads: number;
    maxBatch: number;
    maxWaitMs: number;
    tokenizerThreads: number;
    gpuSlots: number | undefined;
  };
  /** The demo's VLM endpoint (issue 7, docs/collections.md); runs name their endpoint in their input. */
  vlm: { url: string | undefined; model: string; apiKeySet: boolean; pricePer1kTokens: number };
  /** The quota store and its dispatch (issue 8, docs/quota.md). */
  quota: {
    databaseUrl: string | undefined;
    schema: string;
    trustedPrincipals: string[];
    clusterCapacity: { memoryMb: number; vcores: number } | undefined;
    webhookSecret: string | undefined;
  };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function readS3(env: NodeJS.ProcessEnv): SluiceEnv['s3'] {
  const endpoint = nonEmpty(env.SLUICE_S3_ENDPOINT);
  const accessKeyId = nonEmpty(env.SLUICE_S3_ACCESS_KEY_ID);
  const secretAccessKey = nonEmpty(env.SLUICE_S3_SECRET_ACCESS_KEY);
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new Error('set both SLUICE_S3_ACCESS_KEY_ID and SLUICE_S3_SECRET_ACCESS_KEY, or neither');
  }
  return {
    ...(endpoint ? { endpoint } : {}),
    region: nonEmpty(env.SLUICE_S3_REGION) ?? 'us-east-1',
    ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
  };
}

function readQuota(env: NodeJS.ProcessEnv): SluiceEnv['quota'] {
  const capacityText = nonEmpty(env.SLUICE_QUOTA_CLUSTER_CAPACITY);
  let clusterCapacity: SluiceEnv['quota']['clusterCapacity'];
  if (capacityText) {
    const m = /^memoryMb=(\d+(?:\.\d+)?),vcores=(\d+(?:\.\d+)?)$/.exec(capacityText.replace(/\s+/g, ''));
    if (!m) {
      throw new Error(`SLUICE_QUOTA_CLUSTER_CAPACITY="${capacityText}" is not "memoryMb=<n>,vcores=<n>"`);
    }
    clusterCapacity = { memoryMb: Number(m[1]), vcores: Number(m[2]) };
  }
  return {
    databaseUrl: nonEmpty(env.SLUICE_QUOTA_DATABASE_URL),
    schema: nonEmpty(env.SLUICE_QUOTA_SCHEMA) ?? 'sluice_quota',
    trustedPrincipals: (nonEmpty(env.SLUICE_QUOTA_TRUSTED_PRINCIPALS) ?? 'sluice-rightsizer')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== ''),
    clusterCapacity,
    webhookSecret: nonEmpty(env.SLUICE_QUOTA_WEBHOOK_SECRET),
  };
}

function readVlm(env: NodeJS.ProcessEnv): SluiceEnv['vlm'] {
  const priceText = nonEmpty(env.SLUICE_VLM_PRICE_PER_1K_TOKENS);
  const price = priceText === undefined ? 0 : Number(priceText);
  if (!Number.isFinite(price) || price < 0) {
    throw new Error(`SLUICE_VLM_PRICE_PER_1K_TOKENS="${priceText}" is not a non-negative number`);
  }
  const url = nonEmpty(env.SLUICE_VLM_URL);
  if (url !== undefined && !/^https?:\/\//.test(url)) throw new Error(`SLUICE_VLM_URL="${url}" is not an http(s) URL`);
  return {
    url,
    model: nonEmpty(env.SLUICE_VLM_MODEL) ?? 'default',
    apiKeySet: nonEmpty(env.SLUICE_VLM_API_KEY) !== undefined,
    pricePer1kTokens: price,
  };
}

function readInference(env: NodeJS.ProcessEnv): SluiceEnv['inference'] {
  const int = (name: string, fallback: number, min: number): number => {
    const text = nonEmpty(env[name]);
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name}="${text}" is not an integer ≥ ${min}`);
    return n;
  };
  const provider = (nonEmpty(env.SLUICE_INFERENCE_PROVIDER) ?? 'auto').toLowerCase();
  if (provider !== 'auto' && provider !== 'cpu' && provider !== 'cuda') {
    throw new Error(`SLUICE_INFERENCE_PROVIDER="${provider}" is not one of auto, cpu, cuda`);
  }
  const models = (nonEmpty(env.SLUICE_MODELS) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((entry) => {
      const at = entry.lastIndexOf('@');
      if (at <= 0 || at === entry.length - 1) {
        throw new Error(`SLUICE_MODELS entry "${entry}" is not "dir@version", e.g. .tools/models/sluice-dual-text/1@1`);
      }
      return { path: path.resolve(REPO_ROOT, entry.slice(0, at)), version: entry.slice(at + 1) };
    });
  return {
    models,
    provider,
    intraOpThreads: int('SLUICE_INFERENCE_INTRA_OP_THREADS', 0, 0),
    interOpThreads: int('SLUICE_INFERENCE_INTER_OP_THREADS', 0, 0),
    maxBatch: int('SLUICE_INFERENCE_MAX_BATCH', 64, 1),
    maxWaitMs: int('SLUICE_INFERENCE_MAX_WAIT_MS', 5, 0),
    tokenizerThreads: int('SLUICE_INFERENCE_TOKENIZER_THREADS', 0, 0),
    gpuSlots: nonEmpty(env.SLUICE_GPU_SLOTS) === undefined ? undefined : int('SLUICE_GPU_SLOTS', 1, 1),
  };
}

/** Reads the environment once; pass `env` to read another map (tests). */
export function readEnv(env: NodeJS.ProcessEnv = process.env): SluiceEnv {
  const level = (nonEmpty(env.SLUICE_LOG_LEVEL) ?? 'info').toLowerCase();
  if (!LOG_LEVELS.includes(level as LogLevel)) {
    throw new Error(`SLUICE_LOG_LEVEL="${level}" is not a level; use one of ${LOG_LEVELS.join(', ')}`);
  }
  return {
    configPath: path.resolve(nonEmpty(env.SLUICE_CONFIG) ?? path.join(REPO_ROOT, 'temporal-dev.yml')),
    stateDir: path.resolve(nonEmpty(env.SLUICE_STATE_DIR) ?? path.join(REPO_ROOT, '.sluice')),
    taskQueueOverride: nonEmpty(env.SLUICE_TASK_QUEUE),
    gpuHost: nonEmpty(env.SLUICE_GPU_HOST),
    logLevel: level as LogLevel,
    codecKeys: nonEmpty(env.SLUICE_CODEC_KEYS),
    codecKeyId: nonEmpty(env.SLUICE_CODEC_KEY_ID),
    codecAuthToken: nonEmpty(env.SLUICE_CODEC_AUTH_TOKEN),
    temporalCliPath: nonEmpty(env.TEMPORAL_CLI_PATH),
    s3proxyJar: nonEmpty(env.SLUICE_S3PROXY_JAR),
    workflowBundle: nonEmpty(env.SLUICE_WORKFLOW_BUNDLE),
    testCrashAt: nonEmpty(env.SLUICE_TEST_CRASH_AT),
    cdcPrefetch: env.SLUICE_CDC_PREFETCH === '1',
    s3: readS3(env),
    quota: readQuota(env),
    vlm: readVlm(env),
    inference: readInference(env),
    spark: {
      home: nonEmpty(env.SPARK_HOME),
      historyUrl: nonEmpty(env.SLUICE_SPARK_HISTORY_URL),
      workDir: path.resolve(
        nonEmpty(env.SLUICE_SPARK_WORK_DIR) ??
          path.join(nonEmpty(env.SLUICE_STATE_DIR) ?? path.join(REPO_ROOT, '.sluice'), 'spark'),
      ),
      python: nonEmpty(env.SLUICE_SPARK_PYTHON) ?? nonEmpty(env.PYSPARK_PYTHON),
    },
  };
}

/** The environment of this process, read at import. */
export const sluiceEnv: SluiceEnv = readEnv();
