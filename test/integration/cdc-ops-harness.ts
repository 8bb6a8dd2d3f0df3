import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { Worker } from '@temporalio/worker';
import pg from 'pg';
import { inject } from 'vitest';
import { startCdcOnboard } from '../../client/pipelines.js';
import { REPO_ROOT } from '../../lib/config.js';
import type { CrashInjector } from '../../lib/cdc/crash-points.js';
import { dropSlot } from '../../lib/cdc/slot.js';
import { parseLsn } from '../../lib/cdc/lsn.js';
import { createSourcePools, openWarehouse, type SourcePools, type Warehouse } from '../../lib/stack/warehouse.js';
import type { CdcMergeProgress } from '../../schemas/cdc.js';
import { cdcMergeProgressQuery } from '../../workflows/cdc-merge.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import type { CatalogRef } from '../interop/engines.js';
import { connectToTestServer, eventually, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

/**
 * Shared setup of the CDC operator tests (schema evolution, forget, quarantine, maintenance): a private database on
 * the global PostgreSQL, a temp SQLite catalog and file:// warehouse, and an in-process cpu worker with the CDC
 * activities on its own queue. Not a test file itself.
 */
export interface CdcHarness {
  suffix: string;
  databaseUrl: string;
  db: pg.Client;
  dir: string;
  warehouse: Warehouse;
  catalogRef: CatalogRef;
  t: Awaited<ReturnType<typeof connectToTestServer>>;
  base: string;
  /**
   * Onboards `public.<table>` as source `<name><suffix>` and returns the running merge's handle (and the
   * onboarding's). `connectionString` replaces the database's URL in the input (e.g. an `env:NAME` reference).
   */
  onboard(
    name: string,
    table: string,
    merge?: Record<string, unknown>,
    connectionString?: string,
  ): Promise<{ merge: WorkflowHandle; sourceName: string; icebergTable: string; onboarding: WorkflowHandle }>;
  /**
   * With SLUICE_RECORD_HISTORIES=1, writes `test/histories/<name>.json` for the replay tests; a running merge is
   * cancelled first, so that its history is complete.
   */
  recordHistory(name: string, handle: WorkflowHandle, cancel?: boolean): Promise<void>;
  /** Waits until the merge's slot has confirmed everything the source wrote so far. */
  caughtUp(merge: WorkflowHandle, timeoutMs?: number): Promise<CdcMergeProgress>;
  close(): Promise<void>;
}

/** Options of {@link startCdcHarness}. */
export interface CdcHarnessOptions {
  /** Test-only crash points of the in-process worker's CDC activities (e.g. one that throws once at a point). */
  crashes?: CrashInjector;
  /** The warehouse in a new bucket of the real S3 server (s3proxy of the global setup) instead of `file://`. */
  s3?: boolean;
}

export async function startCdcHarness(prefix: string, options: CdcHarnessOptions = {}): Promise<CdcHarness> {
  const postgresUrl = inject('postgresUrl');
  const suffix = randomUUID().replaceAll('-', '').slice(0, 8);
  const database = `sluice_${prefix}_${suffix}`;
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  const databaseUrl = url.toString();
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const dir = mkdtempSync(path.join(os.tmpdir(), `sluice-${prefix}-`));
  const s3 = options.s3 ? inject('s3') : undefined;
  let warehouseUri = `file://${dir}/wh`;
  if (s3) {
    const bucket = `${prefix.replaceAll('_', '-')}-${suffix}`;
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    client.destroy();
    warehouseUri = `s3://${bucket}/wh`;
  }
  const warehouse = await openWarehouse(
    {
      warehouse: warehouseUri,
      catalogName: 'cdc_ops',
      catalog: { type: 'sqlite', path: path.join(dir, 'catalog.db') },
    },
    s3
      ? {
          s3: {
            endpoint: s3.endpoint,
            region: s3.region,
            credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
          },
        }
      : {},
  );
  const catalogRef: CatalogRef = {
    uri: `sqlite:///${path.join(dir, 'catalog.db')}`,
    name: 'cdc_ops',
    warehouse: warehouse.warehouse,
    ...(s3
      ? {
          s3: {
            endpoint: s3.endpoint,
            accessKeyId: s3.accessKeyId,
            secretAccessKey: s3.secretAccessKey,
            region: s3.region,
          },
        }
      : {}),
  };
  const pools: SourcePools = createSourcePools();
  const t = await connectToTestServer();
  const base = uniqueQueue(prefix);
  const worker: Worker = await createCpuWorker({
    connection: t.nativeConnection,
    namespace: 'default',
    baseTaskQueue: base,
    workflows: { workflowBundle: testWorkflowBundle() },
    shutdownGraceTime: '1s',
    cdc: {
      catalog: warehouse.catalog,
      io: warehouse.io,
      pgPoolFor: pools.poolFor,
      heartbeatIntervalMs: 1000,
      ...(options.crashes ? { crashes: options.crashes } : {}),
    },
  });
  const running = worker.run();
  const slots: string[] = [];
  const merges: WorkflowHandle[] = [];

  const currentLsn = async () =>
    parseLsn((await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);

  return {
    suffix,
    databaseUrl,
    db,
    dir,
    warehouse,
    catalogRef,
    t,
    base,
    async onboard(name, table, merge, connectionString) {
      const sourceName = `${name}${suffix}`;
      const handle = await startCdcOnboard(
        t.client,
        {
          source: { connectionString: connectionString ?? databaseUrl },
          sourceName,
          table: `public.${table}`,
          buckets: 2,
          merge: { maxChangesPerBatch: 500, pollIntervalMs: 200, idleIntervalMs: 500, ...merge },
        },
        { taskQueue: base },
      );
      slots.push(`sluice_${sourceName}`);
      const done = await handle.result();
      const mergeHandle = t.client.workflow.getHandle(done.mergeWorkflowId!);
      merges.push(mergeHandle);
      return { merge: mergeHandle, sourceName, icebergTable: done.onboard.icebergTable, onboarding: handle };
    },
    async recordHistory(name, handle, cancel = false) {
      if (process.env.SLUICE_RECORD_HISTORIES !== '1') return;
      if (cancel) {
        await handle.cancel();
        await handle.result().catch(() => undefined);
      }
      const history = await handle.fetchHistory();
      writeFileSync(path.join(REPO_ROOT, 'test/histories', `${name}.json`), historyToJSON(history) + '\n');
    },
    async caughtUp(merge, timeoutMs = 30_000) {
      const target = await currentLsn();
      return eventually(
        async () => {
          const p = await merge.query(cdcMergeProgressQuery).catch(() => undefined);
          return p?.confirmedLsn !== undefined && parseLsn(p.confirmedLsn) >= target ? p : undefined;
        },
        timeoutMs,
        'the merge to catch up with the source',
      );
    },
    async close() {
      for (const m of merges) await m.terminate('test done').catch(() => undefined);
      worker.shutdown();
      await running;
      await t.close();
      await pools.close();
      for (const slot of slots) await dropSlot(db, slot).catch(() => undefined);
      await db.end();
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
      await warehouse.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
