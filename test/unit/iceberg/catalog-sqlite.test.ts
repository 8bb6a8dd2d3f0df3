import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CatalogTablesMissingError,
  CatalogUnavailableError,
  CommitConflictError,
  InvalidIdentifierError,
  InvalidNamespacePropertiesError,
  MissingMetadataFileError,
  NamespaceAlreadyExistsError,
  NamespaceNotEmptyError,
  NoSuchNamespaceError,
  NoSuchTableError,
  SqlCatalog,
  SqliteCatalogDriver,
  TableAlreadyExistsError,
  isCatalogError,
  metadataFileVersion,
} from '../../../lib/iceberg/catalog/index.js';
import { CorruptMetadataError, InvalidTableConfigError } from '../../../lib/iceberg/errors.js';
import { parseTableMetadata, serializeTableMetadata, type TableMetadata } from '../../../lib/iceberg/metadata-json.js';
import { updateProperties } from '../../../lib/iceberg/table-update.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import { LocalFileIO } from '../../../lib/storage/index.js';

const SCHEMA: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
  ],
};
const METADATA_FILE =
  /\/metadata\/(\d{5})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.metadata\.json$/;

let dir: string;
let dbPath: string;
let driver: SqliteCatalogDriver;
let catalog: SqlCatalog;
let warehouse: string;

function openCatalog(options: { name?: string; createTables?: boolean; busyTimeoutMs?: number } = {}) {
  const d = new SqliteCatalogDriver({ path: dbPath, busyTimeoutMs: options.busyTimeoutMs ?? 5000 });
  const c = new SqlCatalog({
    name: options.name ?? 'sluice',
    driver: d,
    io: new LocalFileIO(),
    warehouse,
    createTables: options.createTables ?? true,
  });
  return { driver: d, catalog: c };
}

/** Reads the catalog file directly, the way pyiceberg or Spark would. */
function rawRows<T>(sql: string, ...params: unknown[]): T[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

function metadataFiles(tableDir: string): string[] {
  const metadataDir = path.join(tableDir, 'metadata');
  return existsSync(metadataDir) ? readdirSync(metadataDir).sort() : [];
}

const setProperty = (key: string, value: string) => (m: TableMetadata) => updateProperties(m, { [key]: value });

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-catalog-'));
  dbPath = path.join(dir, 'catalog.db');
  warehouse = `file://${dir}/warehouse`;
  ({ driver, catalog } = openCatalog());
});

afterEach(async () => {
  await driver.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('catalog tables', () => {
  it('creates the JDBC-catalog tables with the columns, types and keys Java and pyiceberg use', async () => {
    await catalog.initialize();
    type Column = { name: string; type: string; notnull: number; pk: number };
    const columns = (table: string) =>
      rawRows<Column>(`SELECT name, type, "notnull", pk FROM pragma_table_info(?)`, table).map((c) => [
        c.name,
        c.type,
        c.notnull,
        c.pk,
      ]);
    expect(columns('iceberg_tables')).toEqual([
      ['catalog_name', 'VARCHAR(255)', 1, 1],
      ['table_namespace', 'VARCHAR(255)', 1, 2],
      ['table_name', 'VARCHAR(255)', 1, 3],
      ['metadata_location', 'VARCHAR(1000)', 0, 0],
      ['previous_metadata_location', 'VARCHAR(1000)', 0, 0],
      ['iceberg_type', 'VARCHAR(5)', 0, 0],
    ]);
    expect(columns('iceberg_namespace_properties')).toEqual([
      ['catalog_name', 'VARCHAR(255)', 1, 1],
      ['namespace', 'VARCHAR(255)', 1, 2],
      ['property_key', 'VARCHAR(255)', 1, 3],
      ['property_value', 'VARCHAR(1000)', 1, 0],
    ]);
  });

  it('adds iceberg_type to tables created by an older pyiceberg, and still reads and commits their rows', async () => {
    await driver.close();
    rmSync(dbPath);
    const db = new Database(dbPath);
    db.exec(
      'CREATE TABLE iceberg_tables (catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL, ' +
        'table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000), ' +
        'PRIMARY KEY (catalog_name, table_namespace, table_name))',
    );
    db.close();
    // A table written by the old tool: its row has no iceberg_type.
    ({ driver, catalog } = openCatalog());
    await catalog.createNamespace('db');
    const created = await catalog.createTable('db.legacy', { schema: SCHEMA });
    const legacy = new Database(dbPath);
    legacy.prepare('UPDATE iceberg_tables SET iceberg_type = NULL').run();
    legacy.close();
    expect(rawRows<{ n: number }>('SELECT COUNT(*) AS n FROM iceberg_tables WHERE iceberg_type IS NULL')).toEqual([
      { n: 1 },
    ]);
    expect((await catalog.loadTable('db.legacy')).metadataLocation).toBe(created.metadataLocation);
    const committed = await catalog.commitWithRetry('db.legacy', setProperty('k', 'v'));
    expect(committed.metadata.properties.k).toBe('v');
    expect(await catalog.listTables('db')).toEqual([{ namespace: ['db'], name: 'legacy' }]);
  });

  it('refuses to start without the tables when told not to create them', async () => {
    await driver.close();
    ({ driver, catalog } = openCatalog({ createTables: false }));
    const err = await catalog.listNamespaces().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CatalogTablesMissingError);
    expect((err as CatalogTablesMissingError).failureType).toBe('InvalidConfig');
    expect(String(err)).toMatch(/iceberg_tables or iceberg_namespace_properties/);
  });

  it('reports a locked database as a retryable CatalogUnavailableError', async () => {
    await catalog.initialize();
    await driver.close();
    ({ driver, catalog } = openCatalog({ busyTimeoutMs: 50 }));
    await catalog.initialize();
    const locker = new Database(dbPath);
    locker.exec('BEGIN EXCLUSIVE');
    try {
      const err = await catalog.createNamespace('db').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CatalogUnavailableError);
      expect((err as CatalogUnavailableError).failureType).toBe('ServiceUnavailable');
      expect(String(err)).toMatch(/creating namespace "db"/);
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    await catalog.createNamespace('db');
    expect(await catalog.namespaceExists('db')).toBe(true);
  });
});

describe('namespaces', () => {
  it('creates, lists, loads, updates and drops namespaces', async () => {
    await catalog.createNamespace('db');
    await catalog.createNamespace(['sales', 'eu'], { owner: 'team-a', location: 's3://bucket/sales-eu' });
    expect(await catalog.loadNamespaceProperties('db')).toEqual({ exists: 'true' });
    expect(await catalog.loadNamespaceProperties('sales.eu')).toEqual({
      owner: 'team-a',
      location: 's3://bucket/sales-eu',
    });
    // Stored as Java and pyiceberg store them: dot-joined, one row per property.
    expect(
      rawRows('SELECT namespace, property_key, property_value FROM iceberg_namespace_properties ORDER BY 1, 2'),
    ).toEqual([
      { namespace: 'db', property_key: 'exists', property_value: 'true' },
      { namespace: 'sales.eu', property_key: 'location', property_value: 's3://bucket/sales-eu' },
      { namespace: 'sales.eu', property_key: 'owner', property_value: 'team-a' },
    ]);

    expect(await catalog.listNamespaces()).toEqual([['db'], ['sales']]);
    expect(await catalog.listNamespaces('sales')).toEqual([['sales', 'eu']]);
    expect(await catalog.listNamespaces(['sales', 'eu'])).toEqual([]);
    expect(await catalog.namespaceExists('sales')).toBe(true);
    expect(await catalog.namespaceExists('sal')).toBe(false);
    await expect(catalog.createNamespace('db')).rejects.toBeInstanceOf(NamespaceAlreadyExistsError);
    await expect(catalog.createNamespace('sales')).rejects.toBeInstanceOf(NamespaceAlreadyExistsError);

    const summary = await catalog.updateNamespaceProperties('sales.eu', {
      removals: ['owner', 'never-set'],
      updates: { location: 's3://bucket/eu', tier: 'gold' },
    });
    expect(summary).toEqual({ removed: ['owner'], updated: ['location', 'tier'], missing: ['never-set'] });
    expect(await catalog.loadNamespaceProperties('sales.eu')).toEqual({ location: 's3://bucket/eu', tier: 'gold' });
    // Removing every property keeps the namespace, through the exists marker.
    await catalog.updateNamespaceProperties('sales.eu', { removals: ['location', 'tier'] });
    expect(await catalog.loadNamespaceProperties('sales.eu')).toEqual({ exists: 'true' });
    await expect(catalog.updateNamespaceProperties('db', { removals: ['a'], updates: { a: '1' } })).rejects.toThrow(
      InvalidNamespacePropertiesError,
    );
    await expect(catalog.createNamespace('x', { k: 'v'.repeat(1001) })).rejects.toThrow(/longer than 1000/);

    await expect(catalog.dropNamespace('sales')).rejects.toThrow(/1 child namespace \(sales\.eu\)/);
    await catalog.dropNamespace('sales.eu');
    expect(await catalog.namespaceExists('sales')).toBe(false);
    await catalog.dropNamespace('db');
    expect(await catalog.listNamespaces()).toEqual([]);
  });

  it('names the namespace in not-found errors', async () => {
    const err = await catalog.loadNamespaceProperties('nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoSuchNamespaceError);
    expect(isCatalogError(err) && err.failureType).toBe('NotFound');
    expect(String(err)).toContain('namespace "nope" does not exist in catalog "sluice"');
    await expect(catalog.dropNamespace('nope')).rejects.toBeInstanceOf(NoSuchNamespaceError);
    await expect(catalog.listTables('nope')).rejects.toBeInstanceOf(NoSuchNamespaceError);
    await expect(catalog.listNamespaces('nope')).rejects.toBeInstanceOf(NoSuchNamespaceError);
    await expect(catalog.updateNamespaceProperties('nope', { updates: { a: 'b' } })).rejects.toBeInstanceOf(
      NoSuchNamespaceError,
    );
  });

  it('matches names exactly: LIKE wildcards and SQLite case folding do not leak', async () => {
    await catalog.createNamespace('a_b.c');
    await catalog.createNamespace('DB');
    expect(await catalog.namespaceExists('axb')).toBe(false);
    expect(await catalog.namespaceExists('a_b')).toBe(true);
    expect(await catalog.namespaceExists('db')).toBe(false);
    expect(await catalog.namespaceExists('a%')).toBe(false);
  });

  it('keeps catalogs with different names apart in the same tables', async () => {
    await catalog.createNamespace('db');
    const other = new SqlCatalog({ name: 'other', driver, io: new LocalFileIO(), warehouse });
    expect(await other.namespaceExists('db')).toBe(false);
    await other.createNamespace('db');
    await other.dropNamespace('db');
    expect(await catalog.namespaceExists('db')).toBe(true);
  });
});

describe('identifiers', () => {
  it('refuses identifiers the JDBC tables cannot hold unambiguously', async () => {
    const bad: [Parameters<SqlCatalog['loadTable']>[0], RegExp][] = [
      ['orders', /needs a namespace/],
      ['db.', /table name is empty/],
      ['.orders', /at least one level/],
      ['a..orders', /level is empty/],
      ['db..orders', /level is empty/],
      [{ namespace: ['a.b'], name: 't' }, /contains a dot/],
      [{ namespace: ['db'], name: 'a.b' }, /contains a dot/],
      [{ namespace: [], name: 't' }, /at least one level/],
      [{ namespace: ['db'], name: 'x'.repeat(256) }, /at most 255/],
      [{ namespace: ['n'.repeat(256)], name: 't' }, /at most 255/],
      ['db.bad\nname', /control character/],
    ];
    for (const [identifier, message] of bad) {
      const err = await catalog.loadTable(identifier).catch((e: unknown) => e);
      expect(err, JSON.stringify(identifier)).toBeInstanceOf(InvalidIdentifierError);
      expect(String(err)).toMatch(message);
      expect((err as InvalidIdentifierError).failureType).toBe('InvalidInput');
    }
    await expect(catalog.createNamespace('')).rejects.toBeInstanceOf(InvalidIdentifierError);
    expect(() => new SqlCatalog({ name: '', driver, io: new LocalFileIO(), warehouse })).toThrow(
      InvalidIdentifierError,
    );
  });
});

describe('tables', () => {
  beforeEach(async () => {
    await catalog.createNamespace('db');
  });

  it('creates a table under <warehouse>/<namespace>/<table> and loads it back', async () => {
    const created = await catalog.createTable('db.orders', {
      schema: SCHEMA,
      partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[4]' }],
      properties: { 'cdc.source': 'pg:orders' },
    });
    expect(created.metadataLocation.startsWith(`${warehouse}/db/orders/metadata/00000-`)).toBe(true);
    expect(created.metadataLocation).toMatch(METADATA_FILE);
    expect(created.metadata.location).toBe(`${warehouse}/db/orders`);
    expect(created.identifier).toEqual({ namespace: ['db'], name: 'orders' });
    // The file on disk is the metadata, readable by any spec reader.
    const onDisk = parseTableMetadata(
      readFileSync(new URL(created.metadataLocation), 'utf8'),
      created.metadataLocation,
    );
    expect(onDisk.tableUuid).toBe(created.metadata.tableUuid);
    expect(onDisk.properties['cdc.source']).toBe('pg:orders');
    expect(onDisk.partitionSpecs[0]?.fields[0]?.name).toBe('id_bucket');
    expect(
      rawRows(
        'SELECT catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location, iceberg_type FROM iceberg_tables',
      ),
    ).toEqual([
      {
        catalog_name: 'sluice',
        table_namespace: 'db',
        table_name: 'orders',
        metadata_location: created.metadataLocation,
        previous_metadata_location: null,
        iceberg_type: 'TABLE',
      },
    ]);

    const loaded = await catalog.loadTable({ namespace: ['db'], name: 'orders' });
    expect(loaded.metadataLocation).toBe(created.metadataLocation);
    expect(serializeTableMetadata(loaded.metadata)).toBe(serializeTableMetadata(created.metadata));
    expect(await catalog.tableExists('db.orders')).toBe(true);
    expect(await catalog.tableExists('db.other')).toBe(false);
    expect(await catalog.listTables('db')).toEqual([{ namespace: ['db'], name: 'orders' }]);
  });

  it('uses the namespace location property, or an explicit (relative) location, when given', async () => {
    await catalog.createNamespace('sales.eu', { location: `file://${dir}/elsewhere/eu/` });
    const inNs = await catalog.createTable('sales.eu.orders', { schema: SCHEMA });
    expect(inNs.metadata.location).toBe(`file://${dir}/elsewhere/eu/orders`);
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const explicit = await catalog.createTable('db.custom', { schema: SCHEMA, location: 'custom-dir/t' });
      expect(explicit.metadata.location).toBe(`file://${dir}/custom-dir/t`);
      expect(metadataFiles(path.join(dir, 'custom-dir/t'))).toHaveLength(1);
    } finally {
      process.chdir(cwd);
    }
  });

  it('refuses a duplicate table without leaving a second metadata file', async () => {
    await catalog.createTable('db.orders', { schema: SCHEMA });
    const err = await catalog.createTable('db.orders', { schema: SCHEMA }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TableAlreadyExistsError);
    expect(String(err)).toContain('"db.orders"');
    expect(metadataFiles(path.join(dir, 'warehouse/db/orders'))).toHaveLength(1);
    await expect(catalog.createTable('nope.orders', { schema: SCHEMA })).rejects.toBeInstanceOf(NoSuchNamespaceError);
  });

  it('names the table in not-found errors', async () => {
    const err = await catalog.loadTable('db.missing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoSuchTableError);
    expect((err as NoSuchTableError).failureType).toBe('NotFound');
    expect(String(err)).toContain('table "db.missing" does not exist in catalog "sluice"');
    await expect(catalog.dropTable('db.missing')).rejects.toThrow(/"db\.missing"/);
    await expect(catalog.renameTable('db.missing', 'db.x')).rejects.toThrow(/"db\.missing"/);
  });

  it('reports a corrupt metadata file as CorruptMetadataError naming the file', async () => {
    const created = await catalog.createTable('db.orders', { schema: SCHEMA });
    writeFileSync(new URL(created.metadataLocation), '{"format-version": 2, "table-uuid": ');
    const err = await catalog.loadTable('db.orders').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptMetadataError);
    expect((err as CorruptMetadataError).file).toBe(created.metadataLocation);
    expect((err as CorruptMetadataError).failureType).toBe('Corrupt');
    expect(String(err)).toContain(created.metadataLocation);
  });

  it('reports a metadata file that vanished as MissingMetadataFileError naming table and file', async () => {
    const created = await catalog.createTable('db.orders', { schema: SCHEMA });
    rmSync(new URL(created.metadataLocation));
    const err = await catalog.loadTable('db.orders').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingMetadataFileError);
    expect(String(err)).toContain('"db.orders"');
    expect(String(err)).toContain(created.metadataLocation);
  });

  it('registers an existing (gzip-compressed) metadata file', async () => {
    const created = await catalog.createTable('db.orders', { schema: SCHEMA });
    const gz = `${warehouse}/db/copied/metadata/00000-x.gz.metadata.json`;
    const text = serializeTableMetadata(created.metadata);
    await new LocalFileIO().write(gz, gzipSync(Buffer.from(text)));
    const registered = await catalog.registerTable('db.copied', gz);
    expect(registered.metadata.tableUuid).toBe(created.metadata.tableUuid);
    expect((await catalog.loadTable('db.copied')).metadataLocation).toBe(gz);
  });

  it('renames a table into another namespace without moving files', async () => {
    await catalog.createNamespace('archive');
    const created = await catalog.createTable('db.orders', { schema: SCHEMA });
    await catalog.createTable('db.items', { schema: SCHEMA });
    await catalog.renameTable('db.orders', 'archive.orders_2024');
    expect(await catalog.tableExists('db.orders')).toBe(false);
    const moved = await catalog.loadTable('archive.orders_2024');
    expect(moved.metadataLocation).toBe(created.metadataLocation);
    expect(await catalog.listTables('archive')).toEqual([{ namespace: ['archive'], name: 'orders_2024' }]);
    await expect(catalog.renameTable('db.items', 'archive.orders_2024')).rejects.toBeInstanceOf(
      TableAlreadyExistsError,
    );
    await expect(catalog.renameTable('db.items', 'nope.items')).rejects.toBeInstanceOf(NoSuchNamespaceError);
  });

  it('drops without purge (files stay) and with purge (files go)', async () => {
    const kept = await catalog.createTable('db.kept', { schema: SCHEMA });
    expect(await catalog.dropTable('db.kept')).toEqual({ deletedFiles: 0 });
    expect(await catalog.tableExists('db.kept')).toBe(false);
    expect(existsSync(new URL(kept.metadataLocation))).toBe(true);

    const purged = await catalog.createTable('db.purged', { schema: SCHEMA });
    await catalog.commitWithRetry('db.purged', setProperty('a', '1'));
    const io = new LocalFileIO();
    await io.write(`${purged.metadata.location}/data/part-0.parquet`, 'data');
    // A sibling whose name shares the prefix must survive.
    await io.write(`${warehouse}/db/purged_other/keep.txt`, 'keep');
    expect(await catalog.dropTable('db.purged', { purge: true })).toEqual({ deletedFiles: 3 });
    expect(metadataFiles(path.join(dir, 'warehouse/db/purged'))).toEqual([]);
    expect(existsSync(path.join(dir, 'warehouse/db/purged/data/part-0.parquet'))).toBe(false);
    expect(existsSync(path.join(dir, 'warehouse/db/purged_other/keep.txt'))).toBe(true);
    expect(await catalog.tableExists('db.purged')).toBe(false);
  });

  it('refuses to purge a table located at the warehouse root, and keeps the table', async () => {
    await catalog.createTable('db.root', { schema: SCHEMA, location: warehouse });
    const err = await catalog.dropTable('db.root', { purge: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidTableConfigError);
    expect(String(err)).toMatch(/refusing to purge table "db\.root"/);
    expect(await catalog.tableExists('db.root')).toBe(true);
  });

  it('hides views (iceberg_type VIEW) from table operations but counts them as namespace contents', async () => {
    const writer = new Database(dbPath);
    writer
      .prepare(
        "INSERT INTO iceberg_tables VALUES ('sluice', 'db', 'a_view', 'file:///nowhere/v.metadata.json', NULL, 'VIEW')",
      )
      .run();
    writer.close();
    expect(await catalog.listTables('db')).toEqual([]);
    expect(await catalog.tableExists('db.a_view')).toBe(false);
    await expect(catalog.loadTable('db.a_view')).rejects.toBeInstanceOf(NoSuchTableError);
    await expect(catalog.createTable('db.a_view', { schema: SCHEMA })).rejects.toBeInstanceOf(TableAlreadyExistsError);
    await expect(catalog.dropNamespace('db')).rejects.toThrow(NamespaceNotEmptyError);
    await expect(catalog.dropNamespace('db')).rejects.toThrow(/1 view \(a_view\)/);
  });
});

describe('commits', () => {
  let base: Awaited<ReturnType<SqlCatalog['createTable']>>;

  beforeEach(async () => {
    await catalog.createNamespace('db');
    base = await catalog.createTable('db.orders', { schema: SCHEMA });
  });

  it('writes the next numbered metadata file, logs the previous one and moves the pointer', async () => {
    const next = updateProperties(base.metadata, { owner: 'cdc' });
    const committed = await catalog.commitTable('db.orders', {
      expectedMetadataLocation: base.metadataLocation,
      newMetadata: next,
    });
    expect(committed.metadataLocation).toMatch(METADATA_FILE);
    expect(metadataFileVersion(committed.metadataLocation)).toBe(1);
    expect(committed.previousMetadataLocation).toBe(base.metadataLocation);
    expect(committed.metadata.metadataLog).toEqual([
      { timestampMs: base.metadata.lastUpdatedMs, metadataFile: base.metadataLocation },
    ]);
    expect(rawRows('SELECT metadata_location, previous_metadata_location FROM iceberg_tables')).toEqual([
      { metadata_location: committed.metadataLocation, previous_metadata_location: base.metadataLocation },
    ]);
    const loaded = await catalog.loadTable('db.orders');
    expect(loaded.metadata.properties.owner).toBe('cdc');
    expect(loaded.previousMetadataLocation).toBe(base.metadataLocation);
    const again = await catalog.commitWithRetry('db.orders', setProperty('owner', 'batch'));
    expect(metadataFileVersion(again.metadataLocation)).toBe(2);
    expect(again.metadata.metadataLog.map((e) => e.metadataFile)).toEqual([
      base.metadataLocation,
      committed.metadataLocation,
    ]);
  });

  it('lets exactly one of two commits from the same base win; the loser gets a typed conflict', async () => {
    const first = catalog.commitTable('db.orders', {
      expectedMetadataLocation: base.metadataLocation,
      newMetadata: updateProperties(base.metadata, { writer: 'one' }),
      baseMetadata: base.metadata,
    });
    const second = catalog.commitTable('db.orders', {
      expectedMetadataLocation: base.metadataLocation,
      newMetadata: updateProperties(base.metadata, { writer: 'two' }),
      baseMetadata: base.metadata,
    });
    const [a, b] = await Promise.allSettled([first, second]);
    const outcomes = [a, b].map((r) => r.status);
    expect(outcomes.sort()).toEqual(['fulfilled', 'rejected']);
    const winner = (a.status === 'fulfilled' ? a : b) as PromiseFulfilledResult<Awaited<typeof first>>;
    const loser = (a.status === 'rejected' ? a : b) as PromiseRejectedResult;
    expect(loser.reason).toBeInstanceOf(CommitConflictError);
    const conflict = loser.reason as CommitConflictError;
    expect(conflict.failureType).toBe('CommitConflict');
    expect(conflict.currentMetadataLocation).toBe(winner.value.metadataLocation);
    expect(String(conflict)).toContain('table "db.orders"');
    const loaded = await catalog.loadTable('db.orders');
    expect(loaded.metadataLocation).toBe(winner.value.metadataLocation);
    expect(loaded.metadata.properties.writer).toBe(winner.value.metadata.properties.writer);
    // The loser's metadata file was removed: only the base and the winner remain.
    expect(metadataFiles(path.join(dir, 'warehouse/db/orders'))).toHaveLength(2);
  });

  it('commitWithRetry re-applies the update after losing a race', async () => {
    const attempts: number[] = [];
    const result = await catalog.commitWithRetry(
      'db.orders',
      async (current, { attempt }) => {
        attempts.push(attempt);
        if (attempt === 1) {
          // Another writer commits between our load and our commit.
          await catalog.commitTable('db.orders', {
            expectedMetadataLocation: base.metadataLocation,
            newMetadata: updateProperties(current, { rival: 'yes' }),
          });
        }
        return updateProperties(current, { mine: String(attempt) });
      },
      { minWaitMs: 1 },
    );
    expect(attempts).toEqual([1, 2]);
    // Both changes landed: the rival's, and ours re-applied on top of it.
    expect(result.metadata.properties).toMatchObject({ rival: 'yes', mine: '2' });
    expect(metadataFileVersion(result.metadataLocation)).toBe(2);
    expect((await catalog.loadTable('db.orders')).metadataLocation).toBe(result.metadataLocation);
  });

  it('commitWithRetry gives up with a typed conflict after maxAttempts', async () => {
    let rivals = 0;
    const err = await catalog
      .commitWithRetry(
        'db.orders',
        async (current, { metadataLocation }) => {
          rivals++;
          await catalog.commitTable('db.orders', {
            expectedMetadataLocation: metadataLocation,
            newMetadata: updateProperties(current, { rival: String(rivals) }),
          });
          return updateProperties(current, { mine: 'never' });
        },
        { maxAttempts: 3, minWaitMs: 1 },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommitConflictError);
    expect((err as CommitConflictError).attempts).toBe(3);
    expect(String(err)).toContain('3 times in a row');
    expect((await catalog.loadTable('db.orders')).metadata.properties.mine).toBeUndefined();
  });

  it('commits nothing when the update returns the current metadata', async () => {
    const result = await catalog.commitWithRetry('db.orders', (current) => current);
    expect(result.metadataLocation).toBe(base.metadataLocation);
    expect(metadataFiles(path.join(dir, 'warehouse/db/orders'))).toHaveLength(1);
  });

  it('refuses metadata of another table, and a commit to a dropped table', async () => {
    const other = await catalog.createTable('db.other', { schema: SCHEMA });
    await expect(
      catalog.commitTable('db.orders', {
        expectedMetadataLocation: base.metadataLocation,
        newMetadata: other.metadata,
      }),
    ).rejects.toThrow(/table-uuid/);
    await catalog.dropTable('db.orders');
    await expect(
      catalog.commitTable('db.orders', {
        expectedMetadataLocation: base.metadataLocation,
        newMetadata: updateProperties(base.metadata, { a: 'b' }),
        baseMetadata: base.metadata,
      }),
    ).rejects.toBeInstanceOf(NoSuchTableError);
  });

  it('treats a stale base whose file is gone as a conflict', async () => {
    const committed = await catalog.commitWithRetry('db.orders', setProperty('a', '1'));
    rmSync(new URL(base.metadataLocation));
    const err = await catalog
      .commitTable('db.orders', {
        expectedMetadataLocation: base.metadataLocation,
        newMetadata: updateProperties(base.metadata, { b: '2' }),
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommitConflictError);
    expect((err as CommitConflictError).currentMetadataLocation).toBe(committed.metadataLocation);
  });
});
