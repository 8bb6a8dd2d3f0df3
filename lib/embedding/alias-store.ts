/**
 * The alias `<index>@current`: which version of an index queries use. Stored in the object store as a log of
 * generations, `<root>/<index>/alias/<generation>.json`, each written with `writeIfAbsent` (S3 `If-None-Match: *`,
 * an exclusive create on a filesystem). Writing generation g+1 is the compare-and-swap: of two concurrent flips
 * from generation g exactly one creates the file, the other sees `false` and re-reads. The highest generation is
 * the current alias; older ones are the history that `rollback` walks back.
 */
import type { FileIO } from '../storage/file-io.js';
import { EmbeddingError } from './errors.js';

/** One version an alias can point at. */
export interface AliasTarget {
  version: string;
  /** The index directory of that version's build (holds `manifest.json`). */
  indexDir: string;
}

/** One generation of an alias. */
export interface AliasRecord extends AliasTarget {
  index: string;
  generation: number;
  /** Earlier targets, most recent first: what `rollback` returns to. */
  previous: AliasTarget[];
  flippedAt: string;
  /** Who flipped it: a workflow id, or `cli` for a rollback. */
  by: string;
  reason: 'publish' | 'rollback';
}

/** Previous targets kept in each record. */
const HISTORY = 10;

function aliasPrefix(root: string, index: string): string {
  return `${root.replace(/\/+$/, '')}/${index}/alias/`;
}

function generationUri(root: string, index: string, generation: number): string {
  return `${aliasPrefix(root, index)}${String(generation).padStart(12, '0')}.json`;
}

/** The current alias record of `index`, or undefined when it was never published. */
export async function readAlias(io: FileIO, root: string, index: string): Promise<AliasRecord | undefined> {
  let latest: string | undefined;
  for await (const f of io.list(aliasPrefix(root, index))) {
    if (!/\/\d{12}\.json$/.test(f.uri)) continue;
    if (latest === undefined || f.uri > latest) latest = f.uri;
  }
  if (latest === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(await io.read(latest)).toString('utf8')) as AliasRecord;
  } catch (err) {
    throw new EmbeddingError('corrupt-file', `alias record ${latest} cannot be read: ${(err as Error).message}`);
  }
}

/** Options of {@link setAlias}. */
export interface SetAliasOptions {
  /** Fail with `alias-conflict` unless the alias is at this generation (0 = never published). @default any */
  expectedGeneration?: number;
  /** @default 'publish' */
  reason?: AliasRecord['reason'];
  by: string;
  /** When the flip happened. @default now */
  now?: Date;
}

async function writeNext(
  io: FileIO,
  root: string,
  index: string,
  build: (
    current: AliasRecord | undefined,
  ) => Omit<AliasRecord, 'generation' | 'index' | 'flippedAt' | 'by' | 'reason'>,
  opts: SetAliasOptions,
): Promise<AliasRecord> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    const current = await readAlias(io, root, index);
    const generation = (current?.generation ?? 0) + 1;
    if (opts.expectedGeneration !== undefined && opts.expectedGeneration !== generation - 1) {
      throw new EmbeddingError(
        'alias-conflict',
        `alias ${index}@current is at generation ${generation - 1}, not ${opts.expectedGeneration}; someone else ` +
          'changed it meanwhile: read it again (sluice index ls) and retry',
      );
    }
    const record: AliasRecord = {
      ...build(current),
      index,
      generation,
      flippedAt: (opts.now ?? new Date()).toISOString(),
      by: opts.by,
      reason: opts.reason ?? 'publish',
    };
    if (await io.writeIfAbsent(generationUri(root, index, generation), JSON.stringify(record, null, 2))) return record;
  }
  throw new EmbeddingError('alias-conflict', `alias ${index}@current kept changing under 10 compare-and-swap tries`);
}

/**
 * Points `<index>@current` at `target`, keeping the old target first in `previous`. Flipping to the version it
 * already points at (same index directory) changes nothing and returns the current record, so a retried flip is a
 * no-op.
 */
export async function setAlias(
  io: FileIO,
  root: string,
  index: string,
  target: AliasTarget,
  opts: SetAliasOptions,
): Promise<AliasRecord> {
  const current = await readAlias(io, root, index);
  if (current && current.indexDir === target.indexDir && current.version === target.version) return current;
  return writeNext(
    io,
    root,
    index,
    (cur) => ({
      ...target,
      previous: cur ? [{ version: cur.version, indexDir: cur.indexDir }, ...cur.previous].slice(0, HISTORY) : [],
    }),
    opts,
  );
}

/** Points the alias back at its previous target. @throws EmbeddingError `not-found` when there is none. */
export async function rollbackAlias(
  io: FileIO,
  root: string,
  index: string,
  opts: Omit<SetAliasOptions, 'reason'>,
): Promise<AliasRecord> {
  return writeNext(
    io,
    root,
    index,
    (cur) => {
      const back = cur?.previous[0];
      if (!cur || !back) {
        throw new EmbeddingError(
          'not-found',
          cur
            ? `index ${index} has no previous version to roll back to (current: ${cur.version})`
            : `index ${index} has never been published under ${root}`,
        );
      }
      return { ...back, previous: cur.previous.slice(1) };
    },
    { ...opts, reason: 'rollback' },
  );
}

/** Every index under `root` with its current alias. */
export async function listAliases(io: FileIO, root: string): Promise<AliasRecord[]> {
  const prefix = `${root.replace(/\/+$/, '')}/`;
  const indexes = new Set<string>();
  for await (const f of io.list(prefix)) {
    const m = /^([^/]+)\/alias\/\d{12}\.json$/.exec(f.uri.slice(prefix.length));
    if (m) indexes.add(m[1]!);
  }
  const out: AliasRecord[] = [];
  for (const index of [...indexes].sort()) {
    const record = await readAlias(io, root, index);
    if (record) out.push(record);
  }
  return out;
}
