import { readFileSync } from 'node:fs';
import { POSTGRES_URI, SOURCE_ENV_REFERENCE, SOURCE_FILE_REFERENCE } from '../../schemas/cdc.js';
import { SourceSecretError } from './errors.js';

/**
 * Where a CDC source's connection string comes from. Workflow inputs are stored in Temporal's history (and shown in
 * its UI), so a source with a password names a reference there instead, which the worker resolves in the activity
 * that connects:
 *
 * | reference | resolves to |
 * |---|---|
 * | `env:NAME` | the worker's environment variable `NAME` |
 * | `file:/path` | the first line of the file (absolute path) on the worker, e.g. a mounted Kubernetes secret |
 * | `postgres://user@host/db` | itself; allowed only without a password (trust, peer, certificate or `.pgpass` / `PGPASSWORD` auth) |
 *
 * A literal connection string with a password (`user:secret@` or `?password=`) is refused by the input schema
 * (`CdcSource` in schemas/cdc.ts, which also holds the reference patterns), so it never reaches a history.
 */

/** Whether `text` is an `env:` or `file:` reference (not a literal connection string). */
export function isSourceReference(text: string): boolean {
  return SOURCE_ENV_REFERENCE.test(text) || SOURCE_FILE_REFERENCE.test(text);
}

/** How references resolve; tests replace them. */
export interface SecretSources {
  env: Readonly<Record<string, string | undefined>>;
  readFile: (path: string) => string;
}

const PROCESS_SOURCES: SecretSources = {
  env: process.env,
  readFile: (path) => readFileSync(path, 'utf8'),
};

/**
 * The connection string a source reference stands for; a literal one is returned as it is. Resolved at each call
 * (an environment lookup or one small file read), so a rotated secret is picked up by the next activity.
 *
 * @throws SourceSecretError (`source-secret`, retryable) when the variable is unset or empty, the file cannot be
 *   read or is empty, or the value is not a `postgres://` URI. Messages name the reference, never the value.
 */
export function resolveSourceConnection(reference: string, sources: SecretSources = PROCESS_SOURCES): string {
  const env = SOURCE_ENV_REFERENCE.exec(reference);
  const file = env ? null : SOURCE_FILE_REFERENCE.exec(reference);
  if (!env && !file) return reference;
  let value: string | undefined;
  if (env) {
    value = sources.env[env[1]!];
    if (value === undefined || value.trim() === '') {
      throw new SourceSecretError(
        reference,
        `the source connection reference "${reference}" does not resolve on this worker: the environment ` +
          `variable ${env[1]} is not set; set it on every worker that runs CDC activities`,
      );
    }
  } else {
    const path = file![1]!;
    try {
      value = sources.readFile(path);
    } catch (err) {
      throw new SourceSecretError(
        reference,
        `the source connection reference "${reference}" does not resolve on this worker: cannot read ${path} ` +
          `(${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  const resolved = value.split(/\r?\n/)[0]!.trim();
  if (!POSTGRES_URI.test(resolved)) {
    throw new SourceSecretError(
      reference,
      `the source connection reference "${reference}" resolves to ${resolved === '' ? 'nothing' : 'something'} ` +
        'that is not a postgres:// connection string',
    );
  }
  return resolved;
}
