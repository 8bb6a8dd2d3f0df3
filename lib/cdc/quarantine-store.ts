import { createHash } from 'node:crypto';
import type { FileIO } from '../storage/file-io.js';
import { parseChangeLine } from './debezium-files.js';
import { SLUICE_SOURCE_VERSION, UNAVAILABLE_VALUE_PLACEHOLDER, type ChangeEvent } from './envelope.js';
import { parseLsn } from './lsn.js';
import { quarantineToJsonLines, type QuarantineRecord } from './quarantine.js';

/**
 * Where quarantined changes live and how an operator gets them back: JSON lines per source and UTC day under
 * `<warehouse>/_quarantine/<source>/<YYYY-MM-DD>.jsonl` (written by the merge), and an append-only file of replay
 * marks, `<warehouse>/_quarantine/<source>/_replayed.jsonl`, so that the day files are never rewritten for a
 * replay. A record's id is a hash of its origin, error kind, table and raw event, the same identity the merge uses
 * to skip a record it already wrote.
 */

/** The directory of a source's quarantine, ending in `/`. */
export function quarantineDirectory(warehouse: string, sourceName: string): string {
  return `${warehouse.replace(/\/+$/, '')}/_quarantine/${sourceName}/`;
}

/** The day file records quarantined at `nowMs` go to. */
export function quarantineDayFile(warehouse: string, sourceName: string, nowMs: number): string {
  return `${quarantineDirectory(warehouse, sourceName)}${new Date(nowMs).toISOString().slice(0, 10)}.jsonl`;
}

const DAY_FILE = /\/(\d{4}-\d{2}-\d{2})\.jsonl$/;
const MARKS_FILE = '_replayed.jsonl';

/** How many day files back {@link appendQuarantine} looks for a record it is about to write again. */
const DEDUP_DAYS = 2;

/**
 * Appends `records` to the day file of `nowMs`, leaving out those already quarantined (the same origin, which holds
 * a slot event's LSNs or a file's name and line, error kind, table and raw event) in that day's or the day before's
 * file. A retried batch quarantines the same events again, also when the
 * retry runs after UTC midnight, and adds nothing. The merge calls it before the batch's Iceberg commit, so that a
 * crash between the two cannot lose a quarantined event (the retry skips the committed transactions).
 *
 * @returns the day file, or `null` when `records` is empty.
 */
export async function appendQuarantine(
  io: FileIO,
  warehouse: string,
  sourceName: string,
  records: readonly QuarantineRecord[],
  nowMs: number,
): Promise<string | null> {
  if (records.length === 0) return null;
  const uri = quarantineDayFile(warehouse, sourceName, nowMs);
  const seen = new Set<string>();
  let existing = '';
  for (let back = DEDUP_DAYS - 1; back >= 0; back--) {
    const file = quarantineDayFile(warehouse, sourceName, nowMs - back * 86_400_000);
    if (!(await io.exists(file))) continue;
    const text = Buffer.from(await io.read(file)).toString('utf8');
    if (file === uri) existing = text;
    for (const line of text.split('\n')) {
      if (line.trim() !== '') seen.add(sameEventKey(JSON.parse(line) as QuarantineRecord));
    }
  }
  const fresh: QuarantineRecord[] = [];
  for (const record of records) {
    const id = sameEventKey(record);
    if (seen.has(id)) continue;
    seen.add(id);
    fresh.push(record);
  }
  if (fresh.length > 0) await io.write(uri, existing + quarantineToJsonLines(fresh));
  return uri;
}

/**
 * What makes two records the same quarantined event: origin (a slot event's change and commit LSNs, a file's name
 * and line), error kind, table and the raw event without the envelope's top-level `ts_ms`, the time the event was
 * built, which differs between two reads of the same change.
 */
function sameEventKey(record: QuarantineRecord): string {
  let raw = record.raw;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && 'ts_ms' in parsed) {
      const { ts_ms: _builtAt, ...rest } = parsed as Record<string, unknown>;
      raw = JSON.stringify(rest);
    }
  } catch {
    // Not JSON (a broken file line): the raw text as it is.
  }
  return JSON.stringify([record.origin, record.errorKind, record.table ?? '', raw]);
}

/** The stable id of a quarantine record (hex sha256). */
export function quarantineRecordId(record: QuarantineRecord): string {
  return createHash('sha256')
    .update(JSON.stringify([record.origin, record.errorKind, record.table ?? '', record.raw]))
    .digest('hex');
}

/** A replay mark: the record was applied (or superseded) and is no longer pending. */
export interface ReplayMark {
  readonly id: string;
  /** ISO time of the replay. */
  readonly at: string;
  /** `replayed` (applied to Iceberg) or `superseded` (a newer change of the key, or a re-bootstrap, replaced it). */
  readonly outcome: 'replayed' | 'superseded';
  /** The snapshot the replay committed, when it committed one. */
  readonly snapshotId?: string;
  /** Why a `superseded` record was not applied (a newer change of its key, a re-bootstrap). */
  readonly reason?: string;
}

/** One quarantined record with where it is and whether it was replayed. */
export interface QuarantineEntry {
  readonly id: string;
  readonly file: string;
  /** 1-based line in the file. */
  readonly line: number;
  readonly record: QuarantineRecord;
  readonly mark?: ReplayMark;
}

/** Filters of {@link listQuarantine}; every given one must match. */
export interface QuarantineFilter {
  /** Source table, `schema.table`. */
  readonly table?: string;
  /** Engine error kind, e.g. `value-conversion`, `incompatible-schema-change`. */
  readonly errorKind?: string;
  /** Shared failure type, e.g. `InvalidInput`. */
  readonly failureType?: string;
  /** Only these record ids. */
  readonly ids?: readonly string[];
  /** `pending` (not replayed), `done` (replayed or superseded), or `all`. @default 'pending' */
  readonly status?: 'pending' | 'done' | 'all';
}

/** The replay marks of a source, by record id. */
export async function readReplayMarks(
  io: FileIO,
  warehouse: string,
  sourceName: string,
): Promise<Map<string, ReplayMark>> {
  const uri = quarantineDirectory(warehouse, sourceName) + MARKS_FILE;
  const marks = new Map<string, ReplayMark>();
  if (!(await io.exists(uri))) return marks;
  for (const line of Buffer.from(await io.read(uri))
    .toString('utf8')
    .split('\n')) {
    if (line.trim() === '') continue;
    const mark = JSON.parse(line) as ReplayMark;
    marks.set(mark.id, mark);
  }
  return marks;
}

/** Appends replay marks. Only the merge workflow's activities write them, one at a time. */
export async function appendReplayMarks(
  io: FileIO,
  warehouse: string,
  sourceName: string,
  marks: readonly ReplayMark[],
): Promise<void> {
  if (marks.length === 0) return;
  const uri = quarantineDirectory(warehouse, sourceName) + MARKS_FILE;
  const existing = (await io.exists(uri)) ? Buffer.from(await io.read(uri)).toString('utf8') : '';
  await io.write(uri, existing + marks.map((m) => `${JSON.stringify(m)}\n`).join(''));
}

/** The day files of a source's quarantine, oldest first. */
export async function quarantineFiles(io: FileIO, warehouse: string, sourceName: string): Promise<string[]> {
  const files: string[] = [];
  for await (const file of io.list(quarantineDirectory(warehouse, sourceName))) {
    if (DAY_FILE.test(file.uri)) files.push(file.uri);
  }
  return files.sort();
}

/** The source's quarantined records that match `filter`, oldest first. */
export async function listQuarantine(
  io: FileIO,
  warehouse: string,
  sourceName: string,
  filter: QuarantineFilter = {},
): Promise<QuarantineEntry[]> {
  const marks = await readReplayMarks(io, warehouse, sourceName);
  const status = filter.status ?? 'pending';
  const ids = filter.ids ? new Set(filter.ids) : undefined;
  const out: QuarantineEntry[] = [];
  // A record is listed once, where it was first written (older files could hold a copy from a retry).
  const listed = new Set<string>();
  for (const file of await quarantineFiles(io, warehouse, sourceName)) {
    const lines = Buffer.from(await io.read(file))
      .toString('utf8')
      .split('\n');
    lines.forEach((text, index) => {
      if (text.trim() === '') return;
      const record = JSON.parse(text) as QuarantineRecord;
      const id = quarantineRecordId(record);
      const same = sameEventKey(record);
      if (listed.has(same)) return;
      listed.add(same);
      const mark = marks.get(id);
      if (status === 'pending' && mark) return;
      if (status === 'done' && !mark) return;
      if (filter.table !== undefined && record.table !== filter.table) return;
      if (filter.errorKind !== undefined && record.errorKind !== filter.errorKind) return;
      if (filter.failureType !== undefined && record.failureType !== filter.failureType) return;
      if (ids && !ids.has(id)) return;
      out.push({ id, file, line: index + 1, record, ...(mark ? { mark } : {}) });
    });
  }
  return out;
}

/**
 * The change event a quarantine record holds, ready for the collapse again. A pgoutput event (our envelope,
 * `pg-text` values) gets its position back from `source.sequence`; a change-file line keeps its `debezium-json`
 * values and is ordered by `sequence`.
 *
 * @throws ChangeError `invalid-event` when the raw event does not parse (such records cannot be replayed).
 */
export function changeEventFromQuarantine(record: QuarantineRecord, sequence: number): ChangeEvent {
  const parsed = parseChangeLine(record.raw, record.origin, sequence);
  const source = parsed.envelope.source;
  if (source.version !== SLUICE_SOURCE_VERSION) return parsed;
  let commitLsn = 0n;
  let changeLsn = 0n;
  if (typeof source.sequence === 'string') {
    const [commit, change] = JSON.parse(source.sequence) as [string, string];
    commitLsn = BigInt(commit);
    changeLsn = BigInt(change);
  } else if (record.commitLsn) {
    commitLsn = parseLsn(record.commitLsn);
  }
  const after = parsed.envelope.after;
  return {
    envelope: parsed.envelope,
    encoding: 'pg-text',
    // The commit end LSN is not in the envelope; replays bypass the watermark, so 0 (unknown) is enough.
    position: { commitLsn, commitEndLsn: 0n, changeLsn, sequence },
    unchangedColumns: after
      ? Object.entries(after)
          .filter(([, v]) => v === UNAVAILABLE_VALUE_PLACEHOLDER)
          .map(([k]) => k)
      : [],
    origin: record.origin,
  };
}

/**
 * Rewrites the source's quarantine files without the records `drop` selects (compliance: a forgotten key must not
 * survive in the quarantine either). Returns how many records were removed.
 */
export async function removeFromQuarantine(
  io: FileIO,
  warehouse: string,
  sourceName: string,
  drop: (record: QuarantineRecord) => boolean,
): Promise<number> {
  let removed = 0;
  for (const file of await quarantineFiles(io, warehouse, sourceName)) {
    const lines = Buffer.from(await io.read(file))
      .toString('utf8')
      .split('\n');
    const kept = lines.filter((text) => text.trim() !== '' && !drop(JSON.parse(text) as QuarantineRecord));
    const before = lines.filter((text) => text.trim() !== '').length;
    if (kept.length === before) continue;
    removed += before - kept.length;
    await io.write(file, kept.map((l) => `${l}\n`).join(''));
  }
  return removed;
}
