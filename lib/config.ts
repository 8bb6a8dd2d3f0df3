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
  s3: { endpoint?: string; region: string; credentials?: { accessKeyId: string; secretAccessKey: string } };
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
    s3: readS3(env),
  };
}

/** The environment of this process, read at import. */
export const sluiceEnv: SluiceEnv = readEnv();
