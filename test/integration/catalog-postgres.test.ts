import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CatalogUnavailableError,
  CommitConflictError,
  InvalidIdentifierError,
  NamespaceAlreadyExistsError,
  NamespaceNotEmptyError,
  NoSuchNamespaceError,
  NoSuchTableError,
  PostgresCatalogDriver,
  SqlCatalog,
  TableAlreadyExistsError,
  metadataFileVersion,
} from '../../lib/iceberg/catalog/index.js';
import { CorruptMetadataError } from '../../lib/iceberg/errors.js';
import { newSnapshotId, type TableMetadata } from '../../lib/iceberg/metadata-json.js';
import { addSnapshot, updateProperties } from '../../lib/iceberg/table-update.js';
import { Types, type Schema } from '../../lib/iceberg/types.js';
import { S3FileIO, type FileInfo } from '../../lib/storage/index.js';

// The real PostgreSQL and s3proxy from globalSetup: the catalog lives in Postgres, the warehouse in S3, as in
// production. A missing service fails the run (inject throws), never skips.
const postgresUrl = inject('postgresUrl');
const s3 = inject('s3');
const suffix = randomUUID().replaceAll('-', '').slice(0, 12);
const database = `sluice_catalog_${suffix}`;
const bucket = `sluice-catalog-${suffix}`;
const warehouse = `s3://${bucket}/warehouse`;

const SCHEMA: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
  ],
};

let io: S3FileIO;
let catalogUrl: string;
const drivers: PostgresCatalogDriver[] = [];

function newCatalog(name = 'sluice', maxConnections = 4): SqlCatalog {
  const driver = new PostgresCatalogDriver({ connectionString: catalogUrl, maxConnections });
  drivers.push(driver);
  return new SqlCatalog({ name, driver, io, warehouse });
}

async function listUris(prefix: string): Promise<string[]> {
  const out: FileInfo[] = [];
  for await (const f of io.list(prefix)) out.push(f);
  return out.map((f) => f.uri).sort();
}

async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: catalogUrl });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  catalogUrl = url.toString();
  io = new S3FileIO({
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  await io.client.send(new CreateBucketCommand({ Bucket: bucket }));
});

afterAll(async () => {
  await Promise.all(drivers.map((d) => d.close()));
  await io?.close();
});

describe('SqlCatalog on PostgreSQL with an S3 warehouse', () => {
  it('creates the JDBC-catalog tables with the columns, types and keys Java and pyiceberg use', async () => {
    const catalog = newCatalog();
    await catalog.initialize();
    // A second catalog racing the same DDL must not fail.
    await Promise.all([newCatalog().initialize(), newCatalog().initialize()]);
    const columns = await sql<{
      table_name: string;
      column_name: string;
      data_type: string;
      len: number | null;
      nullable: string;
    }>(
      'SELECT table_name, column_name, data_type, character_maximum_length AS len, is_nullable AS nullable ' +
        "FROM information_schema.columns WHERE table_name IN ('iceberg_tables', 'iceberg_namespace_properties') " +
        'ORDER BY table_name, ordinal_position',
    );
    expect(columns.map((c) => `${c.table_name}.${c.column_name} ${c.data_type}(${c.len}) ${c.nullable}`)).toEqual([
      'iceberg_namespace_properties.catalog_name character varying(255) NO',
      'iceberg_namespace_properties.namespace character varying(255) NO',
      'iceberg_namespace_properties.property_key character varying(255) NO',
      'iceberg_namespace_properties.property_value character varying(1000) NO',
      'iceberg_tables.catalog_name character varying(255) NO',
      'iceberg_tables.table_namespace character varying(255) NO',
      'iceberg_tables.table_name character varying(255) NO',
      'iceberg_tables.metadata_location character varying(1000) YES',
      'iceberg_tables.previous_metadata_location character varying(1000) YES',
      'iceberg_tables.iceberg_type character varying(5) YES',
    ]);
    const keys = await sql<{ table_name: string; column_name: string }>(
      'SELECT k.table_name, k.column_name FROM information_schema.key_column_usage k ' +
        'JOIN information_schema.table_constraints c ON c.constraint_name = k.constraint_name ' +
        "WHERE c.constraint_type = 'PRIMARY KEY' AND k.table_name LIKE 'iceberg%' ORDER BY k.table_name, k.ordinal_position",
    );
    expect(keys.map((k) => `${k.table_name}.${k.column_name}`)).toEqual([
      'iceberg_namespace_properties.catalog_name',
      'iceberg_namespace_properties.namespace',
      'iceberg_namespace_properties.property_key',
      'iceberg_tables.catalog_name',
      'iceberg_tables.table_namespace',
      'iceberg_tables.table_name',
    ]);
  });

  it('creates, lists, updates and drops namespaces; concurrent creates have one winner', async () => {
    const catalog = newCatalog('ns-test');
    await catalog.createNamespace('db');
    await catalog.createNamespace('sales.eu', { owner: 'team-a' });
    expect(await catalog.listNamespaces()).toEqual([['db'], ['sales']]);
    expect(await catalog.listNamespaces('sales')).toEqual([['sales', 'eu']]);
    expect(await catalog.loadNamespaceProperties('db')).toEqual({ exists: 'true' });
    expect(
      await catalog.updateNamespaceProperties('sales.eu', { removals: ['owner'], updates: { tier: 'gold' } }),
    ).toEqual({ removed: ['owner'], updated: ['tier'], missing: [] });
    expect(await catalog.loadNamespaceProperties('sales.eu')).toEqual({ tier: 'gold' });
    await expect(catalog.dropNamespace('sales')).rejects.toBeInstanceOf(NamespaceNotEmptyError);
    await catalog.dropNamespace('sales.eu');
    await expect(catalog.loadNamespaceProperties('sales')).rejects.toBeInstanceOf(NoSuchNamespaceError);

    const racers = await Promise.allSettled(
      Array.from({ length: 5 }, () => newCatalog('ns-test', 1).createNamespace('race')),
    );
    expect(racers.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of racers) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(NamespaceAlreadyExistsError);
    }
  });

  it('creates, loads, lists, renames and drops (with purge) tables in S3', async () => {
    const catalog = newCatalog();
    await catalog.createNamespace('shop');
    const created = await catalog.createTable('shop.orders', { schema: SCHEMA, properties: { owner: 'cdc' } });
    expect(created.metadata.location).toBe(`${warehouse}/shop/orders`);
    expect(created.metadataLocation.startsWith(`${warehouse}/shop/orders/metadata/00000-`)).toBe(true);
    expect(await listUris(`${warehouse}/shop/orders/`)).toEqual([created.metadataLocation]);
    const rows = await sql('SELECT * FROM iceberg_tables WHERE catalog_name = $1 AND table_name = $2', [
      'sluice',
      'orders',
    ]);
    expect(rows).toEqual([
      {
        catalog_name: 'sluice',
        table_namespace: 'shop',
        table_name: 'orders',
        metadata_location: created.metadataLocation,
        previous_metadata_location: null,
        iceberg_type: 'TABLE',
      },
    ]);

    const loaded = await catalog.loadTable('shop.orders');
    expect(loaded.metadata.tableUuid).toBe(created.metadata.tableUuid);
    expect(loaded.metadata.properties.owner).toBe('cdc');
    await expect(catalog.createTable('shop.orders', { schema: SCHEMA })).rejects.toBeInstanceOf(
      TableAlreadyExistsError,
    );
    await catalog.createTable('shop.items', { schema: SCHEMA });
    expect((await catalog.listTables('shop')).map((t) => t.name)).toEqual(['items', 'orders']);

    await catalog.renameTable('shop.items', 'shop.line_items');
    expect(await catalog.tableExists('shop.items')).toBe(false);
    expect(await catalog.tableExists('shop.line_items')).toBe(true);

    await catalog.commitWithRetry('shop.orders', (m) => updateProperties(m, { a: '1' }));
    await io.write(`${created.metadata.location}/data/part-0.parquet`, 'data');
    expect(await catalog.dropTable('shop.orders', { purge: true })).toEqual({ deletedFiles: 3 });
    expect(await listUris(`${warehouse}/shop/orders/`)).toEqual([]);
    expect(await catalog.tableExists('shop.orders')).toBe(false);
    // Without purge, the files stay.
    const items = await catalog.loadTable('shop.line_items');
    await catalog.dropTable('shop.line_items');
    expect(await io.exists(items.metadataLocation)).toBe(true);
    await catalog.dropNamespace('shop');
  });

  it('creating the same table concurrently has one winner and leaves one metadata file', async () => {
    const catalog = newCatalog();
    await catalog.createNamespace('race_create');
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => newCatalog('sluice', 1).createTable('race_create.t', { schema: SCHEMA })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(TableAlreadyExistsError);
    }
    const winner = (await catalog.loadTable('race_create.t')).metadataLocation;
    expect(await listUris(`${warehouse}/race_create/t/`)).toEqual([winner]);
  });

  it('names the table in errors for bad identifiers, missing tables and corrupt metadata', async () => {
    const catalog = newCatalog();
    await catalog.createNamespace('errs');
    await expect(catalog.loadTable('no_namespace')).rejects.toBeInstanceOf(InvalidIdentifierError);
    await expect(catalog.loadTable({ namespace: ['errs'], name: 'x'.repeat(256) })).rejects.toThrow(/at most 255/);
    const missing = await catalog.loadTable('errs.missing').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NoSuchTableError);
    expect(String(missing)).toContain('"errs.missing"');

    const created = await catalog.createTable('errs.broken', { schema: SCHEMA });
    await io.write(created.metadataLocation, '{"format-version": 2');
    const corrupt = await catalog.loadTable('errs.broken').catch((e: unknown) => e);
    expect(corrupt).toBeInstanceOf(CorruptMetadataError);
    expect((corrupt as CorruptMetadataError).file).toBe(created.metadataLocation);
    expect(String(corrupt)).toContain(created.metadataLocation);
  });

  it('compare-and-swap: of two commits from one base one wins, the other gets a typed conflict', async () => {
    const catalog = newCatalog();
    const rival = newCatalog();
    await catalog.createNamespace('cas');
    const base = await catalog.createTable('cas.t', { schema: SCHEMA });
    const commit = (c: SqlCatalog, writer: string) =>
      c.commitTable('cas.t', {
        expectedMetadataLocation: base.metadataLocation,
        newMetadata: updateProperties(base.metadata, { writer }),
        baseMetadata: base.metadata,
      });
    const results = await Promise.allSettled([commit(catalog, 'one'), commit(rival, 'two')]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.reason).toBeInstanceOf(CommitConflictError);
    expect((lost[0]?.reason as CommitConflictError).failureType).toBe('CommitConflict');
    const current = await catalog.loadTable('cas.t');
    expect(current.metadataLocation).toBe(won[0]?.value.metadataLocation);
    // The loser's file is gone: the base and the winner remain.
    expect(await listUris(`${warehouse}/cas/t/metadata/`)).toHaveLength(2);

    const attempts: number[] = [];
    const retried = await catalog.commitWithRetry(
      'cas.t',
      async (m, { attempt, metadataLocation }) => {
        attempts.push(attempt);
        if (attempt === 1) {
          await rival.commitTable('cas.t', {
            expectedMetadataLocation: metadataLocation,
            newMetadata: updateProperties(m, { rival: 'yes' }),
          });
        }
        return updateProperties(m, { retried: 'yes' });
      },
      { minWaitMs: 5 },
    );
    expect(attempts).toEqual([1, 2]);
    expect(retried.metadata.properties).toMatchObject({ rival: 'yes', retried: 'yes' });
  });

  it('N parallel commitWithRetry appends from separate connection pools all land', async () => {
    const setup = newCatalog();
    await setup.createNamespace('concurrent');
    const created = await setup.createTable('concurrent.events', { schema: SCHEMA });
    const writers = 8;
    // Every writer's first attempt waits until all have loaded the same base, so that 7 of them must lose the
    // compare-and-swap and go through the reload-and-retry path against the real database.
    let loadedFirst = 0;
    let releaseAll!: () => void;
    const allLoaded = new Promise<void>((resolve) => (releaseAll = resolve));
    let updateCalls = 0;
    const append =
      (writer: number) =>
      async (m: TableMetadata, { attempt }: { attempt: number }) => {
        updateCalls++;
        if (attempt === 1) {
          if (++loadedFirst === writers) releaseAll();
          await allLoaded;
        }
        return addSnapshot(m, {
          snapshotId: newSnapshotId(m.snapshots.map((s) => s.snapshotId)),
          manifestList: `${m.location}/metadata/snap-writer-${writer}.avro`,
          summary: { operation: 'append', 'sluice.writer': String(writer) },
          timestampMs: BigInt(Date.now()),
        });
      };
    const results = await Promise.all(
      Array.from({ length: writers }, (_, i) =>
        newCatalog('sluice', 1).commitWithRetry('concurrent.events', append(i), {
          maxAttempts: 40,
          minWaitMs: 5,
          maxWaitMs: 100,
        }),
      ),
    );
    expect(updateCalls).toBeGreaterThanOrEqual(writers + writers - 1);
    // Every commit produced its own metadata file, numbered 1..N in the order they landed.
    const locations = results.map((r) => r.metadataLocation);
    expect(new Set(locations).size).toBe(writers);
    expect(locations.map(metadataFileVersion).sort((a, b) => a - b)).toEqual(
      Array.from({ length: writers }, (_, i) => i + 1),
    );
    const final = await setup.loadTable('concurrent.events');
    expect(final.metadata.snapshots).toHaveLength(writers);
    expect(final.metadata.lastSequenceNumber).toBe(BigInt(writers));
    expect(final.metadata.snapshots.map((s) => s.summary['sluice.writer']).sort()).toEqual(
      Array.from({ length: writers }, (_, i) => String(i)).sort(),
    );
    // Each snapshot's parent is the one committed before it: no commit was built on a stale base.
    const snapshots = final.metadata.snapshots;
    snapshots.forEach((s, i) => expect(s.parentSnapshotId).toBe(i === 0 ? undefined : snapshots[i - 1]?.snapshotId));
    expect(final.metadata.metadataLog.map((e) => e.metadataFile)).toEqual([
      created.metadataLocation,
      ...[...locations].sort((a, b) => metadataFileVersion(a) - metadataFileVersion(b)).slice(0, -1),
    ]);
    // No orphaned metadata files from lost races.
    expect(await listUris(`${warehouse}/concurrent/events/metadata/`)).toHaveLength(writers + 1);
  });

  it('reports an unreachable database as a retryable CatalogUnavailableError', async () => {
    const driver = new PostgresCatalogDriver({ connectionString: 'postgres://postgres@127.0.0.1:1/nowhere' });
    drivers.push(driver);
    const catalog = new SqlCatalog({ name: 'sluice', driver, io, warehouse });
    const err = await catalog.listNamespaces().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CatalogUnavailableError);
    expect((err as CatalogUnavailableError).failureType).toBe('ServiceUnavailable');
    expect(String(err)).toContain('catalog "sluice"');
  });
});
