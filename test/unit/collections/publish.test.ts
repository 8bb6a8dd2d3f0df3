import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rollbackAlias, setAlias } from '../../../lib/embedding/alias-store.js';
import { buildIndex } from '../../../lib/embedding/index-store.js';
import { CollectionsError } from '../../../lib/collections/errors.js';
import {
  listCollectionAliases,
  readCollectionsVersion,
  readPublishedCollections,
  RUN_PROPERTY,
  VERSION_PROPERTY,
  writeBuildManifest,
  writeCollectionsVersion,
} from '../../../lib/collections/publish.js';
import type { PublishedCollection } from '../../../lib/collections/types.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';
import {
  buildVocabularyReview,
  formatPublishedCollections,
  formatVocabularyView,
} from '../../../cli/commands/collections-cmd.js';

const red: PublishedCollection = {
  id: 'color=red',
  name: 'red',
  attributes: { color: 'red' },
  partial: false,
  items: [
    { itemId: 'i1', score: 0.93, verified: false },
    { itemId: 'i7', score: 0.61, verified: true },
  ],
};
const blueCircle: PublishedCollection = {
  id: 'color=blue+shape=circle',
  name: 'blue circle',
  attributes: { color: 'blue', shape: 'circle' },
  partial: true,
  items: [{ itemId: 'i3', score: 0.8, verified: false }],
};
const green: PublishedCollection = {
  id: 'color=green',
  name: 'green',
  attributes: { color: 'green' },
  partial: false,
  items: [],
};
const builtAt = new Date('2026-11-26T05:00:00.000Z');
const table = 'db.collections';

describe('collections table, build manifest and alias', () => {
  let t: TempCatalog;
  let root: string;
  beforeEach(async () => {
    t = await createTempCatalog('sluice-collections-');
    root = `file://${t.dir}/collections`;
  });
  afterEach(() => t.cleanup());

  const write = (version: string, runKey: string, collections: PublishedCollection[]) =>
    writeCollectionsVersion({
      catalog: t.catalog,
      io: t.io,
      table,
      version,
      runKey,
      collections,
      builtAt,
      summary: { 'sluice.collections.precision-at-10': '0.97' },
    });

  it('writes a version once per run key, replaces it on a rerun, and keeps other versions', async () => {
    const first = await write('v1', 'run-a', [red, blueCircle]);
    expect(first).toMatchObject({ rows: 2, alreadyWritten: false });
    const { metadata } = await t.catalog.loadTable(table);
    const snap = metadata.snapshots.find((s) => s.snapshotId.toString() === first.snapshotId)!;
    expect(snap.summary[VERSION_PROPERTY]).toBe('v1');
    expect(snap.summary[RUN_PROPERTY]).toBe('run-a');
    expect(snap.summary['sluice.collections.precision-at-10']).toBe('0.97');

    // A retried write of the same run commits nothing.
    const retried = await write('v1', 'run-a', [red, blueCircle]);
    expect(retried).toEqual({ snapshotId: first.snapshotId, rows: 2, alreadyWritten: true });
    expect((await t.catalog.loadTable(table)).metadata.snapshots).toHaveLength(1);

    expect(await readCollectionsVersion(t.catalog, t.io, table, 'v1')).toEqual([blueCircle, red]);

    // Another run of v1 replaces its rows instead of adding to them.
    const rerun = await write('v1', 'run-b', [red]);
    expect(rerun.alreadyWritten).toBe(false);
    expect(rerun.snapshotId).not.toBe(first.snapshotId);
    expect(await readCollectionsVersion(t.catalog, t.io, table, 'v1')).toEqual([red]);
    // The first run's snapshot still reads as it was (time travel).
    expect(await readCollectionsVersion(t.catalog, t.io, table, 'v1', first.snapshotId)).toEqual([blueCircle, red]);

    // v2 lands beside v1.
    await write('v2', 'run-c', [red, green]);
    expect(await readCollectionsVersion(t.catalog, t.io, table, 'v1')).toEqual([red]);
    expect((await readCollectionsVersion(t.catalog, t.io, table, 'v2')).map((c) => c.id)).toEqual([
      'color=green',
      'color=red',
    ]);

    // Going back to run-a after run-b is a new write, not a no-op on the stale snapshot.
    const back = await write('v1', 'run-a', [blueCircle]);
    expect(back.alreadyWritten).toBe(false);
    expect(await readCollectionsVersion(t.catalog, t.io, table, 'v1')).toEqual([blueCircle]);
  });

  it('records an empty version as its own snapshot', async () => {
    const r = await write('v0', 'run-x', []);
    expect(r).toMatchObject({ rows: 0, alreadyWritten: false });
    expect(await readCollectionsVersion(t.catalog, t.io, table, 'v0', r.snapshotId)).toEqual([]);
    expect((await write('v0', 'run-x', [])).alreadyWritten).toBe(true);
  });

  it('publishes through the alias, reads the current version at its snapshot, and rolls back', async () => {
    await expect(readPublishedCollections({ catalog: t.catalog, io: t.io, root, name: 'shop' })).rejects.toThrow(
      CollectionsError,
    );
    const v1 = await write('v1', 'run-a', [red, blueCircle]);
    const dir1 = await writeBuildManifest(t.io, root, 'shop', 'v1', {
      runKey: 'run-a',
      table,
      snapshotId: v1.snapshotId,
      builtAt: builtAt.toISOString(),
      evaluation: {
        precisionAt10: 1,
        recallAt10: 0.95,
        memberRecall: 0.9,
        collectionsEvaluated: 2,
        queriesEvaluated: 2,
      },
      usage: { calls: 12, promptTokens: 1000, completionTokens: 50, costUsd: 0.01 },
      counts: { collections: 2 },
    });
    expect(dir1).toBe(`${root}/shop/versions/v1/b-run-a`);
    await setAlias(t.io, root, 'shop', { version: 'v1', indexDir: dir1 }, { by: 'wf-1' });

    const v2 = await write('v2', 'run-b', [green]);
    const dir2 = await writeBuildManifest(t.io, root, 'shop', 'v2', {
      runKey: 'run-b',
      table,
      snapshotId: v2.snapshotId,
      builtAt: builtAt.toISOString(),
      counts: { collections: 1 },
    });
    // Written but not yet published: the alias still serves v1.
    let current = await readPublishedCollections({ catalog: t.catalog, io: t.io, root, name: 'shop' });
    expect(current.alias.version).toBe('v1');
    expect(current.manifest.usage?.calls).toBe(12);
    expect(current.collections).toEqual([blueCircle, red]);

    await setAlias(t.io, root, 'shop', { version: 'v2', indexDir: dir2 }, { by: 'wf-2' });
    current = await readPublishedCollections({ catalog: t.catalog, io: t.io, root, name: 'shop' });
    expect(current.alias).toMatchObject({ version: 'v2', generation: 2 });
    expect(current.collections).toEqual([green]);

    // A rerun of v1 after publishing does not change what the alias serves once rolled back: it reads v1's snapshot.
    await write('v1', 'run-z', [red]);
    await rollbackAlias(t.io, root, 'shop', { by: 'cli' });
    current = await readPublishedCollections({ catalog: t.catalog, io: t.io, root, name: 'shop' });
    expect(current.alias).toMatchObject({ version: 'v1', generation: 3, reason: 'rollback' });
    expect(current.collections).toEqual([blueCircle, red]);
  });

  it('lists only collections aliases, not the item index that shares the root', async () => {
    const v1 = await write('v1', 'run-a', [red]);
    const dir = await writeBuildManifest(t.io, root, 'shop', 'v1', {
      runKey: 'run-a',
      table,
      snapshotId: v1.snapshotId,
      builtAt: builtAt.toISOString(),
      counts: {},
    });
    await setAlias(t.io, root, 'shop', { version: 'v1', indexDir: dir }, { by: 'wf' });
    const itemDir = `${root}/shop-items/versions/1/b-x`;
    await buildIndex(t.io, {
      dir: itemDir,
      entries: [{ id: 'i1', vector: new Float32Array([1, 0]), metadata: {} }],
      manifest: {
        index: 'shop-items',
        version: '1',
        model: { path: 'm', version: '1' },
        table: 't',
        metadataColumns: [],
        versions: ['1'],
        builtAt: builtAt.toISOString(),
      },
    });
    await setAlias(t.io, root, 'shop-items', { version: '1', indexDir: itemDir }, { by: 'wf' });
    expect((await listCollectionAliases(t.io, root)).map((a) => [a.index, a.version])).toEqual([['shop', 'v1']]);
  });
});

describe('collections CLI helpers', () => {
  it('formats the published collections largest first, marks partial ones and cuts items', () => {
    const lines = formatPublishedCollections(
      {
        version: 'v1',
        snapshotId: '42',
        table,
        builtAt: builtAt.toISOString(),
        evaluation: {
          precisionAt10: 0.96,
          recallAt10: 0.91,
          memberRecall: 0.9,
          collectionsEvaluated: 2,
          queriesEvaluated: 2,
        },
        usage: { calls: 7, promptTokens: 0, completionTokens: 0, costUsd: 0.5 },
      },
      [blueCircle, red, green],
      { limit: 2, items: 1 },
    );
    expect(lines[0]).toMatch(/^version v1: 3 collections, 3 members, 1 partial/);
    expect(lines[1]).toMatch(/P@10 0\.9600, R@10 0\.9100/);
    expect(lines[3]).toMatch(/^red {2}\(color=red\) 2 items, 1 VLM-verified$/);
    expect(lines[4]).toMatch(/0\.9300 {2}i1$/);
    expect(lines[5]).toMatch(/… 1 more/);
    expect(lines.find((l) => l.startsWith('blue circle'))).toMatch(/\[partial\]/);
    expect(lines[lines.length - 1]).toBe('… 1 more collections');
  });

  it('builds a validated vocabulary review from the options', () => {
    expect(buildVocabularyReview({ approve: true, by: 'ana', comment: 'ok' })).toEqual({
      action: 'approve',
      by: 'ana',
      comment: 'ok',
    });
    expect(buildVocabularyReview({ reject: true, by: 'ana' })).toEqual({ action: 'reject', by: 'ana' });
    const edit = buildVocabularyReview(
      { edit: 'e.json', by: 'ana' },
      JSON.stringify({ remove: ['color=green'], add: [{ attributes: { color: 'teal' }, name: 'teal' }] }),
    );
    expect(edit).toEqual({
      action: 'edit',
      by: 'ana',
      remove: ['color=green'],
      add: [{ attributes: { color: 'teal' }, name: 'teal' }],
    });
    expect(() => buildVocabularyReview({ approve: true, reject: true, by: 'ana' })).toThrow(/exactly one/);
    expect(() => buildVocabularyReview({ edit: 'e.json', by: 'ana' }, '{"remove": "x"}')).toThrow(/remove/);
    expect(() => buildVocabularyReview({ edit: 'e.json', by: 'ana' }, 'nope')).toThrow(/not JSON/);
  });

  it('formats the vocabulary query answer', () => {
    const lines = formatVocabularyView({
      status: 'awaiting-review',
      timeoutSeconds: 600,
      onTimeout: 'approve',
      // The shape summariseVocabulary gives the `vocabulary` query.
      proposal: {
        collectionCount: 2,
        valueCounts: { color: 2 },
        topCollections: [{ id: 'color=red', name: 'red', support: 10, demand: 3 }],
        mergeCount: 1,
        merges: [{ key: 'color', canonical: 'red', merged: ['crimson'], mergedCount: 1 }],
        droppedCount: 2,
        droppedByReason: { 'low-support': 2 },
        dropped: [
          { name: 'mauve', reason: 'low-support' },
          { name: 'puce', reason: 'low-support' },
        ],
      },
    });
    expect(lines).toContain('status: awaiting-review');
    expect(lines).toContain('on no review within 600s the run will auto-approve');
    expect(lines).toContain('proposal: 2 collections');
    expect(lines).toContain('  color: 2 values');
    expect(lines).toContain('  merged color: red ← crimson');
    expect(lines.some((l) => l.includes('color=red') && l.includes('demand 3, support 10'))).toBe(true);
    expect(lines).toContain('    … 1 more');
    expect(lines).toContain('  dropped: 2 low-support');
  });
});
