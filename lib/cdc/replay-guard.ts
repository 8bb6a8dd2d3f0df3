import type pg from 'pg';
import type { Schema } from '../iceberg/types.js';
import type { FileIO } from '../storage/file-io.js';
import {
  changeFileOrigin,
  compareChangeFiles,
  parseChangeFileName,
  parseChangeLine,
  partitionKey,
  readChangeFileLines,
  type ChangeFileName,
} from './debezium-files.js';
import { SLUICE_SOURCE_VERSION, type ChangeEvent, type DebeziumRow } from './envelope.js';
import { formatLsn } from './lsn.js';
import { pgTextToIceberg } from './pg-types.js';
import { quoteIdent, quoteTable, type TableName } from './source-schema.js';

/**
 * Replaying a quarantined change must not overwrite a newer change of the same key. The Iceberg table keeps no
 * per-key LSN, and a newer change can leave no trace in it at all (a delete of a key whose quarantined insert never
 * arrived deletes nothing), so the judge is the source table itself: every change of the key after the quarantined
 * one is committed there, applied to Iceberg since or still in the slot. A replayed change is current only when
 * the source row of its key still says what it says: for an insert or update, the row exists and every column the
 * change carries has the same value (unchanged TOASTed columns are not compared); for a delete, the row is gone.
 * Otherwise a newer change exists: the record is skipped, with the reason, and never applied. (A key changed and
 * changed back to the same values reads as current: applying it gives the same row as the newest change.)
 *
 * Only pgoutput events (`pg-text`) are judged here; change-file events are judged by the files themselves, in
 * {@link findStaleFileReplays}.
 */

/** Why a replayed change is older than the newest change of its key. */
export interface StaleReplay {
  /** Index of the event in the list given to {@link findStaleReplays}. */
  readonly index: number;
  readonly reason: string;
}

/** A source row by its columns' text output, `undefined` when the key has no row. */
type SourceRow = Map<string, string | null> | undefined;

/**
 * The events of `table` (in the order given) that a newer change of their key supersedes at the source; reads the
 * source rows of their keys with `client` (one query per distinct key).
 */
export async function findStaleReplays(
  client: pg.ClientBase,
  table: TableName,
  schema: Schema,
  events: readonly ChangeEvent[],
): Promise<StaleReplay[]> {
  const keyNames = schema.identifierFieldIds.map((id) => schema.fields.find((f) => f.id === id)!.name);
  const fields = new Map(schema.fields.map((f) => [f.name, f]));
  const columns = await sourceColumns(client, table);
  const rows = new Map<string, SourceRow>();
  const rowOf = async (key: readonly string[]): Promise<SourceRow> => {
    const id = JSON.stringify(key);
    if (!rows.has(id)) rows.set(id, await readSourceRow(client, table, columns, keyNames, key));
    return rows.get(id);
  };
  const stale: StaleReplay[] = [];
  for (const [index, event] of events.entries()) {
    if (event.encoding !== 'pg-text' || event.envelope.source.version !== SLUICE_SOURCE_VERSION) continue;
    const { op, before, after } = event.envelope;
    if (op === 't') continue;
    const at = `change at ${formatLsn(event.position.changeLsn)} (commit ${formatLsn(event.position.commitLsn)})`;
    const newer = (what: string) =>
      stale.push({ index, reason: `a newer change of the key supersedes this ${at}: ${what}` });
    if (op === 'd') {
      const key = keyText(before, keyNames);
      if (key && (await rowOf(key))) newer('the source holds the key again (inserted after the delete)');
      continue;
    }
    const key = keyText(after, keyNames);
    if (!key) continue; // a null key: the collapse quarantines it again
    // An update that moved the key: the old key must still be gone.
    const oldKey = op === 'u' ? keyText(before, keyNames) : undefined;
    if (oldKey && JSON.stringify(oldKey) !== JSON.stringify(key) && (await rowOf(oldKey))) {
      newer(`the old key ${JSON.stringify(oldKey)} exists at the source again`);
      continue;
    }
    const row = await rowOf(key);
    if (!row) {
      newer('the source deleted the key since');
      continue;
    }
    for (const [name, text] of Object.entries(after!)) {
      if (event.unchangedColumns.includes(name) || !row.has(name)) continue;
      const field = fields.get(name);
      if (!sameValue(field?.type, text as string | null, row.get(name)!)) {
        newer(`column "${name}" has another value at the source now`);
        break;
      }
    }
  }
  return stale;
}

/** The key's values as text from an image, `undefined` when the image lacks one (or has a null). */
function keyText(row: DebeziumRow | null, keyNames: readonly string[]): string[] | undefined {
  if (!row) return undefined;
  const out: string[] = [];
  for (const name of keyNames) {
    const value = row[name];
    if (typeof value !== 'string') return undefined;
    out.push(value);
  }
  return out;
}

async function sourceColumns(client: pg.ClientBase, table: TableName): Promise<string[]> {
  const result = await client.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [quoteTable(table)],
  );
  return result.rows.map((r) => r.name);
}

async function readSourceRow(
  client: pg.ClientBase,
  table: TableName,
  columns: readonly string[],
  keyNames: readonly string[],
  key: readonly string[],
): Promise<SourceRow> {
  // Text output of every column, as pgoutput sends it; the key as text parameters that the server casts to the
  // column types (so the primary key's index serves the lookup).
  const select = columns.map((c, i) => `${quoteIdent(c)}::text AS c${i}`).join(', ');
  const where = keyNames.map((k, i) => `${quoteIdent(k)} = $${i + 1}`).join(' AND ');
  const result = await client.query<Record<string, string | null>>(
    `SELECT ${select} FROM ${quoteTable(table)} WHERE ${where}`,
    [...key],
  );
  const found = result.rows[0];
  if (!found) return undefined;
  return new Map(columns.map((c, i) => [c, found[`c${i}`] ?? null]));
}

/** Whether two text outputs of a column hold the same value: the same text, or the same Iceberg value. */
function sameValue(
  type: Parameters<typeof pgTextToIceberg>[0] | undefined,
  a: string | null,
  b: string | null,
): boolean {
  if (a === b) return true;
  if (a === null || b === null || type === undefined) return false;
  try {
    return canonical(pgTextToIceberg(type, a)) === canonical(pgTextToIceberg(type, b));
  } catch {
    return false;
  }
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );
}

/**
 * The change-file events (in the order given) of `table` that a later change of their key in the change files
 * supersedes. A change file source has no database to ask, but its files are the log: a quarantined event at
 * `<file>:<line>` is stale when an event for the same table and key comes after it in the same topic partition
 * (Kafka keeps one key in one partition, in order), whether that later event is merged already or still above the
 * high-water mark (it will be, and it wins). Reads every file of those partitions from the earliest replayed
 * event's file on, so a replay costs one pass over the log written since its oldest record.
 */
export async function findStaleFileReplays(
  io: Pick<FileIO, 'list' | 'read'>,
  prefix: string,
  table: TableName,
  keyNames: readonly string[],
  events: readonly ChangeEvent[],
): Promise<StaleReplay[]> {
  // Each target's keys: its own, and for an update that moved the key the old one too (replaying it deletes the old
  // key's row, so a later re-insert of that key makes it stale as well).
  const targets: { index: number; file: ChangeFileName; line: number; keys: string[] }[] = [];
  const from = new Map<string, bigint>();
  for (const [index, event] of events.entries()) {
    if (event.encoding !== 'debezium-json') continue;
    const at = changeFileOrigin(event.origin);
    const keys = fileEventKeys(event, table, keyNames);
    if (!at || keys.length === 0) continue;
    targets.push({ index, ...at, keys });
    const partition = partitionKey(at.file);
    const earliest = from.get(partition);
    if (earliest === undefined || at.file.startOffset < earliest) from.set(partition, at.file.startOffset);
  }
  if (targets.length === 0) return [];
  const files: ChangeFileName[] = [];
  for await (const info of io.list(prefix)) {
    const name = parseChangeFileName(info.uri);
    const earliest = name ? from.get(partitionKey(name)) : undefined;
    if (name && earliest !== undefined && name.startOffset >= earliest) files.push(name);
  }
  files.sort(compareChangeFiles);
  const listed = new Set(files.map((f) => f.uri));
  // The last change of each wanted key per partition: files in key order, lines in order, so the last seen wins.
  const wanted = new Set(targets.flatMap((t) => t.keys));
  const last = new Map<string, { file: ChangeFileName; line: number; op: string }>();
  for (const file of files) {
    const lines = await readChangeFileLines(io, file);
    lines.forEach((text, i) => {
      const line = text.trim();
      if (line === '' || line === 'null') return;
      let event: ChangeEvent;
      try {
        event = parseChangeLine(line, `${file.uri}:${i + 1}`, 0);
      } catch {
        return; // a broken line is the quarantine's business, not a change of any key
      }
      // An update that moved the key is also the last change of its old key (it deleted that row).
      for (const key of fileEventKeys(event, table, keyNames)) {
        if (wanted.has(key)) last.set(`${partitionKey(file)} ${key}`, { file, line: i + 1, op: event.envelope.op });
      }
    });
  }
  const stale: StaleReplay[] = [];
  for (const t of targets) {
    if (!listed.has(t.file.uri)) {
      // Sink retention removes the oldest files first: with the record's own file gone, the log after it may be
      // gone too, and "no later change found" would prove nothing. Not applied, rather than maybe going back.
      stale.push({
        index: t.index,
        reason: `its change file ${t.file.uri} is no longer listed, so later changes of the key cannot be checked`,
      });
      continue;
    }
    for (const key of t.keys) {
      const latest = last.get(`${partitionKey(t.file)} ${key}`);
      if (!latest) continue;
      const order = compareChangeFiles(latest.file, t.file);
      if (order > 0 || (order === 0 && latest.line > t.line)) {
        stale.push({
          index: t.index,
          reason:
            `a later change of the key (op ${latest.op} at ${latest.file.uri}:${latest.line}) supersedes this ` +
            `change at ${t.file.uri}:${t.line}`,
        });
        break;
      }
    }
  }
  return stale;
}

/** The key of a change-file event of `table` (from the before-image for a delete), or `undefined`. */
function fileEventKey(event: ChangeEvent, table: TableName, keyNames: readonly string[]): string | undefined {
  const { op, before, after, source } = event.envelope;
  if (op === 't' || source.schema !== table.schema || source.table !== table.table) return undefined;
  return imageKey(op === 'd' ? before : after, keyNames);
}

/** Every key a change-file event of `table` changes: its own, and for an update that moved the key, the old one. */
function fileEventKeys(event: ChangeEvent, table: TableName, keyNames: readonly string[]): string[] {
  const own = fileEventKey(event, table, keyNames);
  if (own === undefined) return [];
  const old = event.envelope.op === 'u' ? imageKey(event.envelope.before, keyNames) : undefined;
  return old !== undefined && old !== own ? [own, old] : [own];
}

function imageKey(image: DebeziumRow | null, keyNames: readonly string[]): string | undefined {
  if (!image) return undefined;
  const values: unknown[] = [];
  for (const name of keyNames) {
    const value = image[name];
    if (value === null || value === undefined) return undefined;
    values.push(value);
  }
  return canonical(values);
}
