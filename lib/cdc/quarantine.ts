import type { ErrorType } from '../../schemas/error-types.js';
import { CDC_ERROR_KINDS, isCdcError, type CdcErrorKind } from './errors.js';

/**
 * Changes that cannot be decoded or applied (a type mismatch, an unknown table, a null key, an unparsable line) are
 * not dropped and do not stop the pipeline: they become quarantine records, which the merge writes to a quarantine
 * place (JSON lines next to the table) with the raw event, so that an operator can fix and replay them.
 */
export interface QuarantineRecord {
  /** The engine's error kind: `value-conversion`, `null-key`, `unknown-table`, `invalid-event`… */
  readonly errorKind: CdcErrorKind;
  /** The shared failure type of that kind (`InvalidInput`, `Corrupt`…). */
  readonly failureType: ErrorType;
  /** What went wrong, naming the table, column and value. */
  readonly message: string;
  /** The event exactly as received: the file's line, or the envelope as JSON. */
  readonly raw: string;
  /** Where it came from: `slot s at 0/16B3748`, `s3://bucket/topic/…/f.json:12`. */
  readonly origin: string;
  /** `schema.table`, when known. */
  readonly table?: string;
  /** The commit LSN of its transaction (`X/Y`), when known. */
  readonly commitLsn?: string;
}

/** A quarantine record for `err` (a typed CDC error, or anything else as `invalid-event`). */
export function quarantineRecord(
  err: unknown,
  raw: string,
  origin: string,
  extra: { table?: string; commitLsn?: string } = {},
): QuarantineRecord {
  const errorKind: CdcErrorKind = isCdcError(err) ? err.kind : 'invalid-event';
  return {
    errorKind,
    failureType: CDC_ERROR_KINDS[errorKind],
    message: err instanceof Error ? err.message : String(err),
    raw,
    origin,
    ...(extra.table === undefined ? {} : { table: extra.table }),
    ...(extra.commitLsn === undefined ? {} : { commitLsn: extra.commitLsn }),
  };
}

/** The records as JSON lines, the format of the quarantine files. */
export function quarantineToJsonLines(records: readonly QuarantineRecord[]): string {
  return records.map((r) => `${JSON.stringify(r)}\n`).join('');
}
