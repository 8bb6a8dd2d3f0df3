import { inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeAvroFile, encodeAvroFile } from '../../../lib/iceberg/avro/container-file.js';
import { CorruptAvroFileError } from '../../../lib/iceberg/avro/errors.js';
import type { AvroRecordSchema } from '../../../lib/iceberg/avro/schema.js';
import { InvalidValueError } from '../../../lib/iceberg/errors.js';

const SYNC = new Uint8Array(16).map((_, i) => 0xa0 + i);

/** A schema with every Iceberg id attribute: field-id, element-id and the map-as-array logical type. */
const SCHEMA: AvroRecordSchema = {
  type: 'record',
  name: 'r1',
  fields: [
    { name: 'id', type: 'long', 'field-id': 1 },
    {
      name: 'ts',
      type: ['null', { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true }],
      default: null,
      'field-id': 2,
    },
    { name: 'payload', type: ['null', 'bytes'], default: null, 'field-id': 3 },
    {
      name: 'offsets',
      type: ['null', { type: 'array', items: 'long', 'element-id': 5 }],
      default: null,
      'field-id': 4,
    },
    {
      name: 'sizes',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'k7_v8',
          fields: [
            { name: 'key', type: 'int', 'field-id': 7 },
            { name: 'value', type: 'long', 'field-id': 8 },
          ],
        },
        logicalType: 'map',
      },
      'field-id': 6,
    },
  ],
};

// Java-written snapshot ids go past 2^53; the extremes check the zig-zag varint at both ends of the range.
const LONGS = [0n, -1n, 1n, 8744736658442914487n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n)];

function sampleRecords(): unknown[] {
  return LONGS.map((value, i) => ({
    id: value,
    ts: i % 2 === 0 ? value : null,
    payload: i % 3 === 0 ? null : new Uint8Array([i, 255 - i]),
    offsets: [value, BigInt(i)],
    sizes: [{ key: i, value }],
  }));
}

/** The Avro spec's long encoding, written independently of avsc: zig-zag, then 7-bit groups, low first. */
function zigzagVarint(value: bigint): number[] {
  let n = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
  const out: number[] = [];
  do {
    const group = Number(n & 0x7fn);
    n >>= 7n;
    out.push(n > 0n ? group | 0x80 : group);
  } while (n > 0n);
  return out;
}

function readVarint(bytes: Uint8Array, at: number): { value: bigint; next: number } {
  let n = 0n;
  let shift = 0n;
  let pos = at;
  for (;;) {
    const byte = bytes[pos++] as number;
    n |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) break;
  }
  return { value: (n >> 1n) ^ -(n & 1n), next: pos };
}

function headerText(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('latin1');
}

describe('encodeAvroFile / decodeAvroFile', () => {
  for (const codec of ['null', 'deflate'] as const) {
    it(`round-trips 63-bit longs, nulls, bytes, arrays and map-arrays exactly (${codec} codec)`, () => {
      const bytes = encodeAvroFile({
        schema: SCHEMA,
        records: sampleRecords(),
        codec,
        metadata: { 'format-version': '2' },
      });
      const decoded = decodeAvroFile(bytes);

      expect(decoded.codec).toBe(codec);
      expect(decoded.metadata).toEqual({ 'format-version': '2' });
      const records = decoded.records as { id: bigint; ts: bigint | null; payload: Buffer | null; sizes: unknown[] }[];
      expect(records.map((r) => r.id)).toEqual(LONGS);
      expect(records.map((r) => r.ts)).toEqual(LONGS.map((v, i) => (i % 2 === 0 ? v : null)));
      expect(records[1]?.payload && [...records[1].payload]).toEqual([1, 254]);
      expect(records[3]?.payload).toBeNull();
      expect(records[3]?.sizes).toEqual([{ key: 3, value: 8744736658442914487n }]);
    });
  }

  it('writes longs with the Avro zig-zag varint encoding, so other readers see the same value', () => {
    const schema = { type: 'record', name: 'one', fields: [{ name: 'v', type: 'long' }] } as const;
    for (const value of LONGS) {
      const bytes = encodeAvroFile({ schema, records: [{ v: value }], codec: 'null', syncMarker: SYNC });
      const expected = [
        ...zigzagVarint(1n), // one record in the block
        ...zigzagVarint(BigInt(zigzagVarint(value).length)), // block size
        ...zigzagVarint(value),
        ...SYNC,
      ];
      expect([...bytes.subarray(bytes.length - expected.length)]).toEqual(expected);
    }
  });

  it('puts the raw schema into the header verbatim, field-id, element-id and logicalType map included', () => {
    const bytes = encodeAvroFile({ schema: SCHEMA, records: [], codec: 'null' });
    expect(headerText(bytes)).toContain(JSON.stringify(SCHEMA));
    const decoded = decodeAvroFile(bytes);
    expect(decoded.schema).toEqual(SCHEMA);
    expect(decoded.records).toEqual([]);
  });

  it('compresses blocks with raw deflate (what Java writes) and splits records into blocks by size', () => {
    const records = Array.from({ length: 200 }, (_, i) => ({
      id: BigInt(i),
      ts: null,
      payload: new Uint8Array(64).fill(7),
      offsets: null,
      sizes: [],
    }));
    const deflated = encodeAvroFile({
      schema: SCHEMA,
      records,
      codec: 'deflate',
      blockSizeBytes: 4096,
      syncMarker: SYNC,
    });
    const plain = encodeAvroFile({ schema: SCHEMA, records, codec: 'null', blockSizeBytes: 4096, syncMarker: SYNC });
    expect(deflated.length).toBeLessThan(plain.length / 4);

    // The header ends with the sync marker, and so does every block.
    const syncs = headerText(plain).split(Buffer.from(SYNC).toString('latin1')).length - 1;
    expect(syncs).toBeGreaterThan(3);
    const decoded = decodeAvroFile(deflated);
    expect((decoded.records as { id: bigint }[]).map((r) => r.id)).toEqual(records.map((r) => r.id));

    // The first block's data is a raw deflate stream (no zlib header), as the Avro spec requires.
    const headerEnd = headerText(deflated).indexOf(Buffer.from(SYNC).toString('latin1')) + 16;
    const block = deflated.subarray(headerEnd);
    const count = readVarint(block, 0);
    const size = readVarint(block, count.next);
    const data = inflateRawSync(block.subarray(size.next, size.next + Number(size.value)));
    expect(data.length).toBeGreaterThan(Number(size.value));
    expect([...data.subarray(0, zigzagVarint(0n).length)]).toEqual(zigzagVarint(0n)); // the first record's id
  });

  it('returns bytes that own their whole buffer, so length is the file size and .buffer can be written', () => {
    const bytes = encodeAvroFile({ schema: SCHEMA, records: sampleRecords().slice(0, 1), codec: 'null' });
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(bytes.length);
  });

  it('writes a random sync marker unless one is given', () => {
    const a = encodeAvroFile({ schema: SCHEMA, records: [] });
    const b = encodeAvroFile({ schema: SCHEMA, records: [] });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    const c = encodeAvroFile({ schema: SCHEMA, records: [], syncMarker: SYNC });
    const d = encodeAvroFile({ schema: SCHEMA, records: [], syncMarker: SYNC });
    expect(Buffer.from(c).equals(Buffer.from(d))).toBe(true);
  });

  it('refuses reserved avro.* metadata keys and records that do not fit, naming the field', () => {
    expect(() => encodeAvroFile({ schema: SCHEMA, records: [], metadata: { 'avro.codec': 'x' } })).toThrow(
      InvalidValueError,
    );
    const numberInsteadOfBigint = { id: 5, ts: null, payload: null, offsets: null, sizes: [] };
    expect(() => encodeAvroFile({ schema: SCHEMA, records: [sampleRecords()[0], numberInsteadOfBigint] })).toThrow(
      /record 1 .*id is 5/,
    );
  });
});

describe('decodeAvroFile on damaged input', () => {
  const good = encodeAvroFile({ schema: SCHEMA, records: sampleRecords(), codec: 'deflate', syncMarker: SYNC });

  it('refuses bytes without the Avro magic', () => {
    expect(() => decodeAvroFile(new TextEncoder().encode('{"not":"avro"}'))).toThrow(CorruptAvroFileError);
  });

  it('refuses a truncated file', () => {
    expect(() => decodeAvroFile(good.subarray(0, good.length - 20))).toThrow(/truncated|cannot be decoded|sync/);
  });

  it('refuses a block whose sync marker does not match the header', () => {
    const damaged = new Uint8Array(good);
    damaged[damaged.length - 1] = (damaged[damaged.length - 1] as number) ^ 0xff;
    expect(() => decodeAvroFile(damaged)).toThrow(/sync marker/);
  });

  it('names a codec it cannot read and accepts an injected decompressor for it', () => {
    const plain = encodeAvroFile({ schema: SCHEMA, records: sampleRecords(), codec: 'null' });
    const renamed = Buffer.from(plain);
    const at = renamed.indexOf('avro.codec');
    // Same length as "null", so the header stays well-formed.
    renamed.write('zzzz', renamed.indexOf('null', at), 'latin1');
    expect(() => decodeAvroFile(renamed, { description: 'manifest "m.avro"' })).toThrow(
      /manifest "m.avro".*codec "zzzz" is not supported/,
    );
    const decoded = decodeAvroFile(renamed, { decompressors: { zzzz: (data) => data } });
    expect((decoded.records as { id: bigint }[]).map((r) => r.id)).toEqual(LONGS);
  });

  it('reports damage as the corrupt-metadata kind, so activities fail without retrying', () => {
    try {
      decodeAvroFile(new Uint8Array([1, 2, 3, 4, 5]));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CorruptAvroFileError);
      expect((err as CorruptAvroFileError).kind).toBe('corrupt-manifest');
      expect((err as CorruptAvroFileError).failureType).toBe('Corrupt');
    }
  });
});
