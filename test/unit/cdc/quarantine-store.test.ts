import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEnvelope, envelopeToJson, UNAVAILABLE_VALUE_PLACEHOLDER } from '../../../lib/cdc/envelope.js';
import { ValueConversionError } from '../../../lib/cdc/errors.js';
import { quarantineRecord, quarantineToJsonLines } from '../../../lib/cdc/quarantine.js';
import {
  appendQuarantine,
  appendReplayMarks,
  changeEventFromQuarantine,
  listQuarantine,
  quarantineDayFile,
  quarantineRecordId,
  removeFromQuarantine,
} from '../../../lib/cdc/quarantine-store.js';
import { LocalFileIO } from '../../../lib/storage/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-quarantine-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const envelope = (id: string, op: 'c' | 'u' = 'c', nowMs = 0) =>
  buildEnvelope({
    op,
    before: null,
    after: { id, note: op === 'u' ? UNAVAILABLE_VALUE_PLACEHOLDER : 'x', at: 'infinity' },
    table: { schema: 'public', table: 'q' },
    db: 'db',
    serverName: 's',
    txId: 7,
    commitLsn: 0x16b3748n,
    changeLsn: 0x16b3700n + BigInt(id),
    commitTimeMicros: 1_700_000_000_000_000n,
    nowMs,
    totalOrder: 1,
  });
const record = (id: string, op: 'c' | 'u' = 'c', nowMs = 0) =>
  quarantineRecord(
    new ValueConversionError('timestamptz', '"infinity"', 'not finite', 'at'),
    envelopeToJson(envelope(id, op, nowMs)),
    `slot s at ${id}`,
    { table: 'public.q', commitLsn: '0/16B3748' },
  );

describe('the quarantine store', () => {
  it('turns a pgoutput record back into a pg-text event with its position and unchanged columns', () => {
    const event = changeEventFromQuarantine(record('5', 'u'), 3);
    expect(event.encoding).toBe('pg-text');
    expect(event.position).toEqual({ commitLsn: 0x16b3748n, commitEndLsn: 0n, changeLsn: 0x16b3705n, sequence: 3 });
    expect(event.unchangedColumns).toEqual(['note']);
    expect(event.envelope.after).toMatchObject({ id: '5', at: 'infinity' });
  });

  it('lists with filters, hides replayed records, and removes records by predicate', async () => {
    const io = new LocalFileIO();
    const warehouse = `file://${dir}`;
    const records = [record('1'), record('2'), { ...record('3'), errorKind: 'null-key' as const, table: 'public.r' }];
    await io.write(quarantineDayFile(warehouse, 'src', Date.UTC(2026, 0, 2)), quarantineToJsonLines(records));
    expect((await listQuarantine(io, warehouse, 'src')).map((e) => e.line)).toEqual([1, 2, 3]);
    expect(
      await listQuarantine(io, warehouse, 'src', { table: 'public.q', errorKind: 'value-conversion' }),
    ).toHaveLength(2);
    await appendReplayMarks(io, warehouse, 'src', [
      { id: quarantineRecordId(records[0]!), at: 'now', outcome: 'replayed' },
    ]);
    expect((await listQuarantine(io, warehouse, 'src')).map((e) => e.line)).toEqual([2, 3]);
    expect((await listQuarantine(io, warehouse, 'src', { status: 'done' }))[0]?.mark?.outcome).toBe('replayed');
    expect(await removeFromQuarantine(io, warehouse, 'src', (r) => r.origin === 'slot s at 2')).toBe(1);
    expect((await listQuarantine(io, warehouse, 'src', { status: 'all' })).map((e) => e.record.origin)).toEqual([
      'slot s at 1',
      'slot s at 3',
    ]);
  });

  it("appends a retried batch's records once, also when the retry reads the event again after midnight", async () => {
    const io = new LocalFileIO();
    const warehouse = `file://${dir}/append`;
    const evening = Date.UTC(2026, 0, 2, 23, 59, 50);
    const file = await appendQuarantine(io, warehouse, 'src', [record('1', 'c', evening), record('2')], evening);
    expect(file).toBe(quarantineDayFile(warehouse, 'src', evening));
    expect(await appendQuarantine(io, warehouse, 'src', [], evening)).toBeNull();
    // The retry decodes the same changes again (another envelope ts_ms), next day, with one new record.
    const night = evening + 20_000;
    await appendQuarantine(
      io,
      warehouse,
      'src',
      [record('1', 'c', night), record('2', 'c', night), record('3')],
      night,
    );
    const listed = await listQuarantine(io, warehouse, 'src');
    expect(listed.map((e) => [e.file.slice(-16), e.record.origin])).toEqual([
      ['2026-01-02.jsonl', 'slot s at 1'],
      ['2026-01-02.jsonl', 'slot s at 2'],
      ['2026-01-03.jsonl', 'slot s at 3'],
    ]);
    // A different error for the same event is another record.
    await appendQuarantine(io, warehouse, 'src', [{ ...record('3'), errorKind: 'null-key' as const }], night);
    expect(await listQuarantine(io, warehouse, 'src')).toHaveLength(4);
  });
});
