import { describe, expect, it } from 'vitest';
import { decodeAvroFile, encodeAvroFile } from '../../../lib/iceberg/avro/container-file.js';
import { CorruptAvroFileError } from '../../../lib/iceberg/avro/errors.js';
import type { ManifestEntry } from '../../../lib/iceberg/data-file.js';
import { InvalidValueError } from '../../../lib/iceberg/errors.js';
import { inheritManifestMetadata, readManifest, writeManifest } from '../../../lib/iceberg/manifest.js';
import {
  assignManifestSequenceNumbers,
  MANIFEST_LIST_AVRO_SCHEMA,
  newManifestFile,
  readManifestList,
  writeManifestList,
  type ManifestFile,
} from '../../../lib/iceberg/manifest-list.js';
import { buildPartitionSpec } from '../../../lib/iceberg/partition-spec.js';
import { parseSchema } from '../../../lib/iceberg/types.js';

const SNAPSHOT = 8744736658442914487n;
const PARENT = 3051729675574597004n;
const OLD_SNAPSHOT = 6385417235846218383n;

const SCHEMA = parseSchema({
  type: 'struct',
  'schema-id': 0,
  fields: [
    { id: 1, name: 'id', required: true, type: 'long' },
    { id: 2, name: 'ts', required: false, type: 'timestamptz' },
  ],
});
const SPEC = buildPartitionSpec({ schema: SCHEMA, specId: 0, fields: [{ sourceColumn: 'ts', transform: 'day' }] }).spec;

function addedEntry(day: number | null, path: string): ManifestEntry {
  return {
    status: 'added',
    snapshotId: null,
    sequenceNumber: null,
    fileSequenceNumber: null,
    dataFile: {
      content: 'data',
      filePath: path,
      fileFormat: 'PARQUET',
      partition: [day],
      specId: 0,
      recordCount: 10n,
      fileSizeInBytes: 1000n,
    },
  };
}

/** A manifest carried over from an earlier snapshot: its sequence numbers were assigned back then. */
const CARRIED: ManifestFile = {
  manifestPath: 's3://wh/db/t/metadata/old-m0.avro',
  manifestLength: 7042n,
  partitionSpecId: 0,
  content: 'deletes',
  sequenceNumber: 3n,
  minSequenceNumber: 2n,
  addedSnapshotId: OLD_SNAPSHOT,
  addedFilesCount: 0,
  existingFilesCount: 4,
  deletedFilesCount: 0,
  addedRowsCount: 0n,
  existingRowsCount: 2n ** 40n,
  deletedRowsCount: 0n,
  partitions: [{ containsNull: true, containsNan: null, lowerBound: new Uint8Array([1, 0, 0, 0]), upperBound: null }],
  keyMetadata: new Uint8Array([7]),
};

function newManifest() {
  const { bytes, summary } = writeManifest({
    schema: SCHEMA,
    spec: SPEC,
    formatVersion: 2,
    content: 'data',
    entries: [addedEntry(19723, 's3://wh/db/t/data/a.parquet'), addedEntry(null, 's3://wh/db/t/data/b.parquet')],
    snapshotId: SNAPSHOT,
  });
  const manifest = newManifestFile({
    manifestPath: 's3://wh/db/t/metadata/new-m0.avro',
    manifestLength: bytes.length,
    summary,
  });
  return { bytes, manifest };
}

describe('newManifestFile', () => {
  it('records the exact byte length, the summary and unassigned sequence numbers', () => {
    const { bytes, manifest } = newManifest();
    expect(manifest.manifestLength).toBe(BigInt(bytes.length));
    // The writer's bytes own their buffer: what the caller uploads is exactly manifest_length long.
    expect(bytes.buffer.byteLength).toBe(bytes.length);
    expect(manifest).toMatchObject({
      partitionSpecId: 0,
      content: 'data',
      sequenceNumber: null,
      minSequenceNumber: null,
      addedSnapshotId: SNAPSHOT,
      addedFilesCount: 2,
      addedRowsCount: 20n,
      partitions: [
        {
          containsNull: true,
          containsNan: false,
          lowerBound: new Uint8Array([0x0b, 0x4d, 0, 0]),
          upperBound: new Uint8Array([0x0b, 0x4d, 0, 0]),
        },
      ],
      keyMetadata: null,
    });
  });

  it('needs a snapshot id from the writer or the caller', () => {
    const { summary } = writeManifest({ schema: SCHEMA, spec: SPEC, formatVersion: 2, content: 'data', entries: [] });
    expect(() => newManifestFile({ manifestPath: 's3://m.avro', manifestLength: 10, summary })).toThrow(
      InvalidValueError,
    );
    expect(
      newManifestFile({ manifestPath: 's3://m.avro', manifestLength: 10, summary, addedSnapshotId: 1n }),
    ).toMatchObject({ addedSnapshotId: 1n });
  });
});

describe('assignManifestSequenceNumbers', () => {
  it("gives this commit's new manifests sequence number N and leaves carried-over manifests alone", () => {
    const { manifest } = newManifest();
    const [assigned, carried] = assignManifestSequenceNumbers([manifest, CARRIED], {
      snapshotId: SNAPSHOT,
      sequenceNumber: 9n,
    });
    expect([assigned?.sequenceNumber, assigned?.minSequenceNumber]).toEqual([9n, 9n]);
    expect(carried).toBe(CARRIED);
  });

  it('keeps a known minimum sequence number (existing files rewritten into a new manifest)', () => {
    const { manifest } = newManifest();
    const [assigned] = assignManifestSequenceNumbers([{ ...manifest, minSequenceNumber: 4n }], {
      snapshotId: SNAPSHOT,
      sequenceNumber: 9n,
    });
    expect(assigned?.minSequenceNumber).toBe(4n);
  });

  it('refuses an unassigned manifest that another snapshot added', () => {
    const { manifest } = newManifest();
    expect(() => assignManifestSequenceNumbers([manifest], { snapshotId: 1n, sequenceNumber: 9n })).toThrow(
      /added by snapshot 8744736658442914487, not by the committing snapshot 1/,
    );
  });
});

describe('writeManifestList / readManifestList', () => {
  it('round-trips manifests with 63-bit ids and fills in the commit sequence number', () => {
    const { manifest } = newManifest();
    const { bytes, manifests } = writeManifestList({
      snapshotId: SNAPSHOT,
      parentSnapshotId: PARENT,
      sequenceNumber: 9n,
      manifests: [manifest, CARRIED],
    });
    const read = readManifestList(bytes);
    expect(read.manifests).toEqual(manifests);
    expect(read.manifests[0]).toEqual({ ...manifest, sequenceNumber: 9n, minSequenceNumber: 9n });
    expect(read.manifests[1]).toEqual(CARRIED);
    expect([read.snapshotId, read.parentSnapshotId, read.sequenceNumber, read.formatVersion]).toEqual([
      SNAPSHOT,
      PARENT,
      9n,
      2,
    ]);
  });

  it('writes the header keys Java writes, with "null" for a missing parent', () => {
    const { bytes } = writeManifestList({
      snapshotId: SNAPSHOT,
      parentSnapshotId: null,
      sequenceNumber: 1n,
      manifests: [],
    });
    const { metadata, codec } = decodeAvroFile(bytes);
    expect(metadata).toEqual({
      'snapshot-id': '8744736658442914487',
      'parent-snapshot-id': 'null',
      'sequence-number': '1',
      'format-version': '2',
    });
    expect(codec).toBe('deflate');
    expect(readManifestList(bytes).parentSnapshotId).toBeUndefined();
  });

  it('writes the v2 manifest_file schema with field ids 500-519 and the r508 summary record', () => {
    const { schema } = decodeAvroFile(
      writeManifestList({ snapshotId: 1n, parentSnapshotId: null, sequenceNumber: 1n, manifests: [] }).bytes,
    );
    expect(schema).toEqual(MANIFEST_LIST_AVRO_SCHEMA);
    const ids = MANIFEST_LIST_AVRO_SCHEMA.fields.map((f) => f['field-id']);
    expect(ids).toEqual([500, 501, 502, 517, 515, 516, 503, 504, 505, 506, 512, 513, 514, 507, 519]);
    const partitions = JSON.stringify(MANIFEST_LIST_AVRO_SCHEMA.fields[13]);
    expect(partitions).toContain('"name":"r508"');
    expect(partitions).toContain('"element-id":508');
    for (const id of [509, 518, 510, 511]) expect(partitions).toContain(`"field-id":${id}`);
  });

  it('refuses v1-style null counts, which v2 requires', () => {
    expect(() =>
      writeManifestList({
        snapshotId: OLD_SNAPSHOT,
        parentSnapshotId: null,
        sequenceNumber: 4n,
        manifests: [{ ...CARRIED, addedFilesCount: null }],
      }),
    ).toThrow(/null added_files_count/);
  });

  it('lets a retried commit reuse the manifest and rewrite only the list, and readers inherit the new N', () => {
    const { bytes: manifestBytes, manifest } = newManifest();
    const attempt = (n: bigint) =>
      readManifestList(
        writeManifestList({ snapshotId: SNAPSHOT, parentSnapshotId: PARENT, sequenceNumber: n, manifests: [manifest] })
          .bytes,
      ).manifests[0]!;
    const entries = readManifest(manifestBytes).entries;
    expect(inheritManifestMetadata(entries, attempt(9n)).map((e) => e.sequenceNumber)).toEqual([9n, 9n]);
    expect(inheritManifestMetadata(entries, attempt(10n)).map((e) => e.sequenceNumber)).toEqual([10n, 10n]);
    expect(inheritManifestMetadata(entries, attempt(10n)).map((e) => e.snapshotId)).toEqual([SNAPSHOT, SNAPSHOT]);
  });

  it('reads a v1 manifest list with the spec defaults: content data, sequence numbers 0', () => {
    const v1Schema = {
      type: 'record',
      name: 'manifest_file',
      fields: MANIFEST_LIST_AVRO_SCHEMA.fields
        .filter((f) => ![517, 515, 516].includes(f['field-id'] as number))
        .map((f) =>
          [504, 505, 506, 512, 513, 514].includes(f['field-id'] as number)
            ? { ...f, type: ['null', f.type], default: null }
            : f,
        ),
    };
    const bytes = encodeAvroFile({
      schema: v1Schema,
      metadata: { 'snapshot-id': '5', 'format-version': '1' },
      records: [
        {
          manifest_path: 's3://b/m-v1.avro',
          manifest_length: 100n,
          partition_spec_id: 0,
          added_snapshot_id: 5n,
          added_files_count: null,
          existing_files_count: 1,
          deleted_files_count: 0,
          added_rows_count: null,
          existing_rows_count: 3n,
          deleted_rows_count: 0n,
          partitions: null,
          key_metadata: null,
        },
      ],
    });
    const read = readManifestList(bytes);
    expect(read.formatVersion).toBe(1);
    expect(read.sequenceNumber).toBeUndefined();
    expect(read.manifests).toEqual([
      {
        manifestPath: 's3://b/m-v1.avro',
        manifestLength: 100n,
        partitionSpecId: 0,
        content: 'data',
        sequenceNumber: 0n,
        minSequenceNumber: 0n,
        addedSnapshotId: 5n,
        addedFilesCount: null,
        existingFilesCount: 1,
        deletedFilesCount: 0,
        addedRowsCount: null,
        existingRowsCount: 3n,
        deletedRowsCount: 0n,
        partitions: null,
        keyMetadata: null,
      },
    ]);
  });

  it('refuses a file that is not a manifest list, naming it', () => {
    const notAList = encodeAvroFile({
      schema: { type: 'record', name: 'x', fields: [{ name: 'a', type: 'int', 'field-id': 1 }] },
      records: [{ a: 1 }],
    });
    expect(() => readManifestList(notAList, { file: 's3://b/snap-1.avro' })).toThrow(CorruptAvroFileError);
    expect(() => readManifestList(notAList, { file: 's3://b/snap-1.avro' })).toThrow(
      /manifest list "s3:\/\/b\/snap-1.avro".*manifest_path/,
    );
  });
});
