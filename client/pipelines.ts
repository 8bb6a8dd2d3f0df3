import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { z } from 'zod';
import {
  cdcMergeWorkflowId,
  CdcMergeInput,
  cdcOnboardWorkflowId,
  CdcOnboardInput,
  defaultIcebergTable,
} from '../schemas/cdc.js';
import { ActivityFanOutInput, PoolCheckInput } from '../schemas/platform.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
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
}

function definePipeline<S extends z.ZodType>(def: PipelineDefinition<S>): PipelineDefinition<S> {
  return def;
}

/** Every pipeline the CLI and SDK users can start. Pipeline issues add theirs here. */
export const pipelines = {
  'pool-check': definePipeline({
    name: 'pool-check',
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

/** Typed helper: starts the platform check. */
export function startPoolCheck(client: Client, input: z.input<typeof PoolCheckInput>, opts?: StartPipelineOptions) {
  return startPipeline(client, 'pool-check', input, opts) as Promise<
    WorkflowHandleWithFirstExecutionRunId<typeof workflows.poolCheck>
  >;
}

/** Typed helper: starts the orchestration-overhead benchmark workflow. */
export function startActivityFanOut(
  client: Client,
  input: z.input<typeof ActivityFanOutInput>,
  opts?: StartPipelineOptions,
) {
  return startPipeline(client, 'activity-fan-out', input, opts) as Promise<
    WorkflowHandleWithFirstExecutionRunId<typeof workflows.activityFanOut>
  >;
}

/** Typed helper: onboards a PostgreSQL table (`cdc-onboard/<source>/<table>`); the merge starts when it is done. */
export function startCdcOnboard(client: Client, input: z.input<typeof CdcOnboardInput>, opts?: StartPipelineOptions) {
  return startPipeline(client, 'cdc-onboard', input, opts) as Promise<
    WorkflowHandleWithFirstExecutionRunId<typeof workflows.cdcOnboard>
  >;
}

/** Typed helper: starts a source's merge loop (`cdc/<source>`) by hand, e.g. after it was stopped. */
export function startCdcMerge(client: Client, input: z.input<typeof CdcMergeInput>, opts?: StartPipelineOptions) {
  return startPipeline(client, 'cdc-merge', input, opts) as Promise<
    WorkflowHandleWithFirstExecutionRunId<typeof workflows.cdcMerge>
  >;
}
