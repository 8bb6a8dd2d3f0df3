import path from 'node:path';
import pg from 'pg';
import {
  PostgresCatalogDriver,
  SqlCatalog,
  SqliteCatalogDriver,
  type CatalogDriver,
} from '../iceberg/catalog/index.js';
import { CompositeFileIO, type S3FileIOOptions } from '../storage/index.js';
import type { StackConfig } from '../../schemas/stack-config.js';

/**
 * The data stack a cpu worker needs for the CDC pipelines, built from `temporal-dev.yml`'s `defaults`: the Iceberg
 * catalog (SQLite file or PostgreSQL), the FileIO over the warehouse (`file://` or `s3://`), and connection pools to
 * source databases. Reads no environment: the entry point passes S3 settings in.
 */

/** Options of {@link openWarehouse}. */
export interface WarehouseOptions {
  /**
   * What relative paths resolve against: the SQLite catalog path and a relative `file://` warehouse
   * (`file://.sluice/warehouse`). Workers pass the repository root.
   * @default process.cwd()
   */
  baseDir?: string;
  /** S3 endpoint, region and credentials for an `s3://` warehouse; required then. */
  s3?: S3FileIOOptions;
}

/** An open catalog and its FileIO; {@link Warehouse.close} releases both. */
export interface Warehouse {
  io: CompositeFileIO;
  catalog: SqlCatalog;
  /** The warehouse root as an absolute URI. */
  warehouse: string;
  close(): Promise<void>;
}

/**
 * Resolves the configured warehouse to an absolute URI. `file://.sluice/warehouse` (the default) names a path
 * relative to `baseDir`; plain `file:///abs` and `s3://bucket/prefix` are kept.
 */
export function resolveWarehouseUri(warehouse: string, baseDir: string): string {
  if (warehouse.startsWith('file://') && !warehouse.startsWith('file:///')) {
    return `file://${path.resolve(baseDir, warehouse.slice('file://'.length))}`;
  }
  return warehouse.replace(/\/+$/, '');
}

/**
 * Opens the catalog and FileIO described by the stack config's `defaults`, creating the catalog tables when
 * missing.
 *
 * @throws Error naming the missing settings for an `s3://` warehouse without `options.s3`.
 */
export async function openWarehouse(
  defaults: StackConfig['defaults'],
  options: WarehouseOptions = {},
): Promise<Warehouse> {
  const baseDir = path.resolve(options.baseDir ?? process.cwd());
  const warehouse = resolveWarehouseUri(defaults.warehouse, baseDir);
  if (warehouse.startsWith('s3://') && !options.s3) {
    throw new Error(
      `the warehouse ${warehouse} is on S3, but no S3 settings were given; pass the endpoint, region and ` +
        'credentials (WarehouseOptions.s3), or use a file:// warehouse in temporal-dev.yml defaults',
    );
  }
  const io = new CompositeFileIO({ file: { baseDir }, ...(options.s3 ? { s3: options.s3 } : {}) });
  const driver: CatalogDriver =
    defaults.catalog.type === 'sqlite'
      ? new SqliteCatalogDriver({ path: path.resolve(baseDir, defaults.catalog.path) })
      : new PostgresCatalogDriver({ connectionString: defaults.catalog.uri });
  const catalog = new SqlCatalog({ name: defaults.catalogName, driver, io, warehouse });
  try {
    await catalog.initialize();
  } catch (err) {
    await Promise.allSettled([driver.close(), io.close()]);
    throw err;
  }
  return {
    io,
    catalog,
    warehouse: catalog.warehouse,
    async close() {
      await Promise.allSettled([driver.close(), io.close()]);
    },
  };
}

/** Connection pools to source databases, one per connection string. */
export interface SourcePools {
  poolFor(connectionString: string): pg.Pool;
  close(): Promise<void>;
}

/** Options of {@link createSourcePools}. */
export interface SourcePoolOptions {
  /** Connections per source at most. @default 4 */
  maxConnectionsPerSource?: number;
  /** Called with errors of idle pooled connections (a restarted source); they are otherwise dropped. */
  onIdleError?: (err: Error) => void;
}

/** Creates the pools lazily; `close()` ends them all. */
export function createSourcePools(options: SourcePoolOptions = {}): SourcePools {
  const pools = new Map<string, pg.Pool>();
  return {
    poolFor(connectionString) {
      let pool = pools.get(connectionString);
      if (!pool) {
        pool = new pg.Pool({
          connectionString,
          max: options.maxConnectionsPerSource ?? 4,
          idleTimeoutMillis: 30_000,
          application_name: 'sluice-cdc',
        });
        // Without a listener an idle connection's error (the source restarted) would crash the worker.
        pool.on('error', (err) => options.onIdleError?.(err));
        pools.set(connectionString, pool);
      }
      return pool;
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.allSettled(all.map((p) => p.end()));
    },
  };
}
