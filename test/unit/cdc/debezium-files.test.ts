import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { collapseChanges } from '../../../lib/cdc/collapse.js';
import {
  compareChangeFiles,
  formatFilesWatermark,
  parseChangeFileName,
  parseChangeLine,
  parseFilesWatermark,
  readChangeFiles,
} from '../../../lib/cdc/debezium-files.js';
import { changeEventToJson } from '../../../lib/cdc/envelope.js';
import { ChangeError, InvalidCdcOptionError } from '../../../lib/cdc/errors.js';
import { findStaleFileReplays } from '../../../lib/cdc/replay-guard.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import type { FileInfo, FileIO } from '../../../lib/storage/file-io.js';

/** Just the two FileIO methods the reader uses, over an in-memory map, listing in a scrambled order. */
function memoryIO(files: Record<string, string | Uint8Array>): Pick<FileIO, 'list' | 'read'> & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    async *list(prefix: string): AsyncIterable<FileInfo> {
      const uris = Object.keys(files)
        .filter((u) => u.startsWith(prefix))
        .reverse();
      for (const uri of uris) yield { uri, size: 0, lastModified: new Date(0) };
    },
    async read(uri: string) {
      reads.push(uri);
      const data = files[uri]!;
      return typeof data === 'string' ? new TextEncoder().encode(data) : data;
    },
  };
}

const source = (table = 'orders') => ({
  version: '2.7.0.Final',
  connector: 'postgresql',
  name: 'shop',
  ts_ms: 1706708700000,
  snapshot: 'false',
  db: 'shop',
  sequence: '[null,"100"]',
  schema: 'public',
  table,
  txId: 7,
  lsn: 100,
  xmin: null,
});
const line = (op: string, before: unknown, after: unknown) =>
  JSON.stringify({ before, after, source: source(), op, ts_ms: 1706708700001 });
const dir = 's3://lake/topics/shop.public.orders/partition=0/';
const file = (offset: number, partition = 0) =>
  `s3://lake/topics/shop.public.orders/partition=${partition}/shop.public.orders+${partition}+${String(offset).padStart(10, '0')}.json`;

describe('change file names and order', () => {
  it("parses the Kafka Connect sink's file names", () => {
    expect(parseChangeFileName(file(42))).toEqual({
      uri: file(42),
      topic: 'shop.public.orders',
      partition: 0,
      startOffset: 42n,
      gzip: false,
    });
    expect(parseChangeFileName('s3://b/t/p=1/t+1+7.json.gz')).toMatchObject({ startOffset: 7n, gzip: true });
    expect(parseChangeFileName('s3://b/t/_SUCCESS')).toBeUndefined();
  });

  it('orders by topic, partition, then numeric offset', () => {
    const names = ['s3://b/t+0+10.json', 's3://b/t+0+9.json', 's3://b/t+1+0.json', 's3://a/s+5+0.json'].map((u) =>
      parseChangeFileName(u)!,
    );
    expect(names.sort(compareChangeFiles).map((n) => n.uri)).toEqual([
      's3://a/s+5+0.json',
      's3://b/t+0+9.json',
      's3://b/t+0+10.json',
      's3://b/t+1+0.json',
    ]);
  });

  it('round-trips the high-water mark and refuses malformed ones', () => {
    const text = formatFilesWatermark({ 'b+1': '5', 'a+0': '10' });
    expect(text).toBe('{"a+0":"10","b+1":"5"}');
    expect(parseFilesWatermark(text)).toEqual({ 'a+0': '10', 'b+1': '5' });
    expect(parseFilesWatermark(undefined)).toEqual({});
    expect(() => parseFilesWatermark('{"a+0":10}')).toThrow(InvalidCdcOptionError);
    expect(() => parseFilesWatermark('nope')).toThrow(InvalidCdcOptionError);
  });
});

describe('reading change files', () => {
  const files = {
    [file(0)]: `${line('c', null, { id: 1, name: 'a' })}\n${line('c', null, { id: 2, name: 'b' })}\n`,
    [file(2)]: `${line('u', null, { id: 1, name: 'a2' })}\nnot json\nnull\n\n`,
    [file(10)]: gzipSync(Buffer.from(`${line('d', { id: 2 }, null)}\n`)),
    [`${dir}_SUCCESS`]: '',
  };

  it('reads files in key order, whole, quarantining bad lines and skipping tombstones', async () => {
    const io = memoryIO(files);
    const batch = await readChangeFiles(io, { prefix: dir });
    expect(io.reads).toEqual([file(0), file(2), file(10)]);
    expect(batch.events.map((e) => [e.envelope.op, e.position.sequence, e.origin])).toEqual([
      ['c', 0, `${file(0)}:1`],
      ['c', 1, `${file(0)}:2`],
      ['u', 2, `${file(2)}:1`],
      ['d', 3, `${file(10)}:1`],
    ]);
    expect(batch.quarantined).toMatchObject([{ errorKind: 'invalid-event', failureType: 'Corrupt', raw: 'not json' }]);
    expect(batch.quarantined[0]!.origin).toBe(`${file(2)}:2`);
    expect(batch.tombstones).toBe(1);
    expect(batch.ignored).toEqual([`${dir}_SUCCESS`]);
    expect(batch.nextWatermark).toEqual({ 'shop.public.orders+0': '10' });
    expect(batch.cutShort).toBe(false);

    const schema: Schema = {
      schemaId: 0,
      identifierFieldIds: [1],
      fields: [
        { id: 1, name: 'id', required: true, type: Types.long },
        { id: 2, name: 'name', required: false, type: Types.string },
      ],
    };
    const collapsed = collapseChanges(batch.events, {
      tables: [{ source: { schema: 'public', table: 'orders' }, schema }],
    });
    const changes = collapsed.tables.get('public.orders')!;
    expect(changes.ops).toEqual(['upsert', 'delete']);
    expect(changes.keys).toEqual([[1n], [2n]]);
    expect(changes.columns.get(2)).toEqual(['a2', null]);
  });

  it('skips files at or below the committed high-water mark and stops at file boundaries', async () => {
    const io = memoryIO(files);
    const first = await readChangeFiles(io, { prefix: dir, maxFiles: 1 });
    expect(first.files.map((f) => f.uri)).toEqual([file(0)]);
    expect(first.cutShort).toBe(true);
    expect(first.nextWatermark).toEqual({ 'shop.public.orders+0': '0' });
    const second = await readChangeFiles(io, { prefix: dir, watermark: first.nextWatermark, maxEvents: 1 });
    expect(second.files.map((f) => f.uri)).toEqual([file(2)]);
    expect(second.events.map((e) => e.envelope.op)).toEqual(['u']);
    const rest = await readChangeFiles(io, { prefix: dir, watermark: second.nextWatermark });
    expect(rest.files.map((f) => f.uri)).toEqual([file(10)]);
    const done = await readChangeFiles(io, { prefix: dir, watermark: rest.nextWatermark });
    expect(done.files).toEqual([]);
    expect(done.events).toEqual([]);
    expect(done.nextWatermark).toEqual(rest.nextWatermark);
  });

  it('reads lines with Connect schemas and keeps 64-bit integers exact', () => {
    const withSchema = JSON.stringify({
      schema: {
        type: 'struct',
        fields: [
          {
            field: 'after',
            type: 'struct',
            fields: [
              { field: 'id', type: 'int64' },
              { field: 'ts', type: 'int64', name: 'io.debezium.time.Timestamp' },
            ],
          },
        ],
      },
      payload: { before: null, after: { id: 0, ts: 5 }, source: source(), op: 'r', ts_ms: 1 },
    }).replace('"id":0', '"id":9007199254740993');
    const event = parseChangeLine(withSchema, 'x:1', 0);
    expect(event.envelope.after).toEqual({ id: 9007199254740993n, ts: 5 });
    expect(event.fieldSchemas?.get('ts')?.name).toBe('io.debezium.time.Timestamp');
    expect(event.encoding).toBe('debezium-json');
  });

  it('a quarantined event keeps its Connect fields, so a replay converts its values the same way', () => {
    const line = JSON.stringify({
      schema: {
        type: 'struct',
        fields: [
          {
            field: 'after',
            type: 'struct',
            fields: [
              { field: 'id', type: 'int64' },
              {
                field: 'amount',
                type: 'bytes',
                name: 'org.apache.kafka.connect.data.Decimal',
                parameters: { scale: '2' },
              },
            ],
          },
        ],
      },
      payload: { before: null, after: { id: 1, amount: 'AOc=' }, source: source(), op: 'c', ts_ms: 1 },
    });
    const event = parseChangeLine(line, 'f:3', 0);
    const again = parseChangeLine(changeEventToJson(event), 'f:3', 0);
    expect(again.envelope).toEqual(event.envelope);
    expect(again.fieldSchemas).toEqual(event.fieldSchemas);
    const schema: Schema = {
      schemaId: 0,
      identifierFieldIds: [1],
      fields: [
        { id: 1, name: 'id', required: true, type: Types.long },
        { id: 2, name: 'amount', required: false, type: Types.decimal(10, 2) },
      ],
    };
    const table = { source: { schema: 'public', table: 'orders' }, schema };
    const columns = (e: typeof event) => collapseChanges([e], { tables: [table] }).tables.get('public.orders')!.columns;
    expect(columns(again).get(2)).toEqual(columns(event).get(2)); // 2.31 both times, not bytes
    // A 64-bit default in the Connect schema (lossless-json reads it as a bigint) survives too.
    const big = parseChangeLine(
      line.replace('{"field":"id","type":"int64"}', '{"field":"id","type":"int64","default":9223372036854775807}'),
      'f:5',
      0,
    );
    expect(big.fieldSchemas?.get('id')).toMatchObject({ default: 9223372036854775807n });
    expect(parseChangeLine(changeEventToJson(big), 'f:5', 0).fieldSchemas).toEqual(big.fieldSchemas);
    // An event without Connect schemas stays a bare envelope.
    const bare = parseChangeLine(line.replace(/^\{"schema":.*?,"payload":/, '').slice(0, -1), 'f:4', 0);
    expect(bare.fieldSchemas).toBeUndefined();
    expect(JSON.parse(changeEventToJson(bare))).toMatchObject({ op: 'c', after: { id: 1 } });
  });

  it('a replayed event is stale when a later change of its key follows it in its partition', async () => {
    const io = memoryIO({
      [file(0)]: [line('c', null, { id: 1, name: 'a' }), line('c', null, { id: 2, name: 'b' })].join('\n'),
      [file(2)]: [line('u', { id: 1 }, { id: 1, name: 'a2' }), 'not json', line('d', { id: 3 }, null)].join('\n'),
      [file(5)]: 'null\n' + line('c', null, { id: 3, name: 'c' }),
      // Another partition: the same key there is not ordered against partition 0.
      [file(0, 1)]: line('u', { id: 2 }, { id: 2, name: 'other partition' }),
    });
    const at = (uri: string, n: number, raw: string) => parseChangeLine(raw, `${uri}:${n}`, 0);
    const events = [
      at(file(0), 1, line('c', null, { id: 1, name: 'a' })), // superseded by the update in file 2
      at(file(0), 2, line('c', null, { id: 2, name: 'b' })), // the last change of key 2 in partition 0
      at(file(2), 1, line('u', { id: 1 }, { id: 1, name: 'a2' })), // the last change of key 1
      at(file(2), 3, line('d', { id: 3 }, null)), // superseded by the insert in file 5
    ];
    const stale = await findStaleFileReplays(
      io,
      's3://lake/topics/',
      { schema: 'public', table: 'orders' },
      ['id'],
      events,
    );
    expect(stale.map((s) => s.index)).toEqual([0, 3]);
    expect(stale[0]!.reason).toBe(
      `a later change of the key (op u at ${file(2)}:1) supersedes this change at ${file(0)}:1`,
    );
    expect(stale[1]!.reason).toContain(`(op c at ${file(5)}:2)`);
    // An update that moved a key is the last change of its old key too: the old key's insert is stale.
    const moved = memoryIO({
      [file(0)]: line('c', null, { id: 7, name: 'x' }),
      [file(1)]: line('u', { id: 7, name: 'x' }, { id: 8, name: 'x' }),
    });
    const insert7 = at(file(0), 1, line('c', null, { id: 7, name: 'x' }));
    const movedStale = await findStaleFileReplays(
      moved,
      's3://lake/topics/',
      { schema: 'public', table: 'orders' },
      ['id'],
      [insert7],
    );
    expect(movedStale.map((s) => s.reason)).toEqual([
      `a later change of the key (op u at ${file(1)}:1) supersedes this change at ${file(0)}:1`,
    ]);
    // A replayed update that moved the key deletes the old key's row: stale when the old key came back later.
    const back = memoryIO({
      [file(0)]: line('u', { id: 7, name: 'x' }, { id: 8, name: 'x' }),
      [file(1)]: line('c', null, { id: 7, name: 'again' }),
    });
    const move = at(file(0), 1, line('u', { id: 7, name: 'x' }, { id: 8, name: 'x' }));
    const moveStale = await findStaleFileReplays(
      back,
      's3://lake/topics/',
      { schema: 'public', table: 'orders' },
      ['id'],
      [move],
    );
    expect(moveStale.map((s) => s.reason)).toEqual([
      `a later change of the key (op c at ${file(1)}:1) supersedes this change at ${file(0)}:1`,
    ]);
    // A record whose own file is gone (sink retention) cannot be checked: not applied.
    const gone = await findStaleFileReplays(
      memoryIO({ [file(9)]: line('u', { id: 1 }, { id: 1, name: 'z' }) }),
      's3://lake/topics/',
      { schema: 'public', table: 'orders' },
      ['id'],
      [at(file(0), 1, line('c', null, { id: 1, name: 'a' }))],
    );
    expect(gone.map((s) => s.reason)).toEqual([
      `its change file ${file(0)} is no longer listed, so later changes of the key cannot be checked`,
    ]);
    // Another table's events and events without a file origin are not judged.
    const other = parseChangeLine(
      JSON.stringify({ after: { id: 1 }, source: source('items'), op: 'c' }),
      `${file(0)}:1`,
      0,
    );
    const noFile = parseChangeLine(line('c', null, { id: 1 }), 'quarantine:1', 0);
    expect(
      await findStaleFileReplays(
        io,
        's3://lake/topics/',
        { schema: 'public', table: 'orders' },
        ['id'],
        [other, noFile],
      ),
    ).toEqual([]);
  });

  it('refuses lines that are not change events', () => {
    expect(() => parseChangeLine('{"op":"x"}', 'f:1', 0)).toThrow(ChangeError);
    expect(() => parseChangeLine(JSON.stringify({ op: 'c', after: null, source: source() }), 'f:1', 0)).toThrow(
      /needs an after image/,
    );
    expect(() => parseChangeLine(JSON.stringify({ op: 'd', before: null, source: source() }), 'f:1', 0)).toThrow(
      /before image/,
    );
    expect(() => parseChangeLine(JSON.stringify({ op: 'c', after: {}, source: {} }), 'f:1', 0)).toThrow(
      /source\.schema/,
    );
  });
});
