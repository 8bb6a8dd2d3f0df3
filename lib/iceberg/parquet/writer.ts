import { availableParallelism } from 'node:os';
import { RecordBatch, Schema as ArrowSchema, Struct, Table, makeData, tableToIPC, type Data } from 'apache-arrow';
import {
  DEFAULT_BOUND_TRUNCATE_LENGTH,
  compareStrings,
  encodeBound,
  truncateLowerBound,
  truncateUpperBound,
} from '../bounds.js';
import type { ColumnMetrics } from '../data-file.js';
import type { NestedField, Schema } from '../types.js';
import type { PrimitiveValue } from '../values.js';
import {
  buildColumnData,
  collectLeafStats,
  planColumns,
  type ColumnPlan,
  type ColumnValues,
  type LeafStats,
} from './column-builder.js';
import { encodeInWorker, encodePoolIdle } from './encode-pool.js';
import { ParquetWriteError } from './errors.js';
import { annotateUuidColumns, joinParquetParts, readParquetFooter, type ParquetFooter } from './footer.js';
import { encodeParquet, type ParquetEncodeOptions } from './wasm-encode.js';

/**
 * Writes Iceberg data files and position-delete files as Parquet, with the spec's field ids, REQUIRED columns for
 * required fields, zstd, and the manifest metrics of each file.
 */

/**
 * How much of a column's metrics to keep, as Iceberg's `write.metadata.metrics.*` properties say it: `none`,
 * `counts` (value, null and NaN counts), `full` (counts and exact bounds) or `truncate(N)` (counts, and string and
 * binary bounds cut to N characters or bytes). Column sizes are always kept.
 */
export type MetricsMode = 'none' | 'counts' | 'full' | { readonly truncate: number };

/** Iceberg's default, `truncate(16)`. */
export const DEFAULT_METRICS_MODE: MetricsMode = { truncate: DEFAULT_BOUND_TRUNCATE_LENGTH };

/** The default row group size target, Iceberg's `write.parquet.row-group-size-bytes` (128 MiB). */
export const DEFAULT_ROW_GROUP_BYTES = 128 * 1024 * 1024;

/** The default row limit per row group (arrow-rs's default). */
export const DEFAULT_MAX_ROW_GROUP_ROWS = 1024 * 1024;

/** Below this many rows a file is encoded on the calling thread: starting a worker would cost more. */
export const PARALLEL_MIN_ROWS = 100_000;

/** Options shared by the data-file and position-delete writers. */
export interface ParquetWriteTuning {
  /**
   * Row groups aim at this many bytes, estimated from the uncompressed values (so the compressed row groups come
   * out smaller).
   * @default 134217728 (128 MiB, Iceberg's `write.parquet.row-group-size-bytes`)
   */
  targetRowGroupBytes?: number;
  /**
   * No row group has more rows than this.
   * @default 1048576
   */
  maxRowGroupRows?: number;
  /**
   * How to encode top-level long, time, timestamp and timestamptz columns. `plain` (no dictionary) is what every
   * reader handles. `delta` (DELTA_BINARY_PACKED) makes ids and times ~30% cheaper to write and much smaller,
   * but Iceberg's Java vectorized Parquet reader only reads it from Iceberg 1.10 on; older Spark/Flink runtimes
   * then fail the scan (or need vectorization off).
   * @default 'plain'
   */
  integerEncoding?: 'plain' | 'delta';
  /**
   * How many worker threads may encode row groups at once. A file of at least 100,000 rows is split into at least
   * this many row groups so that they encode in parallel; 1 encodes on the calling thread.
   * @default min(2, os.availableParallelism())
   */
  parallelism?: number;
  /**
   * Encode on a pool worker even when the file is too small to split (with `parallelism` > 1), if a worker is free
   * right now (otherwise on this thread: a small file never waits behind another write's row groups). For callers
   * that write several files at once: each file encodes on a worker while the calling thread builds the next one.
   * @default false
   */
  offload?: boolean;
}

/** Input of {@link writeParquetDataFile}. */
export interface WriteParquetDataFileOptions extends ParquetWriteTuning {
  /** The table schema (the file's columns are its top-level fields, in order). */
  schema: Pick<Schema, 'fields'>;
  /**
   * Values by top-level field id, one entry per row (see {@link ColumnValues}; {@link rowsToColumns} builds this
   * from rows). A missing optional column is written as all nulls; a missing required column is an error.
   */
  columns: ReadonlyMap<number, ColumnValues>;
  /** The row count; needed only when `columns` is empty. */
  rowCount?: number;
  /**
   * Metrics mode for every column without an entry in {@link metricsModes}.
   * @default { truncate: 16 }
   */
  defaultMetricsMode?: MetricsMode;
  /** Metrics modes by field id (of leaf columns), like `write.metadata.metrics.column.<name>`. */
  metricsModes?: ReadonlyMap<number, MetricsMode>;
}

/** A written Parquet file and what its manifest entry needs. */
export interface ParquetWriteResult {
  /** The whole Parquet file. */
  bytes: Uint8Array;
  recordCount: bigint;
  /** Metrics keyed by leaf field id; bounds in Appendix D form. */
  metrics: ColumnMetrics;
  /** Where each row group starts (`data_file.split_offsets`), ascending. */
  splitOffsets: bigint[];
}

/**
 * Writes one Parquet data file.
 *
 * Metrics: `columnSizes` (compressed bytes of the column's chunks), `valueCounts` (values including nulls, as the
 * footer counts them) and `nullValueCounts` come from the footer, like Java's `ParquetUtil.footerMetrics`; NaN
 * counts and bounds are computed from the values in Iceberg's order (strings by code point, -0 before +0, NaN
 * left out). Bounds are kept for primitive columns outside lists and maps.
 *
 * @throws ParquetWriteError naming the column (and row) on a null in a required field, a value of the wrong
 *   representation, a missing required column, or columns of different lengths.
 */
export async function writeParquetDataFile(options: WriteParquetDataFileOptions): Promise<ParquetWriteResult> {
  const fields = options.schema.fields;
  const rowCount = countRows(fields, options.columns, options.rowCount);
  const { plans, arrowFields } = planColumns(fields);
  const inputs = fields.map((field): ColumnValues => {
    const values = options.columns.get(field.id);
    if (values !== undefined) return values;
    if (field.required && rowCount > 0) {
      throw new ParquetWriteError(
        field.name,
        field.id,
        undefined,
        'the field is required but no values were given for it; add the column to `columns`',
      );
    }
    // Sparse: every entry reads as undefined, which is a null.
    return new Array<unknown>(rowCount);
  });
  const arrowSchema = new ArrowSchema(arrowFields);
  const batchType = new Struct(arrowFields);
  const parallelism = Math.max(1, Math.floor(options.parallelism ?? Math.min(2, availableParallelism())));
  const groupRows = rowsPerGroup(plans, inputs, rowCount, options, parallelism);
  const encodeOptions: ParquetEncodeOptions = {
    // Each part holds one row group: the limit only has to exceed the slice.
    maxRowGroupRows: Math.max(groupRows, 1),
    ...columnEncodings(fields, options.integerEncoding ?? 'plain'),
    createdBy: 'Sluice (parquet-rs via parquet-wasm)',
  };
  const useWorkers =
    parallelism > 1 &&
    ((rowCount >= PARALLEL_MIN_ROWS && groupRows < rowCount) ||
      (options.offload === true && rowCount > 0 && encodePoolIdle(parallelism)));
  const parts: Promise<Uint8Array>[] = [];
  try {
    for (let start = 0; start === 0 || start < rowCount; start += groupRows) {
      const end = Math.min(rowCount, start + groupRows);
      const children = plans.map((plan, i) => buildColumnData(plan, inputs[i] as ColumnValues, start, end));
      const batch = new RecordBatch(
        arrowSchema,
        makeData({ type: batchType, length: end - start, nullCount: 0, children: children as Data[] }),
      );
      const ipc = tableToIPC(new Table([batch]), 'stream');
      const part = useWorkers
        ? encodeInWorker(ipc, encodeOptions, parallelism)
        : Promise.resolve(encodeParquet(ipc, encodeOptions));
      // Observed here so that a part that fails while a later slice throws is not an unhandled rejection.
      part.catch(() => undefined);
      parts.push(part);
      if (rowCount === 0) break;
    }
  } catch (err) {
    await Promise.allSettled(parts);
    throw err;
  }
  const uuidPaths = uuidLeafPaths(fields);
  const bytes = joinParquetParts(await Promise.all(parts), (metadata) => {
    if (uuidPaths.size > 0) annotateUuidColumns(metadata, (path) => uuidPaths.has(path.join('\u0000')));
  });
  const footer = readParquetFooter(bytes);
  return {
    bytes,
    recordCount: BigInt(rowCount),
    metrics: fileMetrics(footer, collectLeafStats(plans), options),
    splitOffsets: footer.rowGroups.map((rg) => rg.columns[0]?.startOffset ?? 4n),
  };
}

function countRows(
  fields: readonly NestedField[],
  columns: ReadonlyMap<number, ColumnValues>,
  rowCount: number | undefined,
): number {
  const topLevel = new Map(fields.map((f) => [f.id, f]));
  let count = rowCount;
  let countFrom: NestedField | undefined;
  for (const [id, values] of columns) {
    const field = topLevel.get(id);
    if (!field) {
      throw new ParquetWriteError(
        `#${id}`,
        id,
        undefined,
        'the schema has no top-level field with this id; nested values go inside their top-level column',
      );
    }
    if (count === undefined) {
      count = values.length;
      countFrom = field;
    } else if (values.length !== count) {
      const against = countFrom ? `column "${countFrom.name}" has ${count}` : `rowCount is ${count}`;
      throw new ParquetWriteError(field.name, id, undefined, `it has ${values.length} values but ${against}`);
    }
  }
  if (count === undefined) {
    throw new ParquetWriteError('', 0, undefined, 'no columns were given; pass rowCount to write a file of nulls');
  }
  return count;
}

/**
 * Per-column encodings. Columns whose values are mostly unique (ids, measures, times) skip the dictionary: it only
 * costs time there. Strings, ints, dates and booleans keep it, as most writers do.
 */
function columnEncodings(
  fields: readonly NestedField[],
  integerEncoding: 'plain' | 'delta',
): Pick<ParquetEncodeOptions, 'plainColumns' | 'deltaColumns'> {
  const plainKinds = new Set(['long', 'float', 'double', 'time', 'timestamp', 'timestamptz', 'uuid', 'decimal']);
  const deltaKinds = new Set(integerEncoding === 'delta' ? ['long', 'time', 'timestamp', 'timestamptz'] : []);
  // parquet-rs reads a dotted column name as a path, so such names keep the defaults.
  const simple = fields.filter((f) => !f.name.includes('.'));
  return {
    plainColumns: simple.filter((f) => plainKinds.has(f.type.kind) && !deltaKinds.has(f.type.kind)).map((f) => f.name),
    deltaColumns: simple.filter((f) => deltaKinds.has(f.type.kind)).map((f) => f.name),
  };
}

/** Rows per row group: under the byte target and row limit, and split for parallel encoding when worthwhile. */
function rowsPerGroup(
  plans: readonly ColumnPlan[],
  inputs: readonly ColumnValues[],
  rowCount: number,
  tuning: ParquetWriteTuning,
  parallelism: number,
): number {
  if (rowCount === 0) return 1;
  const targetBytes = Math.max(1, tuning.targetRowGroupBytes ?? DEFAULT_ROW_GROUP_BYTES);
  const maxRows = Math.max(1, Math.floor(tuning.maxRowGroupRows ?? DEFAULT_MAX_ROW_GROUP_ROWS));
  const rowBytes = plans.reduce((sum, plan, i) => sum + estimateValueBytes(plan, inputs[i] as ColumnValues), 0);
  let groups = Math.max(Math.ceil((rowBytes * rowCount) / targetBytes), Math.ceil(rowCount / maxRows));
  if (parallelism > 1 && rowCount >= PARALLEL_MIN_ROWS) groups = Math.max(groups, parallelism);
  return Math.ceil(rowCount / groups);
}

const SAMPLE_SIZE = 1000;

/** Average uncompressed bytes of one value of the column, from a sample of its first values. */
function estimateValueBytes(plan: ColumnPlan, values: ColumnValues): number {
  switch (plan.type.kind) {
    case 'boolean':
      return 1;
    case 'int':
    case 'date':
    case 'float':
      return 4;
    case 'long':
    case 'double':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return 8;
    case 'uuid':
    case 'decimal':
      return 16;
    case 'fixed':
      return plan.type.length;
    case 'string':
    case 'binary': {
      const sample = Array.isArray(values) ? (values as readonly unknown[]).slice(0, SAMPLE_SIZE) : [];
      const total = sample.reduce<number>(
        (sum, v) => sum + (typeof v === 'string' || v instanceof Uint8Array ? v.length : 0),
        0,
      );
      return 4 + (sample.length > 0 ? total / sample.length : 0);
    }
    default:
      // Nested values are rarely the bulk of a table; a generous constant keeps the estimate on the safe side.
      return 64 * countLeaves(plan);
  }
}

function countLeaves(plan: ColumnPlan): number {
  return plan.children.length === 0 ? 1 : plan.children.reduce((n, c) => n + countLeaves(c), 0);
}

/** Paths (names joined by NUL) of the Parquet leaves that hold Iceberg uuids. */
function uuidLeafPaths(fields: readonly NestedField[]): Set<string> {
  const out = new Set<string>();
  const visit = (type: NestedField['type'], path: string[]): void => {
    switch (type.kind) {
      case 'uuid':
        out.add(path.join('\u0000'));
        return;
      case 'struct':
        for (const f of type.fields) visit(f.type, [...path, f.name]);
        return;
      case 'list':
        visit(type.element, [...path, 'list', 'element']);
        return;
      case 'map':
        visit(type.key, [...path, 'key_value', 'key']);
        visit(type.value, [...path, 'key_value', 'value']);
        return;
      default:
        return;
    }
  };
  for (const f of fields) visit(f.type, [f.name]);
  return out;
}

function metricsModeOf(
  fieldId: number,
  options: Pick<WriteParquetDataFileOptions, 'defaultMetricsMode' | 'metricsModes'>,
): MetricsMode {
  return options.metricsModes?.get(fieldId) ?? options.defaultMetricsMode ?? DEFAULT_METRICS_MODE;
}

function addTo(map: Map<number, bigint>, id: number, by: bigint): void {
  map.set(id, (map.get(id) ?? 0n) + by);
}

function fileMetrics(
  footer: ParquetFooter,
  leafStats: readonly LeafStats[],
  options: Pick<WriteParquetDataFileOptions, 'defaultMetricsMode' | 'metricsModes'>,
): ColumnMetrics {
  const columnSizes = new Map<number, bigint>();
  const valueCounts = new Map<number, bigint>();
  const nullValueCounts = new Map<number, bigint>();
  const nanValueCounts = new Map<number, bigint>();
  const lowerBounds = new Map<number, Uint8Array>();
  const upperBounds = new Map<number, Uint8Array>();
  if (footer.leaves.length !== leafStats.length) {
    throw new Error(`the footer has ${footer.leaves.length} leaf columns, the schema ${leafStats.length}`);
  }
  for (const rowGroup of footer.rowGroups) {
    rowGroup.columns.forEach((chunk, i) => {
      const id = (leafStats[i] as LeafStats).fieldId;
      addTo(columnSizes, id, chunk.totalCompressedSize);
      if (metricsModeOf(id, options) === 'none') return;
      addTo(valueCounts, id, chunk.numValues);
      addTo(nullValueCounts, id, chunk.nullCount ?? 0n);
    });
  }
  for (const stats of leafStats) {
    const mode = metricsModeOf(stats.fieldId, options);
    if (mode === 'none') continue;
    if (stats.type.kind === 'float' || stats.type.kind === 'double') {
      nanValueCounts.set(stats.fieldId, BigInt(stats.nanCount));
    }
    if (mode === 'counts' || !stats.keepBounds || stats.min === undefined || stats.max === undefined) continue;
    const bounds = truncateBounds(stats, mode === 'full' ? undefined : mode.truncate);
    lowerBounds.set(stats.fieldId, encodeBound(stats.type, bounds.lower));
    if (bounds.upper !== null) upperBounds.set(stats.fieldId, encodeBound(stats.type, bounds.upper));
  }
  return { columnSizes, valueCounts, nullValueCounts, nanValueCounts, lowerBounds, upperBounds };
}

function truncateBounds(
  stats: LeafStats,
  length: number | undefined,
): { lower: PrimitiveValue; upper: PrimitiveValue | null } {
  const min = stats.min as PrimitiveValue;
  const max = stats.max as PrimitiveValue;
  // Like Java and pyiceberg, only string and binary bounds are truncated; fixed keeps its length.
  if (length === undefined || (stats.type.kind !== 'string' && stats.type.kind !== 'binary')) {
    return { lower: min, upper: max };
  }
  return {
    lower: truncateLowerBound(min as string | Uint8Array, length),
    upper: truncateUpperBound(max as string | Uint8Array, length),
  };
}

// ---- rows -------------------------------------------------------------------------------------------------

/**
 * Turns rows into the columns {@link writeParquetDataFile} takes. A row is an array in the order of the schema's
 * top-level fields, or an object keyed by field name; nested values keep the forms {@link ColumnValues} lists.
 */
export function rowsToColumns(
  schema: Pick<Schema, 'fields'>,
  rows: readonly (readonly unknown[] | Readonly<Record<string, unknown>>)[],
): Map<number, unknown[]> {
  const fields = schema.fields;
  const columns = fields.map(() => new Array<unknown>(rows.length));
  rows.forEach((row, r) => {
    if (Array.isArray(row)) {
      if (row.length > fields.length) {
        throw new ParquetWriteError(
          '',
          0,
          r,
          `the row has ${row.length} values but the schema has ${fields.length} top-level fields`,
        );
      }
      for (let c = 0; c < fields.length; c += 1) (columns[c] as unknown[])[r] = row[c];
    } else if (row !== null && typeof row === 'object') {
      const record = row as Readonly<Record<string, unknown>>;
      for (let c = 0; c < fields.length; c += 1) (columns[c] as unknown[])[r] = record[(fields[c] as NestedField).name];
    } else {
      throw new ParquetWriteError('', 0, r, 'a row must be an array in field order or an object keyed by field name');
    }
  });
  return new Map(fields.map((f, c) => [f.id, columns[c] as unknown[]]));
}

// ---- position deletes -------------------------------------------------------------------------------------

/** Field id of `file_path` in position-delete files (spec "Reserved Field IDs"). */
export const DELETE_FILE_PATH_FIELD_ID = 2147483546;
/** Field id of `pos` in position-delete files. */
export const DELETE_POS_FIELD_ID = 2147483545;

/** The schema of a position-delete file without the optional `row` column. */
export const POSITION_DELETE_SCHEMA: Pick<Schema, 'fields'> = {
  fields: [
    { id: DELETE_FILE_PATH_FIELD_ID, name: 'file_path', required: true, type: { kind: 'string' } },
    { id: DELETE_POS_FIELD_ID, name: 'pos', required: true, type: { kind: 'long' } },
  ],
};

/** Input of {@link writePositionDeleteFile}: deleted rows as two parallel columns, in any order. */
export interface WritePositionDeleteFileOptions extends ParquetWriteTuning {
  /** Data file locations, exactly as the manifests store them. */
  filePaths: readonly string[];
  /** 0-based row positions in those files. */
  positions: readonly bigint[] | BigInt64Array;
}

/** A written position-delete file. */
export interface PositionDeleteWriteResult extends ParquetWriteResult {
  /** Set when every row targets one data file (the manifest's `referenced_data_file`). */
  referencedDataFile?: string;
}

/**
 * Writes a position-delete file: `file_path` (string, field id 2147483546) and `pos` (long, 2147483545), both
 * required, with rows sorted by path (code-point order) and then position, as the spec requires. Bounds of
 * `file_path` are kept whole, as Java does for delete files, so that readers can tell which data files a delete
 * file can touch.
 *
 * @throws ParquetWriteError on a null or non-string path, a null or non-bigint position, or columns of different
 *   lengths.
 */
export async function writePositionDeleteFile(
  options: WritePositionDeleteFileOptions,
): Promise<PositionDeleteWriteResult> {
  const { filePaths, positions } = options;
  if (filePaths.length !== positions.length) {
    throw new ParquetWriteError(
      'pos',
      DELETE_POS_FIELD_ID,
      undefined,
      `it has ${positions.length} values but file_path has ${filePaths.length}`,
    );
  }
  const n = filePaths.length;
  for (let i = 0; i < n; i += 1) {
    if (typeof filePaths[i] !== 'string') {
      throw new ParquetWriteError('file_path', DELETE_FILE_PATH_FIELD_ID, i, 'expected a string data file location');
    }
    if (typeof positions[i] !== 'bigint' || (positions[i] as bigint) < 0n) {
      throw new ParquetWriteError('pos', DELETE_POS_FIELD_ID, i, 'expected a non-negative bigint row position');
    }
  }
  const order = sortedOrder(filePaths, positions);
  const sortedPaths = order ? Array.from(order, (i) => filePaths[i] as string) : filePaths;
  const sortedPositions = new BigInt64Array(n);
  for (let i = 0; i < n; i += 1) sortedPositions[i] = positions[order ? (order[i] as number) : i] as bigint;
  const result = await writeParquetDataFile({
    schema: POSITION_DELETE_SCHEMA,
    columns: new Map<number, ColumnValues>([
      [DELETE_FILE_PATH_FIELD_ID, sortedPaths],
      [DELETE_POS_FIELD_ID, sortedPositions],
    ]),
    rowCount: n,
    metricsModes: new Map([[DELETE_FILE_PATH_FIELD_ID, 'full']]),
    targetRowGroupBytes: options.targetRowGroupBytes,
    maxRowGroupRows: options.maxRowGroupRows,
    parallelism: options.parallelism,
    integerEncoding: options.integerEncoding,
    offload: options.offload,
  });
  const firstPath = sortedPaths[0];
  const onePath = firstPath !== undefined && sortedPaths[n - 1] === firstPath;
  return onePath ? { ...result, referencedDataFile: firstPath } : result;
}

/** The permutation that sorts by (path, pos), or `undefined` when the input is already sorted. */
function sortedOrder(paths: readonly string[], positions: readonly bigint[] | BigInt64Array): Uint32Array | undefined {
  const compare = (a: number, b: number): number => {
    const byPath = compareStrings(paths[a] as string, paths[b] as string);
    if (byPath !== 0) return byPath;
    const pa = positions[a] as bigint;
    const pb = positions[b] as bigint;
    return pa === pb ? 0 : pa < pb ? -1 : 1;
  };
  let sorted = true;
  for (let i = 1; i < paths.length && sorted; i += 1) sorted = compare(i - 1, i) <= 0;
  if (sorted) return undefined;
  return Uint32Array.from({ length: paths.length }, (_, i) => i).sort(compare);
}
