import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, sluiceEnv } from '../config.js';

/** A required program that is not installed; the message says how to get it. */
export class ToolMissingError extends Error {
  override readonly name = 'ToolMissingError';
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The Temporal CLI: `TEMPORAL_CLI_PATH`, then a `temporal` on PATH, then the one `scripts/setup.sh` put in
 * `.tools/venv`.
 */
export function findTemporalCli(): string {
  const fromEnv = sluiceEnv.temporalCliPath;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new ToolMissingError(`TEMPORAL_CLI_PATH=${fromEnv} does not exist`);
    return fromEnv;
  }
  const found = onPath('temporal') ?? [path.join(REPO_ROOT, '.tools/venv/bin/temporal')].find((p) => existsSync(p));
  if (!found) {
    throw new ToolMissingError(
      'the Temporal CLI was not found (TEMPORAL_CLI_PATH, PATH, .tools/venv/bin/temporal); run `npm run setup`',
    );
  }
  return found;
}

/** The directory holding PostgreSQL's server programs (initdb, pg_ctl, postgres). */
export function findPostgresBinDir(): string {
  const candidates: string[] = [];
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => path.join(root, v, 'bin')));
  }
  const initdb = onPath('initdb');
  if (initdb) candidates.unshift(path.dirname(initdb));
  const dir = candidates.find((d) => existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'pg_ctl')));
  if (!dir)
    throw new ToolMissingError('PostgreSQL server programs (initdb, pg_ctl) were not found; run `npm run setup`');
  return dir;
}

/** The s3proxy jar that `scripts/setup.sh` fetched from Maven Central, or `SLUICE_S3PROXY_JAR`. */
export function findS3ProxyJar(): string {
  if (sluiceEnv.s3proxyJar) {
    if (!existsSync(sluiceEnv.s3proxyJar)) {
      throw new ToolMissingError(`SLUICE_S3PROXY_JAR=${sluiceEnv.s3proxyJar} does not exist`);
    }
    return sluiceEnv.s3proxyJar;
  }
  const dir = path.join(REPO_ROOT, '.tools/s3proxy');
  const jar = existsSync(dir)
    ? readdirSync(dir).find((f) => /^s3proxy-.*-jar-with-dependencies\.jar$/.test(f))
    : undefined;
  if (!jar) throw new ToolMissingError('the s3proxy jar was not found in .tools/s3proxy; run `npm run setup`');
  return path.join(dir, jar);
}

/** `java` on PATH. */
export function findJava(): string {
  const java = onPath('java');
  if (!java) throw new ToolMissingError('java (17+) was not found on PATH; install a JDK 17+');
  return java;
}

/** True when this process runs as root (PostgreSQL must then run as another user). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The uid/gid of a local user, from /etc/passwd. */
export function lookupUser(name: string): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}
