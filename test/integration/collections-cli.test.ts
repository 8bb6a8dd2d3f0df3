import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startCollectionsBuild } from '../../client/pipelines.js';
import { REPO_ROOT } from '../../lib/config.js';
import { readAlias } from '../../lib/embedding/alias-store.js';
import { PostgresCatalogDriver, SqlCatalog } from '../../lib/iceberg/catalog/index.js';
import { bundledModels } from '../../lib/inference/index.js';
import { readPublishedCollections } from '../../lib/collections/publish.js';
import {
  generateSyntheticCatalog,
  syntheticAttributeOptions,
  type SyntheticCatalog,
} from '../../lib/collections/synthetic.js';
import { startVlmStandIn, type VlmStandIn } from '../../lib/collections/vlm-stand-in.js';
import { CompositeFileIO } from '../../lib/storage/index.js';
import type { CollectionsBuildRequest } from '../../schemas/collections.js';
import { collectionsVocabularyQuery, type VocabularyView } from '../../workflows/collections-build.js';
import { startCollectionsWorkers } from '../fixtures/collections-workers.js';
import { connectToTestServer, eventually, uniqueQueue } from '../fixtures/temporal.js';

// `sluice collections …` end to end: a real collections-build run (300 synthetic items, the VLM stand-in, in-process
// cpu and gpu workers) driven and inspected by spawning `node bin/sluice.js collections …` with a stack config whose
// `defaults` (PostgreSQL catalog, file:// warehouse) are the ones the workers use, so that the CLI finds the
// collections under `<warehouse>/collections` as the build wrote them.

const execFileP = promisify(execFile);
const models = bundledModels();
const NAME = 'cli-shapes';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

describe('sluice collections CLI against a real collections-build run', () => {
  let t: Awaited<ReturnType<typeof connectToTestServer>>;
  let io: CompositeFileIO;
  let catalog: SqlCatalog;
  let driver: PostgresCatalogDriver;
  let workersHandle: { stop: () => Promise<void> } | undefined;
  let vlm: VlmStandIn;
  let synthetic: SyntheticCatalog;
  let dir: string;
  let warehouse: string;
  let configPath: string;
  let v1: WorkflowHandle;
  let proposal: VocabularyView;
  let removed: string;
  const base = uniqueQueue('collcli');
  const ADDED = { attributes: { size: 'large', color: 'black', shape: 'circle' }, name: 'big black balls' };
  const ADDED_ID = 'color=black+shape=circle+size=large';

  /** Runs the real `sluice` binary with the test's stack config and the shared dev server. */
  async function sluice(...args: string[]): Promise<CliResult> {
    try {
      const { stdout, stderr } = await execFileP(
        process.execPath,
        [path.join(REPO_ROOT, 'bin/sluice.js'), ...args, '--config', configPath],
        {
          cwd: REPO_ROOT,
          env: { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: 'default' },
          timeout: 60_000,
        },
      );
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number | string; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  const input = (over: Partial<CollectionsBuildRequest> = {}): CollectionsBuildRequest => ({
    name: NAME,
    version: 'v1',
    catalog: {
      table: 'shop.catalog',
      idColumn: 'item_id',
      imageUriColumn: 'image_uri',
      titleColumn: 'title',
      descriptionColumn: 'description',
      stratumColumn: 'category',
    },
    demand: { table: 'shop.search_demand', queryColumn: 'query', countColumn: 'count' },
    vlm: {
      url: vlm.url,
      model: 'stand-in-vlm',
      concurrency: 8,
      pricePer1kTokens: 0.01,
      timeoutSeconds: 10,
      maxAttempts: 4,
    },
    attributes: syntheticAttributeOptions(),
    promptVersion: '1',
    textModel: models.dualText,
    imageModel: models.dualImage,
    sample: { size: 120, seed: 7 },
    vocabulary: {
      minValueShare: 0.03,
      minSupport: 2,
      maxAttributes: 2,
      mergeCosine: 0.9,
      maxCollections: 500,
      llmJudge: false,
    },
    review: { timeoutSeconds: 600, onTimeout: 'fail' },
    budget: {},
    // No output.root: the build writes to `<warehouse>/collections`, where the CLI looks.
    backfill: { shardSize: 300, batchSize: 64, maxParallelism: 2, coverageThreshold: 0.99 },
    ...over,
  });

  beforeAll(async () => {
    t = await connectToTestServer();
    const admin = new pg.Client({ connectionString: inject('postgresUrl') });
    await admin.connect();
    const database = `collcli_${randomUUID().slice(0, 8)}`;
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const url = new URL(inject('postgresUrl'));
    url.pathname = `/${database}`;
    dir = mkdtempSync(path.join(inject('fixtureDir'), 'collections-cli-'));
    warehouse = `file://${dir}/warehouse`;
    configPath = path.join(dir, 'stack.yml');
    writeFileSync(
      configPath,
      [
        'defaults:',
        `  warehouse: ${warehouse}`,
        '  catalogName: sluice',
        '  catalog:',
        '    type: postgres',
        `    uri: ${url.toString()}`,
        '',
      ].join('\n'),
    );

    io = new CompositeFileIO({ file: { baseDir: REPO_ROOT } });
    driver = new PostgresCatalogDriver({ connectionString: url.toString() });
    catalog = new SqlCatalog({ name: 'sluice', driver, io, warehouse });
    await catalog.initialize();
    await catalog.createNamespace('shop');
    synthetic = await generateSyntheticCatalog({
      catalog,
      io,
      table: 'shop.catalog',
      imagePrefix: `file://${dir}/images`,
      items: 300,
      seed: 11,
      evalShare: 0.25,
      evalUri: `file://${dir}/eval/eval.json`,
      truthUri: `file://${dir}/eval/truth.json`,
      demandTable: 'shop.search_demand',
    });
    vlm = await startVlmStandIn({
      truth: (sha) => synthetic.truthByImageHash.get(sha),
      seed: 3,
      wrongRate: 0.1,
      synonymRate: 0.1,
      malformedRate: 0.05,
      serverErrorRate: 0.05,
    });

    workersHandle = await startCollectionsWorkers({
      t,
      base,
      host: 'gpu-collcli',
      catalog,
      io,
      warehouse,
    });
  }, 180_000);

  afterAll(async () => {
    await workersHandle?.stop();
    await vlm?.close();
    await driver?.close();
    await io?.close();
    await t?.close();
  });

  it('`collections vocabulary` answers while the build awaits review: --json is the query, text has the status', async () => {
    v1 = await startCollectionsBuild(t.client, input(), { taskQueue: base });
    expect(v1.workflowId).toBe(`collections-build/${NAME}/v1`);
    proposal = await eventually(
      async () => {
        const v = await v1.query(collectionsVocabularyQuery);
        return v.status === 'awaiting-review' ? v : undefined;
      },
      120_000,
      'the vocabulary to await review',
    );
    const summary = proposal.proposal!;
    expect(summary.collectionCount).toBeGreaterThan(5);
    expect(summary.merges.length).toBeGreaterThan(0);
    removed = summary.topCollections[0]!.id;

    // --json is the query's answer as is.
    const json = await sluice('collections', 'vocabulary', v1.workflowId, '--json');
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(proposal);

    const text = await sluice('collections', 'vocabulary', v1.workflowId);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines).toContain('status: awaiting-review');
    expect(lines).toContain('on no review within 600s the run will fail');
    for (const m of summary.merges) {
      expect(lines).toContain(`  merged ${m.key}: ${m.canonical} ← ${m.merged.join(', ')}`);
    }
  }, 150_000);

  it("`collections vocabulary` text shows the proposal's size, values per key and top collections", async () => {
    // Still awaiting review: nothing was decided yet.
    const summary = proposal.proposal!;
    const text = await sluice('collections', 'vocabulary', v1.workflowId);
    expect(text.code).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines).toContain(`proposal: ${summary.collectionCount} collections`);
    for (const key of Object.keys(summary.valueCounts)) expect(text.stdout).toContain(`  ${key}: `);
    for (const c of summary.topCollections) expect(text.stdout).toContain(c.id);
  }, 60_000);

  it('`collections review --edit` removes one collection and adds one; the build publishes them', async () => {
    const edits = path.join(dir, 'edits.json');
    writeFileSync(edits, JSON.stringify({ remove: [removed], add: [ADDED] }));
    const reviewed = await sluice(
      'collections',
      'review',
      v1.workflowId,
      '--edit',
      edits,
      '--by',
      'ana',
      '--comment',
      'drop the top one',
    );
    expect(reviewed.stderr).toBe('');
    expect(reviewed.code).toBe(0);
    expect(reviewed.stdout).toContain(`edit sent by ana to ${v1.workflowId}`);
    // The update answers with the decided status (the edit itself is applied by an activity afterwards).
    expect(reviewed.stdout.split('\n')).toContain('status: edited');
    expect(reviewed.stdout).toMatch(/^reviewed by ana/m);

    const result = await v1.result();
    expect(result.phase).toBe('done');
    expect(result.vocabulary?.review).toBe('edited by ana');
    expect(result.vocabulary?.approved).toBe(proposal.proposal!.collectionCount); // one removed, one added
    const published = await readPublishedCollections({ catalog, io, root: `${warehouse}/collections`, name: NAME });
    expect(published.alias.version).toBe('v1');
    expect(published.collections.some((c) => c.id === removed)).toBe(false);
    expect(published.collections.find((c) => c.id === ADDED_ID)?.name).toBe(ADDED.name);

    // The finished build still answers the query: the decision and who made it.
    const after = await sluice('collections', 'vocabulary', v1.workflowId);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain('status: edited');
    expect(after.stdout).toContain('reviewed by ana: drop the top one');
  }, 150_000);

  it('`collections ls` and `collections show` print the published version', async () => {
    const ls = await sluice('collections', 'ls');
    expect(ls.stderr).toBe('');
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`^${NAME}@current = v1 {2}\\(generation 1, `, 'm'));
    expect(ls.stdout).not.toContain('previous:');

    const published = await readPublishedCollections({ catalog, io, root: `${warehouse}/collections`, name: NAME });
    const show = await sluice('collections', 'show', NAME, '--limit', '3', '--items', '2');
    expect(show.stderr).toBe('');
    expect(show.code).toBe(0);
    const lines = show.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${NAME}@current = v1 \\(generation 1, `));
    expect(lines[1]).toMatch(
      new RegExp(
        `^version v1: ${published.collections.length} collections, \\d+ members.*\\[shop\\.collections @ snapshot -?\\d+`,
      ),
    );
    // The three largest collections, each with at most two members, then how many more there are.
    const largest = [...published.collections]
      .sort((a, b) => b.items.length - a.items.length || (a.id < b.id ? -1 : 1))
      .slice(0, 3);
    const headers = lines.filter((l) => /^\S.*\(\S+\) \d+ items, \d+ VLM-verified/.test(l));
    expect(headers).toHaveLength(3);
    largest.forEach((c, i) => expect(headers[i]).toContain(`(${c.id}) ${c.items.length} items`));
    expect(show.stdout).toContain(`    ${largest[0]!.items[0]!.score.toFixed(4)}  ${largest[0]!.items[0]!.itemId}`);
    expect(lines.at(-1)).toBe(`… ${published.collections.length - 3} more collections`);
  }, 60_000);

  it('a second version is published, and `collections rollback` goes back to the first', async () => {
    const v2 = await startCollectionsBuild(
      t.client,
      input({ version: 'v2', review: { timeoutSeconds: 1, onTimeout: 'approve' } }),
      { taskQueue: base },
    );
    const result = await v2.result();
    expect(result.phase).toBe('done');
    expect(result.vocabulary?.review).toBe('auto-approved on timeout');
    expect((await readAlias(io, `${warehouse}/collections`, NAME))?.version).toBe('v2');

    const ls = await sluice('collections', 'ls');
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`^${NAME}@current = v2 {2}\\(generation 2, `, 'm'));
    expect(ls.stdout).toContain('  previous: v1');
    const showV2 = await sluice('collections', 'show', NAME, '--limit', '1');
    expect(showV2.code).toBe(0);
    expect(showV2.stdout).toMatch(/^version v2: /m);
    // v2 had no edit: the collection removed from v1 is back.
    expect(
      (await readPublishedCollections({ catalog, io, root: `${warehouse}/collections`, name: NAME })).collections.some(
        (c) => c.id === removed,
      ),
    ).toBe(true);

    const back = await sluice('collections', 'rollback', NAME);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(back.stdout).toContain(`${NAME}@current = v1 (generation 3, rolled back)`);
    const after = await readPublishedCollections({ catalog, io, root: `${warehouse}/collections`, name: NAME });
    expect(after.alias.version).toBe('v1');
    expect(after.collections.some((c) => c.id === removed)).toBe(false);
    const showV1 = await sluice('collections', 'show', NAME, '--limit', '1');
    expect(showV1.stdout).toMatch(/^version v1: /m);
    expect((await sluice('collections', 'ls')).stdout).toMatch(
      new RegExp(`^${NAME}@current = v1 {2}\\(generation 3, rollback by cli`, 'm'),
    );

    // Nothing older to go back to.
    const again = await sluice('collections', 'rollback', NAME);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`collections ${NAME} cannot be rolled back`);
  }, 150_000);

  it('`collections review` of a finished build fails with the reason and a non-zero exit', async () => {
    const refused = await sluice('collections', 'review', v1.workflowId, '--approve', '--by', 'bob');
    expect(refused.code).toBe(1);
    expect(refused.stdout).not.toContain('approve sent');
    expect(refused.stderr).toMatch(
      /^sluice: collections-build\/.* is not running \(finished, or never started\): nothing to review/m,
    );
    expect(refused.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace

    // `show` of a name never published says so, and where it looked.
    const unknown = await sluice('collections', 'show', 'no-such-collections');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(
      `collections no-such-collections have no published version under ${warehouse}/collections`,
    );
  }, 60_000);
});
