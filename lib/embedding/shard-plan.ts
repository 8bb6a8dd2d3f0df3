/**
 * Deterministic shard plans for an embedding backfill. A plan is a JSON file in the object store: the source's live
 * files at one snapshot (or the Parquet files of a prefix), split into shards of at most `shardSize` items, each
 * shard a range of one file's row stream. Shard ids come from the file path and the range, so the same snapshot
 * always gives the same shards and the same output file names: a retried or rerun shard overwrites its file.
 */
import { createHash } from 'node:crypto';
import { tableFromIPC, type Table } from 'apache-arrow';
import { readParquet } from 'parquet-wasm';
import type { SqlCatalog } from '../iceberg/catalog/sql-catalog.js';
import type { DataFile } from '../iceberg/data-file.js';
import * as ex from '../iceberg/expressions.js';
import { currentSchema, type TableMetadata } from '../iceberg/metadata-json.js';
import { readParquetFooter } from '../iceberg/parquet/index.js';
import { liveEntries, planFiles, projectSchema, readTask, selectSnapshot, snapshotsBetween } from '../iceberg/scan.js';
import type { FileScanTask } from '../iceberg/scan.js';
import { parseSchema, schemaToJson, type Schema } from '../iceberg/types.js';
import type { FileIO } from '../storage/file-io.js';
import type { FilterCondition, PlanShardsInput } from '../../schemas/embedding.js';
import { EmbeddingError } from './errors.js';

/** A live data file and its deletes, as much as reading it needs (JSON-safe). */
export interface PlannedTask {
  filePath: string;
  recordCount: number;
  positionDeletes: string[];
  equalityDeletes: { filePath: string; equalityIds: number[] }[];
}

/** One shard: items `[start, end)` of one file's row stream (after deletes and the filter). */
export interface PlannedShard {
  id: string;
  /** Index into `tasks` (Iceberg) or `files` (Parquet). */
  file: number;
  start: number;
  end: number;
}

/** The plan file. */
export interface ShardPlan {
  formatVersion: 1;
  planId: string;
  runRoot: string;
  source:
    | { kind: 'iceberg'; table: string; snapshotId?: string; filter: FilterCondition[]; tableSchema: unknown }
    | { kind: 'parquet' };
  columns: { id: string; text?: string; imageUri?: string; metadata: string[] };
  tasks: PlannedTask[];
  files: { uri: string; rows: number }[];
  shards: PlannedShard[];
  model: { path: string; version: string };
  output: { table: string; index: string; indexRoot: string; dataDir: string; schema: unknown };
  incremental?: { fromSnapshotId: string; toSnapshotId: string };
}

/** One item to embed. */
export interface SourceItem {
  /** Null when the row has no id: it cannot carry a vector and goes to quarantine. */
  id: string | null;
  /** The text, or the image URI. */
  value: string | null;
  metadata: Record<string, string | number | boolean | null>;
}

/** Makes a shard id from the file and range: stable across retries, reruns and re-plans of the same snapshot. */
export function shardId(filePath: string, start: number, end: number): string {
  const h = createHash('sha256').update(filePath).digest('hex').slice(0, 16);
  return `${h}-${start}-${end}`;
}

/** Splits files of known row counts into shards of at most `shardSize` items, in file order. */
export function splitIntoShards(files: readonly { path: string; rows: number }[], shardSize: number): PlannedShard[] {
  const shards: PlannedShard[] = [];
  files.forEach((f, i) => {
    for (let start = 0; start < f.rows; start += shardSize) {
      const end = Math.min(f.rows, start + shardSize);
      shards.push({ id: shardId(f.path, start, end), file: i, start, end });
    }
  });
  return shards;
}

/** The conditions as an Iceberg expression (AND), or undefined for none. */
export function filterExpression(conditions: readonly FilterCondition[]): ex.Expression | undefined {
  if (conditions.length === 0) return undefined;
  const parts = conditions.map((c): ex.Expression => {
    const scalar = (): string | number | boolean => {
      if (c.value === undefined || Array.isArray(c.value)) {
        throw new EmbeddingError('invalid-option', `filter on "${c.column}" with ${c.op} needs a single value`);
      }
      return c.value;
    };
    switch (c.op) {
      case 'eq':
        return ex.eq(c.column, scalar());
      case 'notEq':
        return ex.notEq(c.column, scalar());
      case 'lt':
        return ex.lt(c.column, scalar());
      case 'ltEq':
        return ex.ltEq(c.column, scalar());
      case 'gt':
        return ex.gt(c.column, scalar());
      case 'gtEq':
        return ex.gtEq(c.column, scalar());
      case 'in':
        if (!Array.isArray(c.value))
          throw new EmbeddingError('invalid-option', `filter "in" on "${c.column}" needs a list`);
        return ex.isIn(c.column, c.value);
      case 'isNull':
        return ex.isNull(c.column);
      case 'notNull':
        return ex.notNull(c.column);
    }
  });
  return parts.length === 1 ? parts[0] : ex.and(...parts);
}

function slimTask(task: FileScanTask): PlannedTask {
  return {
    filePath: task.dataFile.filePath,
    recordCount: Number(task.dataFile.recordCount),
    positionDeletes: task.positionDeletes.map((f) => f.filePath),
    equalityDeletes: task.equalityDeletes.map((f) => ({ filePath: f.filePath, equalityIds: f.equalityIds ?? [] })),
  };
}

function stubFile(filePath: string, content: DataFile['content'], equalityIds?: number[]): DataFile {
  // readTask uses only the paths (and equality ids) of a task's files; the rest of a DataFile is not needed there.
  return {
    content,
    filePath,
    fileFormat: 'PARQUET',
    partition: [],
    specId: 0,
    recordCount: 0n,
    fileSizeInBytes: 0n,
    ...(equalityIds ? { equalityIds } : {}),
  };
}

/** A planned task as the scan engine's task. */
export function taskOf(planned: PlannedTask): FileScanTask {
  return {
    dataFile: { ...stubFile(planned.filePath, 'data'), recordCount: BigInt(planned.recordCount) },
    dataSequenceNumber: 0n,
    positionDeletes: planned.positionDeletes.map((p) => stubFile(p, 'position-deletes')),
    equalityDeletes: planned.equalityDeletes.map((e) => stubFile(e.filePath, 'equality-deletes', e.equalityIds)),
  };
}

/** The data files that snapshots in `(from, to]` added. */
async function filesAddedBetween(io: FileIO, metadata: TableMetadata, from: bigint, to: bigint): Promise<Set<string>> {
  const added = new Set<string>();
  for (const snapshot of snapshotsBetween(metadata, from, to)) {
    for (const { entries } of await liveEntries(io, metadata, snapshot)) {
      for (const e of entries) {
        if (e.status === 'added' && e.snapshotId === snapshot.snapshotId && e.dataFile.content === 'data') {
          added.add(e.dataFile.filePath);
        }
      }
    }
  }
  return added;
}

/** The URI of the plan of a run, and the run's root directory. */
export function runLocations(indexRoot: string, index: string, version: string, runKey: string) {
  const key = createHash('sha256').update(runKey).digest('hex').slice(0, 16);
  return { runRoot: `${indexRoot.replace(/\/+$/, '')}/${index}/runs/${version}/${key}` };
}

/** Where a plan's file lives (inside its run root). */
export function planUriOf(plan: Pick<ShardPlan, 'runRoot'>): string {
  return `${plan.runRoot}/plan.json`;
}

/** Where a shard's vectors go: named by version and shard id only, so a retry replaces the same file. */
export function shardOutputPath(plan: Pick<ShardPlan, 'output' | 'model'>, id: string): string {
  return `${plan.output.dataDir}/embeddings/${plan.model.version}/${id}.parquet`;
}

/**
 * Plans the shards of a backfill. For an Iceberg source the plan pins the snapshot (given, or the current one);
 * in incremental mode it keeps only the files written between the two snapshots, read with the deletes of `to`,
 * so rows changed again later in the range are read once, in their last form.
 */
export async function planShards(
  catalog: SqlCatalog,
  io: FileIO,
  input: PlanShardsInput & { indexRoot: string; dataDir: string; outputSchema: unknown },
): Promise<ShardPlan> {
  const { runRoot: runBase } = runLocations(input.indexRoot, input.output.index, input.model.version, input.runKey);
  const columns = {
    id: input.idColumn,
    ...(input.textColumn ? { text: input.textColumn } : {}),
    ...(input.imageUriColumn ? { imageUri: input.imageUriColumn } : {}),
    metadata: input.metadataColumns,
  };
  const base = {
    formatVersion: 1 as const,
    columns,
    model: input.model,
    output: {
      table: input.output.table,
      index: input.output.index,
      indexRoot: input.indexRoot,
      dataDir: input.dataDir,
      schema: input.outputSchema,
    },
  };
  if (input.source.kind === 'parquet') {
    const uris = new Set(input.source.paths);
    if (input.source.prefix) {
      for await (const f of io.list(input.source.prefix)) if (f.uri.endsWith('.parquet')) uris.add(f.uri);
    }
    const files: { uri: string; rows: number }[] = [];
    for (const uri of [...uris].sort()) {
      files.push({ uri, rows: Number(readParquetFooter(await io.read(uri)).numRows) });
    }
    const shards = splitIntoShards(
      files.map((f) => ({ path: f.uri, rows: f.rows })),
      input.shardSize,
    );
    const planId = createHash('sha256')
      .update(JSON.stringify({ files, shardSize: input.shardSize, version: input.model.version }))
      .digest('hex')
      .slice(0, 16);
    return { ...base, planId, runRoot: `${runBase}/${planId}`, source: { kind: 'parquet' }, tasks: [], files, shards };
  }

  const { metadata } = await catalog.loadTable(input.source.table);
  const schema = currentSchema(metadata);
  const needed = [columns.id, columns.text ?? columns.imageUri!, ...columns.metadata];
  projectSchema(schema, needed); // fails early, naming a missing column
  const filter = filterExpression(input.source.filter);
  let snapshotId: bigint | undefined;
  let tasks: FileScanTask[];
  let incremental: ShardPlan['incremental'];
  if (input.incremental) {
    const from = BigInt(input.incremental.fromSnapshotId);
    const to = input.incremental.toSnapshotId ? BigInt(input.incremental.toSnapshotId) : metadata.currentSnapshotId;
    if (to === null) throw new EmbeddingError('invalid-option', `table ${input.source.table} has no snapshots`);
    const added = await filesAddedBetween(io, metadata, from, to);
    tasks = (await planFiles(io, metadata, { snapshotId: to, ...(filter ? { filter } : {}) })).filter((t) =>
      added.has(t.dataFile.filePath),
    );
    snapshotId = to;
    incremental = { fromSnapshotId: from.toString(), toSnapshotId: to.toString() };
  } else {
    const snapshot = selectSnapshot(
      metadata,
      input.source.snapshotId ? { snapshotId: BigInt(input.source.snapshotId) } : {},
    );
    snapshotId = snapshot?.snapshotId;
    tasks = snapshot
      ? await planFiles(io, metadata, { snapshotId: snapshot.snapshotId, ...(filter ? { filter } : {}) })
      : [];
  }
  const planned = tasks.map(slimTask).sort((a, b) => (a.filePath < b.filePath ? -1 : a.filePath > b.filePath ? 1 : 0));
  const shards = splitIntoShards(
    planned.map((t) => ({ path: t.filePath, rows: t.recordCount })),
    input.shardSize,
  );
  const planId = createHash('sha256')
    .update(
      JSON.stringify({
        t: input.source.table,
        s: snapshotId?.toString(),
        f: input.source.filter,
        i: incremental,
        n: input.shardSize,
        v: input.model.version,
      }),
    )
    .digest('hex')
    .slice(0, 16);
  return {
    ...base,
    planId,
    runRoot: `${runBase}/${planId}`,
    source: {
      kind: 'iceberg',
      table: input.source.table,
      ...(snapshotId === undefined ? {} : { snapshotId: snapshotId.toString() }),
      filter: input.source.filter,
      tableSchema: schemaToJson(schema),
    },
    tasks: planned,
    files: [],
    shards,
    ...(incremental ? { incremental } : {}),
  };
}

/** Parses a plan file. */
export function parsePlan(bytes: Uint8Array, uri: string): ShardPlan {
  try {
    const plan = JSON.parse(Buffer.from(bytes).toString('utf8')) as ShardPlan;
    if (plan.formatVersion !== 1 || !Array.isArray(plan.shards)) throw new Error('not a version 1 plan');
    return plan;
  } catch (err) {
    throw new EmbeddingError('corrupt-file', `shard plan ${uri} cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export async function readPlan(io: FileIO, uri: string): Promise<ShardPlan> {
  return parsePlan(await io.read(uri), uri);
}

function primitive(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

function idString(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : String(value);
}

/**
 * The items of `shard` from position `from` (within the shard) on, in order, one per row of the stream (so that
 * positions stay exact for resuming): a null id or value comes back as null for the caller to quarantine.
 */
export async function* readShardItems(
  io: FileIO,
  plan: ShardPlan,
  shard: PlannedShard,
  from = 0,
): AsyncGenerator<SourceItem> {
  const first = shard.start + from;
  const valueColumn = plan.columns.text ?? plan.columns.imageUri!;
  const wanted = [plan.columns.id, valueColumn, ...plan.columns.metadata];
  if (plan.source.kind === 'iceberg') {
    const tableSchema = parseSchema(plan.source.tableSchema);
    const schema = projectSchema(tableSchema, wanted);
    const byName = new Map(schema.fields.map((f) => [f.name, f.id] as const));
    const filter = filterExpression(plan.source.filter);
    let position = 0;
    for await (const batch of readTask(io, taskOf(plan.tasks[shard.file]!), schema, {
      tableSchema,
      ...(filter ? { filter } : {}),
    })) {
      if (position + batch.rowCount <= first) {
        position += batch.rowCount;
        continue;
      }
      const col = (name: string) => batch.columns.get(byName.get(name)!) ?? [];
      const ids = col(plan.columns.id);
      const values = col(valueColumn);
      const meta = plan.columns.metadata.map((m) => [m, col(m)] as const);
      for (let r = 0; r < batch.rowCount; r++, position++) {
        if (position < first) continue;
        if (position >= shard.end) return;
        const id = idString(ids[r]);
        const v = values[r];
        yield {
          id,
          value: v === null || v === undefined ? null : String(v),
          metadata: Object.fromEntries(meta.map(([m, vs]) => [m, primitive(vs[r])])),
        };
      }
    }
    return;
  }
  const file = plan.files[shard.file]!;
  const table: Table = tableFromIPC(readParquet(await io.read(file.uri)).intoIPCStream());
  const column = (name: string) => {
    const c = table.getChild(name);
    if (!c) throw new EmbeddingError('invalid-option', `Parquet file ${file.uri} has no column "${name}"`);
    return c;
  };
  const ids = column(plan.columns.id);
  const values = column(valueColumn);
  const meta = plan.columns.metadata.map((m) => [m, column(m)] as const);
  for (let r = first; r < Math.min(shard.end, table.numRows); r++) {
    const id = idString(ids.get(r));
    const v: unknown = values.get(r);
    yield {
      id,
      value: v === null || v === undefined ? null : String(v),
      metadata: Object.fromEntries(meta.map(([m, vs]) => [m, primitive(vs.get(r))])),
    };
  }
}

/** Every item of the plan's source (all shards), for coverage and index metadata. */
export async function* readAllItems(io: FileIO, plan: ShardPlan): AsyncGenerator<SourceItem> {
  for (const shard of plan.shards) yield* readShardItems(io, plan, shard);
}

export type { Schema };
