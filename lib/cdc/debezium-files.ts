import { gunzipSync } from 'node:zlib';
import { isInteger, isSafeNumber, parse } from 'lossless-json';
import type { FileIO } from '../storage/file-io.js';
import {
  UNAVAILABLE_VALUE_PLACEHOLDER,
  type ChangeEvent,
  type ConnectField,
  type DebeziumEnvelope,
  type DebeziumOp,
  type DebeziumRow,
} from './envelope.js';
import { ChangeError, InvalidCdcOptionError } from './errors.js';
import { quarantineRecord, type QuarantineRecord } from './quarantine.js';

/**
 * Debezium change-event files, as Kafka Connect sinks write them (the S3 sink's
 * `topics/<topic>/partition=<n>/<topic>+<n>+<start offset>.json[.gz]`): one JSON change event per line, with or
 * without the Connect schema (`{"schema":…,"payload":…}` with `schemas.enable=true`). Files are read in key order
 * (topic, partition, start offset) and skipped at or below a committed high-water mark per topic partition, which
 * the merge stores in the Iceberg snapshot summary next to the data it came from: that makes re-reading exact.
 */

/** The snapshot summary property that holds the committed high-water mark of change files. */
export const CDC_FILES_WATERMARK_PROPERTY = 'sluice.cdc.files-hwm';

/** What a change file's name says. */
export interface ChangeFileName {
  readonly uri: string;
  readonly topic: string;
  readonly partition: number;
  /** The Kafka offset of the file's first record. */
  readonly startOffset: bigint;
  readonly gzip: boolean;
}

/**
 * The committed high-water mark: for each `<topic>+<partition>`, the start offset (decimal string) of the last
 * file applied. JSON-exact, so it can sit in a snapshot summary or a workflow payload.
 */
export type ChangeFilesWatermark = Readonly<Record<string, string>>;

const FILE_NAME = /^(.+)\+(\d+)\+(\d+)\.(?:json|jsonl)(\.gz)?$/;

/** Parses a sink file name (`orders+0+0000000042.json`); `undefined` for files that are not change files. */
export function parseChangeFileName(uri: string): ChangeFileName | undefined {
  const base = uri.slice(uri.lastIndexOf('/') + 1);
  const m = FILE_NAME.exec(base);
  if (!m) return undefined;
  return {
    uri,
    topic: m[1] as string,
    partition: Number(m[2]),
    startOffset: BigInt(m[3] as string),
    gzip: m[4] !== undefined,
  };
}

/** The watermark key of a file's topic partition. */
export function partitionKey(file: Pick<ChangeFileName, 'topic' | 'partition'>): string {
  return `${file.topic}+${file.partition}`;
}

/** Orders files by topic, partition, then start offset (numerically: offsets are not always zero-padded). */
export function compareChangeFiles(a: ChangeFileName, b: ChangeFileName): number {
  if (a.topic !== b.topic) return a.topic < b.topic ? -1 : 1;
  if (a.partition !== b.partition) return a.partition - b.partition;
  return a.startOffset < b.startOffset ? -1 : a.startOffset > b.startOffset ? 1 : 0;
}

/** Whether the watermark already covers the file (its start offset is at or below the partition's mark). */
export function isCoveredByWatermark(file: ChangeFileName, watermark: ChangeFilesWatermark): boolean {
  const mark = watermark[partitionKey(file)];
  return mark !== undefined && file.startOffset <= BigInt(mark);
}

/** Parses a stored watermark (the summary property's JSON); empty when absent. */
export function parseFilesWatermark(text: string | undefined): ChangeFilesWatermark {
  if (text === undefined || text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidCdcOptionError(CDC_FILES_WATERMARK_PROPERTY, `not JSON: ${text.slice(0, 80)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidCdcOptionError(CDC_FILES_WATERMARK_PROPERTY, 'expected an object of topic+partition → offset');
  }
  for (const [key, offset] of Object.entries(value)) {
    if (typeof offset !== 'string' || !/^\d+$/.test(offset)) {
      throw new InvalidCdcOptionError(CDC_FILES_WATERMARK_PROPERTY, `offset of ${key} must be a decimal string`);
    }
  }
  return value as ChangeFilesWatermark;
}

/** The watermark as JSON with sorted keys, so that equal marks are equal strings. */
export function formatFilesWatermark(watermark: ChangeFilesWatermark): string {
  return JSON.stringify(Object.fromEntries(Object.entries(watermark).sort(([a], [b]) => (a < b ? -1 : 1))));
}

/** Options of {@link readChangeFiles}. */
export interface ReadChangeFilesOptions {
  /** Where the files are: a directory URI ending in `/` (it is listed recursively). */
  readonly prefix: string;
  /** Files at or below it are skipped. @default {} (read everything) */
  readonly watermark?: ChangeFilesWatermark;
  /** Stop after this many files. @default 100 */
  readonly maxFiles?: number;
  /** Stop at the first file end once this many events are read. @default 100000 */
  readonly maxEvents?: number;
}

/** The result of {@link readChangeFiles}. */
export interface ChangeFilesBatch {
  /** Change events in file order, then line order (their `position.sequence`). */
  readonly events: ChangeEvent[];
  /** Lines that could not be parsed as change events. */
  readonly quarantined: QuarantineRecord[];
  /** The files read, whole, in order. */
  readonly files: readonly ChangeFileName[];
  /** The watermark to commit with these events. */
  readonly nextWatermark: ChangeFilesWatermark;
  /** Listed URIs that are not change files (ignored). */
  readonly ignored: readonly string[];
  /** Null lines (Kafka tombstones after deletes), skipped. */
  readonly tombstones: number;
  /** Whether files above the watermark were left for a later batch. */
  readonly cutShort: boolean;
}

/**
 * Reads the next change files above the watermark, whole, in key order.
 *
 * @throws InvalidCdcOptionError for bad limits; FileIO errors (typed by the storage layer) pass through.
 */
export async function readChangeFiles(
  io: Pick<FileIO, 'list' | 'read'>,
  options: ReadChangeFilesOptions,
): Promise<ChangeFilesBatch> {
  const maxFiles = options.maxFiles ?? 100;
  const maxEvents = options.maxEvents ?? 100_000;
  if (!Number.isSafeInteger(maxFiles) || maxFiles < 1) {
    throw new InvalidCdcOptionError('maxFiles', `must be a positive integer, got ${maxFiles}`);
  }
  if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) {
    throw new InvalidCdcOptionError('maxEvents', `must be a positive integer, got ${maxEvents}`);
  }
  const watermark = options.watermark ?? {};
  const candidates: ChangeFileName[] = [];
  const ignored: string[] = [];
  for await (const info of io.list(options.prefix)) {
    const name = parseChangeFileName(info.uri);
    if (!name) ignored.push(info.uri);
    else if (!isCoveredByWatermark(name, watermark)) candidates.push(name);
  }
  candidates.sort(compareChangeFiles);

  const events: ChangeEvent[] = [];
  const quarantined: QuarantineRecord[] = [];
  const files: ChangeFileName[] = [];
  const next: Record<string, string> = { ...watermark };
  let tombstones = 0;
  for (const file of candidates) {
    if (files.length >= maxFiles || events.length >= maxEvents) break;
    const lines = await readChangeFileLines(io, file);
    lines.forEach((line, i) => {
      const text = line.trim();
      if (text === '') return;
      if (text === 'null') {
        tombstones += 1;
        return;
      }
      const origin = `${file.uri}:${i + 1}`;
      try {
        events.push(parseChangeLine(text, origin, events.length));
      } catch (err) {
        quarantined.push(quarantineRecord(err, line, origin));
      }
    });
    files.push(file);
    next[partitionKey(file)] = file.startOffset.toString();
  }
  return {
    events,
    quarantined,
    files,
    nextWatermark: next,
    ignored,
    tombstones,
    cutShort: files.length < candidates.length,
  };
}

/** The lines of a change file (gunzipped when compressed); line `i` is origin line `i + 1`. */
export async function readChangeFileLines(io: Pick<FileIO, 'read'>, file: ChangeFileName): Promise<string[]> {
  let bytes = await io.read(file.uri);
  // Sinks name compressed files `.json.gz`, but the gzip magic number is what counts.
  if (file.gzip || (bytes[0] === 0x1f && bytes[1] === 0x8b)) bytes = gunzipSync(bytes);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').split('\n');
}

/** The file and line of a change-file event's origin (`<file uri>:<line>`); `undefined` for other origins. */
export function changeFileOrigin(origin: string): { file: ChangeFileName; line: number } | undefined {
  const at = origin.lastIndexOf(':');
  const file = at > 0 ? parseChangeFileName(origin.slice(0, at)) : undefined;
  const line = Number(origin.slice(at + 1));
  return file && Number.isSafeInteger(line) && line > 0 ? { file, line } : undefined;
}

const OPS = new Set<DebeziumOp>(['c', 'u', 'd', 'r', 't']);

// Integers beyond 2^53 (int8 columns, LSNs) become bigints instead of losing digits.
function parseNumber(text: string): number | bigint {
  return isInteger(text) && !isSafeNumber(text) ? BigInt(text) : Number(text);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Parses one line of a change file into an event (`debezium-json` values).
 *
 * @throws ChangeError `invalid-event` naming what is wrong.
 */
export function parseChangeLine(line: string, origin: string, sequence: number): ChangeEvent {
  const bad = (problem: string): never => {
    throw new ChangeError('invalid-event', `${origin}: not a Debezium change event: ${problem}`);
  };
  let json: unknown;
  try {
    json = parse(line, undefined, parseNumber);
  } catch (err) {
    return bad(`invalid JSON (${(err as Error).message})`);
  }
  if (!isObject(json)) return bad('expected a JSON object');
  const withSchema = isObject(json.payload) && 'schema' in json;
  const payload = withSchema ? (json.payload as Record<string, unknown>) : json;
  const op = payload.op;
  if (typeof op !== 'string' || !OPS.has(op as DebeziumOp)) return bad(`op must be one of c, u, d, r, t`);
  const source = payload.source;
  if (!isObject(source) || typeof source.schema !== 'string' || typeof source.table !== 'string') {
    return bad('source.schema and source.table are required');
  }
  const before = payload.before ?? null;
  const after = payload.after ?? null;
  if (before !== null && !isObject(before)) return bad('before must be an object or null');
  if (after !== null && !isObject(after)) return bad('after must be an object or null');
  if ((op === 'c' || op === 'r' || op === 'u') && after === null) bad(`op ${op} needs an after image`);
  if (op === 'd' && before === null) bad('op d needs a before image with the key');
  const unchangedColumns = after
    ? Object.entries(after)
        .filter(([, v]) => v === UNAVAILABLE_VALUE_PLACEHOLDER)
        .map(([k]) => k)
    : [];
  const fieldSchemas = withSchema ? rowFieldSchemas(json.schema) : undefined;
  const envelope = {
    ...payload,
    before: before as DebeziumRow | null,
    after: after as DebeziumRow | null,
    op: op as DebeziumOp,
  } as DebeziumEnvelope;
  return {
    envelope,
    encoding: 'debezium-json',
    position: { commitLsn: 0n, commitEndLsn: 0n, changeLsn: 0n, sequence },
    unchangedColumns,
    ...(fieldSchemas ? { fieldSchemas } : {}),
    origin,
  };
}

/** The Connect schemas of the row fields (`after`, else `before`) of an envelope schema. */
function rowFieldSchemas(schema: unknown): ReadonlyMap<string, ConnectField> | undefined {
  if (!isObject(schema) || !Array.isArray(schema.fields)) return undefined;
  const row = (schema.fields as unknown[]).find(
    (f): f is Record<string, unknown> => isObject(f) && (f.field === 'after' || f.field === 'before'),
  );
  if (!row || !Array.isArray(row.fields)) return undefined;
  const out = new Map<string, ConnectField>();
  for (const f of row.fields as unknown[]) {
    if (isObject(f) && typeof f.field === 'string') out.set(f.field, f as unknown as ConnectField);
  }
  return out;
}
