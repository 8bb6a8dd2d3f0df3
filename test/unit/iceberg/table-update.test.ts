import { describe, expect, it } from 'vitest';
import {
  newTableMetadata,
  parseTableMetadata,
  serializeTableMetadata,
  type TableMetadata,
} from '../../../lib/iceberg/metadata-json.js';
import {
  addSnapshot,
  noChanges,
  recordPreviousMetadata,
  setCurrentSchema,
  snapshotSummary,
  updateProperties,
} from '../../../lib/iceberg/table-update.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
  ],
};

function table(): TableMetadata {
  return newTableMetadata({ schema, location: 'file:///tmp/wh/db/t', nowMs: 1_000n });
}

describe('addSnapshot', () => {
  it('assigns consecutive sequence numbers and moves main, the current snapshot and the log', () => {
    const big = 8744736658442914487n;
    const s1 = addSnapshot(table(), {
      snapshotId: big,
      manifestList: 'file:///tmp/wh/db/t/metadata/snap-1.avro',
      summary: { operation: 'append' },
      timestampMs: 2_000n,
    });
    expect(s1.lastSequenceNumber).toBe(1n);
    expect(s1.currentSnapshotId).toBe(big);
    expect(s1.refs.main).toEqual({ snapshotId: big, type: 'branch' });
    expect(s1.snapshots[0]).toMatchObject({ sequenceNumber: 1n, schemaId: 0 });
    expect(s1.snapshots[0]!.parentSnapshotId).toBeUndefined();

    const s2 = addSnapshot(s1, {
      snapshotId: 7n,
      manifestList: 'm2',
      summary: { operation: 'append' },
      timestampMs: 3_000n,
    });
    expect(s2.lastSequenceNumber).toBe(2n);
    expect(s2.snapshots[1]).toMatchObject({ snapshotId: 7n, parentSnapshotId: big, sequenceNumber: 2n });
    expect(s2.snapshotLog.map((e) => e.snapshotId)).toEqual([big, 7n]);
    expect(s2.lastUpdatedMs).toBe(3_000n);

    // The result is valid metadata: it survives a write and a strict read, with the 63-bit id intact.
    const reread = parseTableMetadata(serializeTableMetadata(s2), 'mem://t.metadata.json');
    expect(reread.currentSnapshotId).toBe(7n);
    expect(reread.snapshots[0]!.snapshotId).toBe(big);
  });

  it('refuses a duplicate snapshot id', () => {
    const s1 = addSnapshot(table(), {
      snapshotId: 5n,
      manifestList: 'm',
      summary: { operation: 'append' },
      timestampMs: 2n,
    });
    expect(() =>
      addSnapshot(s1, { snapshotId: 5n, manifestList: 'm', summary: { operation: 'append' }, timestampMs: 3n }),
    ).toThrow(/5 already exists/);
  });
});

describe('recordPreviousMetadata', () => {
  it('appends the replaced file and trims to write.metadata.previous-versions-max', () => {
    let m = updateProperties(table(), { 'write.metadata.previous-versions-max': '2' });
    for (let i = 0; i < 4; i++) m = recordPreviousMetadata(m, { metadataFile: `f${i}`, lastUpdatedMs: BigInt(i) });
    expect(m.metadataLog.map((e) => e.metadataFile)).toEqual(['f2', 'f3']);
  });
  it('rejects a nonsense limit, naming the property', () => {
    const m = updateProperties(table(), { 'write.metadata.previous-versions-max': 'zero' });
    expect(() => recordPreviousMetadata(m, { metadataFile: 'f', lastUpdatedMs: 0n })).toThrow(/previous-versions-max/);
  });
});

describe('setCurrentSchema', () => {
  it('adds a new schema with the next id, and reuses an equivalent one', () => {
    const t = table();
    const wider: Schema = {
      ...t.schemas[0]!,
      fields: [...t.schemas[0]!.fields, { id: 3, name: 'n', required: false, type: Types.int }],
    };
    const m = setCurrentSchema(t, wider, 3);
    expect(m.currentSchemaId).toBe(1);
    expect(m.schemas).toHaveLength(2);
    expect(m.lastColumnId).toBe(3);
    const back = setCurrentSchema(m, t.schemas[0]!, 2);
    expect(back.currentSchemaId).toBe(0);
    expect(back.schemas).toHaveLength(2);
    expect(back.lastColumnId).toBe(3);
  });
});

describe('snapshotSummary', () => {
  it("uses Java's metric names and carries totals from the parent", () => {
    const first = snapshotSummary(
      'append',
      { ...noChanges(), addedDataFiles: 2, addedRecords: 100n, addedFilesSize: 4096n },
      undefined,
      {
        'sluice.cdc.commit-lsn': '0/16B3748',
      },
    );
    expect(first).toEqual({
      operation: 'append',
      'added-data-files': '2',
      'added-records': '100',
      'added-files-size': '4096',
      'total-records': '100',
      'total-files-size': '4096',
      'total-data-files': '2',
      'total-delete-files': '0',
      'total-position-deletes': '0',
      'total-equality-deletes': '0',
      'sluice.cdc.commit-lsn': '0/16B3748',
    });
    const second = snapshotSummary(
      'overwrite',
      {
        ...noChanges(),
        addedDataFiles: 1,
        addedRecords: 10n,
        addedFilesSize: 100n,
        addedPositionDeleteFiles: 1,
        addedPositionDeletes: 10n,
      },
      first,
    );
    expect(second['total-records']).toBe('110');
    expect(second['total-delete-files']).toBe('1');
    expect(second['total-position-deletes']).toBe('10');
    expect(second['added-delete-files']).toBe('1');
  });

  it('drops a total the parent did not track instead of guessing it', () => {
    const s = snapshotSummary('append', { ...noChanges(), addedRecords: 5n }, { operation: 'append' });
    expect(s['total-records']).toBeUndefined();
    expect(s['added-records']).toBe('5');
  });

  it('refuses a custom property named operation', () => {
    expect(() => snapshotSummary('append', noChanges(), undefined, { operation: 'x' })).toThrow(/operation/);
  });
});
