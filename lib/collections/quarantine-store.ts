/**
 * The collections quarantine: records an operator can read and replay, as JSON Lines part files under a prefix in
 * the object store (`<prefix>/part-<time>-<id>.jsonl`). Each append writes a new part file, so concurrent writers
 * never touch the same object; a writer that passes a stable `partName` (e.g. the activity id and stage) makes a
 * retried append a no-op, because the part is created only if absent.
 */
import { randomUUID } from 'node:crypto';
import type { FileIO } from '../storage/file-io.js';
import { CollectionsError } from './errors.js';
import type { CollectionsQuarantineRecord } from './types.js';

function partPrefix(prefix: string): string {
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** Options of {@link appendQuarantine}. */
export interface AppendQuarantineOptions {
  /** A stable part name (letters, digits, `.`, `_`, `-`): a retried append with the same name writes nothing. @default a fresh one */
  partName?: string;
  /** @default new Date() */
  now?: Date;
}

/** Writes `records` as a new part file under `prefix`; returns its URI, or undefined when there is nothing to write. */
export async function appendQuarantine(
  io: FileIO,
  prefix: string,
  records: readonly CollectionsQuarantineRecord[],
  opts: AppendQuarantineOptions = {},
): Promise<string | undefined> {
  if (records.length === 0) return undefined;
  if (opts.partName !== undefined && !/^[A-Za-z0-9._-]{1,200}$/.test(opts.partName)) {
    throw new CollectionsError('invalid-option', `quarantine part name ${JSON.stringify(opts.partName)} is unusable`);
  }
  const time = (opts.now ?? new Date()).toISOString().replace(/[-:.]/g, '');
  const name = opts.partName ?? `${time}-${randomUUID()}`;
  const uri = `${partPrefix(prefix)}part-${name}.jsonl`;
  await io.writeIfAbsent(uri, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return uri;
}

/** Every record under `prefix`, part by part in name order. @throws CollectionsError `corrupt-file` on a bad line. */
export async function readQuarantine(io: FileIO, prefix: string): Promise<CollectionsQuarantineRecord[]> {
  const uris: string[] = [];
  for await (const f of io.list(partPrefix(prefix))) if (/\/part-[^/]+\.jsonl$/.test(f.uri)) uris.push(f.uri);
  uris.sort();
  const out: CollectionsQuarantineRecord[] = [];
  for (const uri of uris) {
    const lines = Buffer.from(await io.read(uri))
      .toString('utf8')
      .split('\n');
    lines.forEach((line, n) => {
      if (line.trim() === '') return;
      try {
        const record = JSON.parse(line) as CollectionsQuarantineRecord;
        if (typeof record.itemId !== 'string' || typeof record.reason !== 'string') throw new Error('not a record');
        out.push(record);
      } catch (err) {
        throw new CollectionsError(
          'corrupt-file',
          `quarantine part ${uri} line ${n + 1} cannot be read: ${(err as Error).message}`,
        );
      }
    });
  }
  return out;
}
