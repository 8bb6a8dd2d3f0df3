import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { z } from 'zod';
import {
  CdcFileMergeInput,
  cdcFileMergeWorkflowId,
  cdcMergeWorkflowId,
  CdcMergeInput,
  cdcOnboardWorkflowId,
  CdcOnboardInput,
  defaultIcebergTable,
} from '../schemas/cdc.js';
import { CdcTableMaintenanceInput, cdcMaintenanceWorkflowId } from '../schemas/cdc-operations.js';
import { ActivityFanOutInput, PoolCheckInput } from '../schemas/platform.js';
import { QuotaRightsizeInput, quotaRightsizeWorkflowId } from '../schemas/quota.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
import { SparkJobInput, sparkJobWorkflowId } from '../schemas/spark.js';
import { EmbeddingBackfillInput, embeddingBackfillWorkflowId } from '../schemas/embedding.js';
import { CollectionsBuildInput, collectionsBuildWorkflowId } from '../schemas/collections.js';
import { taskQueues } from '../schemas/task-queues.js';
import { parseOrThrow } from '../schemas/validation.js';
import type * as workflows from '../workflows/index.js';

/** What the client knows about one pipeline: its workflow, its input schema and how runs are named. */
export interface PipelineDefinition<S extends z.ZodType = z.ZodType> {
  /** CLI name, also the `SluicePipeline` search attribute value. */
  name: string;
  /** The workflow function's name. */
  workflowType: keyof typeof workflows;
  input: S;
  description: string;
  /** Business-key workflow id for an input; a duplicate start with the same key is refused. */
  workflowId(input: z.infer<S>): string;
  /** One line for the UI. */
  summary(input: z.infer<S>): string;
  /** Runs activities on the GPU pool, whose queues derive from the workflow's queue (so no dedicated CPU queue). */
  usesGpuPool?: true;
}

function definePipeline<S extends z.ZodType>(def: PipelineDefinition<S>): PipelineDefinition<S> {
  return def;
}

/** Every pipeline the CLI and SDK users can start. Pipeline issues add theirs here. */
export const pipelines = {
  'pool-check': definePipeline({
    name: 'pool-check',
    usesGpuPool: true,
    workflowType: 'poolCheck',
    input: PoolCheckInput,
    description: 'exercise both worker pools: CPU fan-out, then steps pinned to one GPU host',
    workflowId: () => `pool-check/${randomUUID()}`,
    summary: (i) => `pool check: ${i.cpuActivities} CPU activities, ${i.gpuSteps} pinned GPU steps`,
  }),
  'activity-fan-out': definePipeline({
    name: 'activity-fan-out',
    workflowType: 'activityFanOut',
    input: ActivityFanOutInput,
    description: 'run N no-op activities (orchestration-overhead benchmark)',
    workflowId: () => `activity-fan-out/${randomUUID()}`,
    summary: (i) => `${i.count} no-op activities, ${i.mode}`,
  }),
  'cdc-onboard': definePipeline({
    name: 'cdc-onboard',
    workflowType: 'cdcOnboard',
    input: CdcOnboardInput,
    description: 'copy a PostgreSQL table into a new Iceberg table, then start its source merge',
    workflowId: (i) => cdcOnboardWorkflowId(i.sourceName, i.table),
    summary: (i) =>
      `onboard ${i.table} of source ${i.sourceName} into ${i.icebergTable ?? defaultIcebergTable(i.sourceName, i.table)}`,
  }),
  'cdc-merge': definePipeline({
    name: 'cdc-merge',
    workflowType: 'cdcMerge',
    input: CdcMergeInput,
    description: "merge a source's replication slot changes into its Iceberg tables, continuously",
    workflowId: (i) => cdcMergeWorkflowId(i.sourceName),
    summary: (i) => `CDC merge of source ${i.sourceName}: ${i.tables.map((t) => t.icebergTable).join(', ')}`,
  }),
  'quota-rightsize': definePipeline({
    name: 'quota-rightsize',
    workflowType: 'quotaRightsize',
    input: QuotaRightsizeInput,
    description: "rightsize a budget group's quotas from usage, within budget, with owners' approval for large changes",
    workflowId: (i) => quotaRightsizeWorkflowId(i.budgetGroup),
    summary: (i) =>
      `rightsize quotas of budget group ${i.budgetGroup}` +
      (i.budgetPerHour === undefined ? '' : ` (budget ${i.budgetPerHour}/h)`) +
      (i.dryRun ? ', dry run' : ''),
  }),
  'cdc-table-maintenance': definePipeline({
    name: 'cdc-table-maintenance',
    workflowType: 'cdcTableMaintenance',
    input: CdcTableMaintenanceInput,
    description: 'compact a CDC table when deletes or small files pass a threshold, expire snapshots, remove orphans',
    workflowId: (i) => `${cdcMaintenanceWorkflowId(i.icebergTable)}/${randomUUID()}`,
    summary: (i) => `maintenance of ${i.icebergTable}`,
  }),
  'cdc-file-merge': definePipeline({
    name: 'cdc-file-merge',
    workflowType: 'cdcFileMerge',
    input: CdcFileMergeInput,
    description: 'merge Debezium change files (filesystem or S3) into an Iceberg table, continuously',
    workflowId: (i) => cdcFileMergeWorkflowId(i.sourceName),
    summary: (i) =>
      `CDC file merge of ${i.files.prefix} (${i.table}) into ${i.icebergTable ?? defaultIcebergTable(i.sourceName, i.table)}`,
  }),
  'spark-job': definePipeline({
    name: 'spark-job',
    workflowType: 'sparkJob',
    input: SparkJobInput,
    description: 'run a Spark application; on OOM resize and retry, and start from the learned size next time',
    workflowId: (i) => sparkJobWorkflowId(i.spec.name),
    summary: (i) =>
      `Spark job ${i.spec.name} (${i.spec.owner}) on ${i.spec.master}: ${i.spec.app.resource}, ` +
      `executor ${i.spec.resources.executorMemory}, ${i.spec.retry.policy} up to ${i.spec.retry.maxAttempts} attempts`,
  }),
  'embedding-backfill': definePipeline({
    name: 'embedding-backfill',
    usesGpuPool: true,
    workflowType: 'embeddingBackfill',
    input: EmbeddingBackfillInput,
    description: 'embed a table with one model version, index it, gate coverage and parity, then flip <index>@current',
    workflowId: (i) => embeddingBackfillWorkflowId(i),
    summary: (i) =>
      `embed ${i.source.kind === 'iceberg' ? i.source.table : 'Parquet files'} with ${i.model.path}@${i.model.version} ` +
      `into ${i.output.table}, index ${i.output.index}${i.incremental ? ' (incremental)' : ''}`,
  }),
  'collections-build': definePipeline({
    name: 'collections-build',
    usesGpuPool: true,
    workflowType: 'collectionsBuild',
    input: CollectionsBuildInput,
    description:
      'VLM on a sample, curated vocabulary with a human checkpoint, dual-encoder assignment, borderline verification, gated publish',
    workflowId: (i) => collectionsBuildWorkflowId(i),
    summary: (i) =>
      `collections ${i.name} ${i.version} from ${i.catalog.table}: ` +
      `${i.vlm ? `VLM ${i.vlm.model}` : 'zero-shot dual encoder'} on ${i.sample.size} sampled items`,
  }),
} as const;

export type PipelineName = keyof typeof pipelines;
export const PIPELINE_NAMES = Object.keys(pipelines) as PipelineName[];

/** An unknown pipeline name; the message lists the known ones. */
export class UnknownPipelineError extends Error {
  override readonly name = 'UnknownPipelineError';
  constructor(readonly requested: string) {
    super(
      `unknown pipeline "${requested}"; known pipelines:\n${PIPELINE_NAMES.map((n) => `  ${n.padEnd(18)} ${pipelines[n].description}`).join('\n')}`,
    );
  }
}

/** Looks a pipeline up by name, or throws {@link UnknownPipelineError}. */
export function getPipeline(name: string): PipelineDefinition {
  if (!(name in pipelines)) throw new UnknownPipelineError(name);
  return pipelines[name as PipelineName] as unknown as PipelineDefinition;
}

/** Options of {@link startPipeline}. */
export interface StartPipelineOptions {
  /** Workflow id; defaults to the pipeline's business key. */
  workflowId?: string;
  /** Base task queue. @default sluice */
  taskQueue?: string;
}

/**
 * Validates `input` against the pipeline's schema (the same check the CLI does) and starts the workflow with its
 * search attributes and UI summary. Throws `InputValidationError` naming each bad field.
 */
export async function startPipeline(
  client: Client,
  name: string,
  input: unknown,
  opts: StartPipelineOptions = {},
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const pipeline = getPipeline(name);
  const parsed = parseOrThrow(pipeline.input, input, `input of pipeline "${name}"`);
  return client.workflow.start(pipeline.workflowType, {
    args: [parsed],
    taskQueue: taskQueues(opts.taskQueue).cpu,
    workflowId: opts.workflowId ?? pipeline.workflowId(parsed),
    staticSummary: pipeline.summary(parsed),
    typedSearchAttributes: [{ key: SearchAttributes.pipeline, value: pipeline.name }],
  });
}

/**
 * A typed start helper for one pipeline: `z.input` of its schema in, a handle typed with its workflow out. It
 * validates like the CLI (see {@link startPipeline}).
 */
function typedStarter<N extends PipelineName, W extends (typeof workflows)[keyof typeof workflows]>(name: N) {
  return (client: Client, input: z.input<(typeof pipelines)[N]['input']>, opts?: StartPipelineOptions) =>
    startPipeline(client, name, input, opts) as Promise<WorkflowHandleWithFirstExecutionRunId<W>>;
}

/** Typed helper: starts the platform check. */
export const startPoolCheck = typedStarter<'pool-check', typeof workflows.poolCheck>('pool-check');

/** Typed helper: starts the orchestration-overhead benchmark workflow. */
export const startActivityFanOut = typedStarter<'activity-fan-out', typeof workflows.activityFanOut>(
  'activity-fan-out',
);

/** Typed helper: onboards a PostgreSQL table (`cdc-onboard/<source>/<table>`); the merge starts when it is done. */
export const startCdcOnboard = typedStarter<'cdc-onboard', typeof workflows.cdcOnboard>('cdc-onboard');

/** Typed helper: starts a source's merge loop (`cdc/<source>`) by hand, e.g. after it was stopped. */
export const startCdcMerge = typedStarter<'cdc-merge', typeof workflows.cdcMerge>('cdc-merge');

/** Typed helper: one maintenance run of a CDC table (compaction by threshold, snapshot expiry, orphan removal). */
export const startCdcTableMaintenance = typedStarter<'cdc-table-maintenance', typeof workflows.cdcTableMaintenance>(
  'cdc-table-maintenance',
);

/** Typed helper: starts the merge of a Debezium change-file source (`cdc-files/<source>`); it creates the table. */
export const startCdcFileMerge = typedStarter<'cdc-file-merge', typeof workflows.cdcFileMerge>('cdc-file-merge');

/** Typed helper: rightsizes one budget group's quotas (`quota-rightsize/<group>`); see docs/quota.md. */
export const startQuotaRightsize = typedStarter<'quota-rightsize', typeof workflows.quotaRightsize>('quota-rightsize');

/** Typed helper: runs a Spark job with elastic retry (`spark/<name>`); see docs/spark.md. */
export const startSparkJob = typedStarter<'spark-job', typeof workflows.sparkJob>('spark-job');

/** Typed helper: backfills embeddings of one model version (`embedding-backfill/<index>/<version>`); see docs/embedding-backfill.md. */
export const startEmbeddingBackfill = typedStarter<'embedding-backfill', typeof workflows.embeddingBackfill>(
  'embedding-backfill',
);

/** Starts `collections-build/<name>/<version>` (validated input, business-key id). */
export const startCollectionsBuild = typedStarter<'collections-build', typeof workflows.collectionsBuild>(
  'collections-build',
);
