/**
 * Compaction under a continuous merge: upserts (position deletes + inserts, as the CDC merge writes them) commit
 * while a compaction rewrites and while it commits, and the compaction still commits, carrying their deletes over to
 * its new files. The table read back must equal a reference model: no row lost, none resurrected or duplicated.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import {
  compactTable,
  MaintenanceConflictError,
  rebasedProperties,
  type CompactOptions,
  type CompactionResult,
  type MaintenanceCatalog,
} from '../../../lib/iceberg/maintenance/index.js';
import { currentSnapshot, newSnapshotId, type TableMetadata } from '../../../lib/iceberg/metadata-json.js';
import { liveEntries, planFiles, readPositionDeleteFile, scanTable } from '../../../lib/iceberg/scan.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import { KeyIndexCache, upsertRows, type ChangeOp } from '../../../lib/iceberg/upsert.js';
import { appendColumns, commitNewManifests, writeAddedManifest } from '../../../lib/iceberg/append.js';
import { writeParquetDataFile, writePositionDeleteFile } from '../../../lib/iceberg/parquet/index.js';
import { noChanges } from '../../../lib/iceberg/table-update.js';
import type { FileIO } from '../../../lib/storage/file-io.js';
import type { LocalFileIO } from '../../../lib/storage/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'v', required: false, type: Types.string },
  ],
};

const WATERMARK = 'sluice.cdc.commit-lsn';

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('compaction beside a continuous merge', () => {
  let temp: TempCatalog<LocalFileIO>;
  let io: LocalFileIO;
  let catalog: SqlCatalog;
  /** The reference model: id → value. */
  let model: Map<number, string>;
  let lsn: number;
  const keyIndex = new KeyIndexCache();

  beforeEach(async () => {
    temp = await createTempCatalog('sluice-compact-rebase-');
    ({ io, catalog } = temp);
    model = new Map();
    lsn = 0;
  });
  afterEach(() => temp.cleanup());

  const load = async () => (await catalog.loadTable('db.t')).metadata;

  async function tableRows(): Promise<[number, string | null][]> {
    const out: [number, string | null][] = [];
    for await (const batch of scanTable(io, await load())) {
      const ids = batch.columns.get(1)!;
      const vs = batch.columns.get(2)!;
      for (let i = 0; i < batch.rowCount; i++) out.push([Number(ids[i] as bigint), vs[i] as string | null]);
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  const modelRows = () => [...model].sort((a, b) => a[0] - b[0]);

  /** One merge batch: upserts and deletes by key, committed with the next watermark, applied to the model too. */
  async function merge(changes: [ChangeOp, number, string?][]): Promise<void> {
    lsn += 1;
    await upsertRows(catalog, io, 'db.t', {
      columns: new Map<number, unknown[]>([
        [1, changes.map(([, id]) => BigInt(id))],
        [2, changes.map(([, , v]) => v ?? null)],
      ]),
      ops: changes.map(([op]) => op),
      snapshotProperties: { [WATERMARK]: String(lsn) },
      keyIndex,
    });
    for (const [op, id, v] of changes) {
      if (op === 'delete') model.delete(id);
      else model.set(id, v!);
    }
  }

  /** A FileIO for the compaction that runs `hook` once, just before the compaction writes its first new file. */
  function hookedIo(hook: () => Promise<void>): FileIO {
    let fired = false;
    return new Proxy(io, {
      get: (target, property) => {
        if (property === 'write') {
          return async (uri: string, data: Uint8Array) => {
            if (!fired && uri.endsWith('.parquet')) {
              fired = true;
              await hook();
            }
            return target.write(uri, data);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** A catalog that runs `race` after each of the first `times` commit attempts was built, before its CAS. */
  function racingCatalog(race: () => Promise<void>, times = 1): MaintenanceCatalog {
    return {
      loadTable: (table) => catalog.loadTable(table),
      commitWithRetry: (table, update, options) =>
        catalog.commitWithRetry(
          table,
          async (current, attempt) => {
            const next = await update(current, attempt);
            if (attempt.attempt <= times) await race();
            return next;
          },
          { ...options, minWaitMs: 1, maxWaitMs: 5 },
        ),
    };
  }

  async function seed(ids: number[]): Promise<void> {
    // Several merges, so each bucket has several small files and the first ones get position deletes.
    for (let i = 0; i < ids.length; i += 20) {
      await merge(ids.slice(i, i + 20).map((id) => ['upsert', id, `v${id}`] as [ChangeOp, number, string]));
    }
  }

  /** The table's metadata when the compaction starts: its watermark is what the CDC activity passes on. */
  let lastMetadata: TableMetadata | undefined;
  const compact = (cat: MaintenanceCatalog, compactIo: FileIO, options: CompactOptions = {}) =>
    compactTable(cat, compactIo, 'db.t', {
      minInputFiles: 2,
      snapshotProperties: { [WATERMARK]: currentSnapshot(lastMetadata!)!.summary[WATERMARK]! },
      ...options,
    });

  /** Every live position-delete file of the current snapshot names at least one live data file. */
  async function expectNoDanglingDeletes(): Promise<void> {
    const metadata = await load();
    const entries = (await liveEntries(io, metadata, currentSnapshot(metadata)!)).flatMap((m) => m.entries);
    const liveData = new Set(entries.filter((e) => e.dataFile.content === 'data').map((e) => e.dataFile.filePath));
    for (const e of entries) {
      if (e.dataFile.content !== 'position-deletes') continue;
      const targets = [...(await readPositionDeleteFile(io, e.dataFile.filePath)).keys()];
      expect(targets.some((t) => liveData.has(t))).toBe(true);
    }
  }

  it('commits while merges delete and update rows of the files it rewrites, and loses or resurrects nothing', async () => {
    await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[4]' }] });
    await seed(Array.from({ length: 100 }, (_, i) => i + 1));
    await merge([
      ['upsert', 5, 'x5'],
      ['delete', 6],
      ['upsert', 7, 'x7'],
    ]);
    lastMetadata = await load();
    const startWatermark = currentSnapshot(lastMetadata)!.summary[WATERMARK];
    // During the rewrite: updates and deletes of rows in files being rewritten, inserts of new keys, and a key
    // deleted and inserted again.
    const duringRewrite = async () => {
      await merge([
        ['upsert', 1, 'a1'],
        ['delete', 2],
        ['upsert', 150, 'n150'],
        ['delete', 6],
      ]);
      await merge([
        ['upsert', 1, 'b1'],
        ['delete', 3],
        ['upsert', 2, 'again2'],
        ['delete', 150],
      ]);
    };
    // Between the first attempt's build and its compare-and-swap: the attempt loses and the next one rebases this too.
    const duringCommit = async () => {
      await merge([
        ['delete', 10],
        ['upsert', 11, 'c11'],
        ['upsert', 151, 'n151'],
      ]);
    };

    const result = await compact(racingCatalog(duringCommit), hookedIo(duringRewrite));

    expect(result.snapshotId).toBeDefined();
    expect(result.attempts).toBe(2);
    expect(result.rebasedDeleteFiles.length).toBeGreaterThan(0);
    // Rows 1, 2, 3, 10 and 11 were deleted or replaced in files the compaction rewrote (5's older version too).
    expect(result.rebasedDeletes).toBeGreaterThanOrEqual(5n);
    expect(await tableRows()).toEqual(modelRows());
    const metadata = await load();
    const head = currentSnapshot(metadata)!;
    expect(head.summary.operation).toBe('replace');
    // The watermark the caller copied from the start is not set back: the merges moved it on meanwhile.
    expect(startWatermark).not.toBe(String(lsn));
    expect(head.summary[WATERMARK]).toBe(String(lsn));
    await expectNoDanglingDeletes();
    // The merge's delete files that named only rewritten files are gone; one that also names a file a merge added
    // meanwhile stays (it still deletes a row there).
    const rewritten = new Set(result.rewrittenDataFiles);
    const liveDeletes = new Set(
      (await planFiles(io, metadata)).flatMap((t) => t.positionDeletes.map((d) => d.filePath)),
    );
    for (const from of result.rebasedFrom) {
      const targets = [...(await readPositionDeleteFile(io, from)).keys()];
      expect(liveDeletes.has(from)).toBe(!targets.every((t) => rewritten.has(t)));
    }
    expect(result.removedDeleteFiles.length).toBeGreaterThan(0);

    // The merge goes on against the new files (its key index must find keys there, and never name old files).
    await merge([
      ['upsert', 1, 'd1'],
      ['delete', 4],
      ['upsert', 11, 'e11'],
      ['upsert', 2, 'e2'],
    ]);
    expect(await tableRows()).toEqual(modelRows());
    const liveData = new Set((await planFiles(io, await load())).map((t) => t.dataFile.filePath));
    const lastDeletes = (await planFiles(io, await load())).flatMap((t) => t.positionDeletes);
    for (const d of lastDeletes) {
      for (const target of (await readPositionDeleteFile(io, d.filePath)).keys()) {
        if (!result.rewrittenDataFiles.includes(target)) continue;
        // A delete file may still name a rewritten file only if it also names a live one (an old merge file).
        expect([...(await readPositionDeleteFile(io, d.filePath)).keys()].some((t) => liveData.has(t))).toBe(true);
      }
    }

    // A second compaction with no concurrent commit cleans up everything, rows unchanged.
    lastMetadata = await load();
    const second = await compact(catalog, io);
    expect(second.rebasedDeleteFiles).toHaveLength(0);
    expect(await tableRows()).toEqual(modelRows());
    const tasks = await planFiles(io, await load());
    expect(tasks.every((t) => t.positionDeletes.length === 0)).toBe(true);
  });

  it('a merge whose commit races a compaction locates its keys again in the new files and commits', async () => {
    await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[2]' }] });
    await seed(Array.from({ length: 40 }, (_, i) => i + 1));
    await merge([
      ['upsert', 3, 'x3'],
      ['delete', 4],
    ]);
    lastMetadata = await load();
    let compaction: CompactionResult | undefined;
    // The compaction commits after the merge located its keys and before the merge's commit.
    const racing = new Proxy(catalog, {
      get: (target, property) => {
        if (property === 'commitWithRetry') {
          return async (...args: Parameters<SqlCatalog['commitWithRetry']>) => {
            if (compaction === undefined) compaction = await compact(catalog, io);
            return target.commitWithRetry(...args);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    lsn += 1;
    const changes: [ChangeOp, number, string?][] = [
      ['upsert', 1, 'm1'],
      ['delete', 2],
      ['upsert', 3, 'm3'],
      ['upsert', 99, 'new99'],
    ];
    const result = await upsertRows(racing, io, 'db.t', {
      columns: new Map<number, unknown[]>([
        [1, changes.map(([, id]) => BigInt(id))],
        [2, changes.map(([, , v]) => v ?? null)],
      ]),
      ops: changes.map(([op]) => op),
      snapshotProperties: { [WATERMARK]: String(lsn) },
      keyIndex,
    });
    for (const [op, id, v] of changes) {
      if (op === 'delete') model.delete(id);
      else model.set(id, v!);
    }
    expect(compaction?.snapshotId).toBeDefined();
    expect(result.updated).toBe(2);
    expect(result.deleted).toBe(1);
    expect(result.inserted).toBe(1);
    // Its position deletes name the compaction's new files only.
    const added = new Set(compaction!.addedDataFiles.map((f) => f.filePath));
    for (const d of result.deleteFiles) {
      for (const target of (await readPositionDeleteFile(io, d.filePath)).keys()) expect(added.has(target)).toBe(true);
    }
    expect(await tableRows()).toEqual(modelRows());
    await expectNoDanglingDeletes();
  });

  it('two compactions at once keep every row exactly once', async () => {
    await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[2]' }] });
    await seed(Array.from({ length: 60 }, (_, i) => i + 1));
    await merge([['delete', 7]]);
    lastMetadata = await load();
    let inner: CompactionResult | undefined;
    const result = await compact(
      catalog,
      hookedIo(async () => {
        inner = await compact(catalog, io);
        await merge([['upsert', 8, 'z8']]);
      }),
    );
    expect(inner?.snapshotId).toBeDefined();
    expect(result.snapshotId).toBeDefined();
    // Every file the outer compaction rewrote was removed by the inner one, so all its copies are deleted again.
    expect(result.rebasedRemovedFiles.length).toBe(result.rewrittenDataFiles.length);
    expect(await tableRows()).toEqual(modelRows());
    lastMetadata = await load();
    await compact(catalog, io);
    expect(await tableRows()).toEqual(modelRows());
  });

  it('refuses only when a rewritten file had equality deletes applied and a merge deletes from it', async () => {
    await catalog.createTable('db.t', { schema });
    const first = await appendColumns(catalog, io, 'db.t', {
      columns: new Map<number, unknown[]>([
        [1, [1n, 2n, 3n]],
        [2, ['a', 'b', 'c']],
      ]),
    });
    await appendColumns(catalog, io, 'db.t', {
      columns: new Map<number, unknown[]>([
        [1, [4n, 5n]],
        [2, ['d', 'e']],
      ]),
    });
    // An equality delete of id 3 (another engine's kind of delete).
    const eq = await writeParquetDataFile({ schema: { fields: [schema.fields[0]!] }, columns: new Map([[1, [3n]]]) });
    const metadata = await load();
    const eqPath = `${metadata.location}/data/eq-${newSnapshotId()}.parquet`;
    await io.write(eqPath, eq.bytes);
    const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
    const manifest = await writeAddedManifest(
      io,
      metadata,
      snapshotId,
      [
        {
          content: 'equality-deletes',
          filePath: eqPath,
          fileFormat: 'PARQUET',
          partition: [],
          specId: 0,
          recordCount: 1n,
          fileSizeInBytes: BigInt(eq.bytes.length),
          equalityIds: [1],
          ...eq.metrics,
        },
      ],
      'deletes',
    );
    await commitNewManifests(catalog, io, 'db.t', {
      snapshotId,
      manifests: [manifest],
      operation: 'delete',
      changes: { ...noChanges(), addedEqualityDeleteFiles: 1, addedEqualityDeletes: 1n },
    });
    const target = first.dataFiles[0]!.filePath;
    const racing = racingCatalog(async () => {
      const written = await writePositionDeleteFile({ filePaths: [target], positions: [0n] });
      const m = await load();
      const path = `${m.location}/data/pos-${newSnapshotId()}.parquet`;
      await io.write(path, written.bytes);
      const id = newSnapshotId(m.snapshots.map((s) => s.snapshotId));
      const man = await writeAddedManifest(
        io,
        m,
        id,
        [
          {
            content: 'position-deletes',
            filePath: path,
            fileFormat: 'PARQUET',
            partition: [],
            specId: 0,
            recordCount: 1n,
            fileSizeInBytes: BigInt(written.bytes.length),
            ...written.metrics,
            referencedDataFile: target,
          },
        ],
        'deletes',
      );
      await commitNewManifests(catalog, io, 'db.t', {
        snapshotId: id,
        manifests: [man],
        operation: 'delete',
        changes: { ...noChanges(), addedPositionDeleteFiles: 1, addedPositionDeletes: 1n },
      });
    });
    const error = await compactTable(racing, io, 'db.t', { minInputFiles: 2 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(MaintenanceConflictError);
    expect((error as Error).message).toContain(target);
    // Nothing committed: ids 1 (position delete) and 3 (equality delete) are gone, the rest stays.
    const ids = (await tableRows()).map(([id]) => id);
    expect(ids).toEqual([2, 4, 5]);
  });

  it('keeps a watermark property from going back, and leaves others as given', () => {
    expect(rebasedProperties({ w: '5', x: 'a' }, { w: '5', x: 'a' }, { w: '9', x: 'a' })).toEqual({ w: '9', x: 'a' });
    // Not copied from the start (the caller chose it): kept.
    expect(rebasedProperties({ w: '7' }, { w: '5' }, { w: '9' })).toEqual({ w: '7' });
    expect(rebasedProperties({ w: '5' }, { w: '5' }, {})).toEqual({ w: '5' });
  });

  it.each([1, 2, 3])(
    'randomized interleaving of merges and compactions equals the reference model (seed %i)',
    async (seedValue) => {
      const random = prng(seedValue);
      const pick = (n: number) => Math.floor(random() * n);
      await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[3]' }] });
      const keySpace = 80;
      let version = 0;
      const randomBatch = (): [ChangeOp, number, string?][] => {
        const n = 1 + pick(12);
        return Array.from({ length: n }, (): [ChangeOp, number, string?] => {
          const id = 1 + pick(keySpace);
          return random() < 0.3 ? ['delete', id] : ['upsert', id, `s${seedValue}-${++version}`];
        });
      };
      const randomMerges = async (max: number) => {
        const count = pick(max + 1);
        for (let i = 0; i < count; i++) await merge(randomBatch());
      };
      let committed = 0;
      let rebased = 0n;
      for (let round = 0; round < 5; round++) {
        await randomMerges(4);
        if (model.size === 0) await merge([['upsert', 1, 'one']]);
        lastMetadata = await load();
        const result = await compact(
          racingCatalog(() => randomMerges(2), pick(3)),
          hookedIo(() => randomMerges(3)),
          // Small target files so that groups are split over several new files.
          { targetFileSizeBytes: 1 + pick(2) * 600 },
        );
        if (result.snapshotId !== undefined) committed++;
        rebased += result.rebasedDeletes;
        expect(await tableRows()).toEqual(modelRows());
        await expectNoDanglingDeletes();
      }
      expect(committed).toBeGreaterThan(0);
      // The interleavings did make compactions carry deletes over (else this test would prove little).
      expect(rebased).toBeGreaterThan(0n);
    },
  );
});
