import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityInterfaceFor,
} from '@temporalio/workflow';
import type { EmbeddingActivities, EmbeddingGpuActivities } from '../activities/embedding-activities.js';
import {
  EMBEDDING_SIGNALS,
  EmbeddingBackfillInput,
  EmbeddingCarriedState,
  type EmbeddingBackfillResult,
  type EmbeddingPhase,
  type EmbeddingProgress,
  type ParityResult,
} from '../schemas/embedding.js';
import { PROGRESS_QUERY } from '../schemas/progress.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
import { taskQueues } from '../schemas/task-queues.js';
import { PinnedGpuHost } from './pinning/pinned-gpu-host.js';
import { parseWorkflowInput } from './validate-input.js';

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 20 };
const plan = proxyActivities<EmbeddingActivities>({
  startToCloseTimeout: '30m',
  retry,
  summary: 'plan shards, commit vectors, flip the alias',
});
const heavy = proxyActivities<EmbeddingActivities>({
  startToCloseTimeout: '2h',
  retry,
  summary: 'build the version index / measure coverage',
});

export const embeddingProgressQuery = defineQuery<EmbeddingProgress>(PROGRESS_QUERY);
/** Stop starting shards (running ones finish) until `resume`. */
export const embeddingPauseSignal = defineSignal(EMBEDDING_SIGNALS.pause);
export const embeddingResumeSignal = defineSignal(EMBEDDING_SIGNALS.resume);

/**
 * `embedding-backfill/<index>/<version>`: embeds a source with one model version into the vectors table, builds
 * that version's ANN index, and flips `<index>@current` to it only when the coverage and parity gates pass. Shards
 * fan out to the GPU pool with bounded parallelism; finished shards are committed in batches (idempotently), and a
 * large run continues as new after `shardsPerRun` shards, carrying its progress.
 */
export async function embeddingBackfill(rawInput: EmbeddingBackfillInput): Promise<EmbeddingBackfillResult> {
  const input = parseWorkflowInput(EmbeddingBackfillInput, rawInput, 'embeddingBackfill input');
  const state = input.state ?? EmbeddingCarriedState.parse({});
  state.runs += 1;
  let phase: EmbeddingPhase = state.plan ? 'embedding' : 'planning';
  let itemsAtStart = state.itemsDone;
  const dataset = input.source.kind === 'iceberg' ? input.source.table : 'parquet';

  setHandler(embeddingProgressQuery, (): EmbeddingProgress => {
    const p = state.plan;
    const elapsedS = p && state.lastFinishedAtMs ? (state.lastFinishedAtMs - p.plannedAtMs) / 1000 : 0;
    const rate = elapsedS > 0 ? (state.itemsDone - itemsAtStart) / elapsedS : 0;
    const remaining = Math.max(0, (p?.totalItems ?? 0) - state.itemsDone);
    return {
      phase: state.paused && phase === 'embedding' ? 'paused' : phase,
      done: state.itemsDone,
      total: p?.totalItems ?? 0,
      unit: 'items',
      detail:
        `${state.doneShards.length}/${p?.shardCount ?? '?'} shards, ${rate.toFixed(1)} items/s` +
        (rate > 0 && remaining > 0 ? `, ETA ${Math.round(remaining / rate)}s` : '') +
        (state.quarantined ? `, ${state.quarantined} quarantined` : ''),
      shardsDone: state.doneShards.length,
      shardsTotal: p?.shardCount ?? 0,
      itemsPerSecond: rate,
      ...(rate > 0 ? { etaSeconds: remaining / rate } : {}),
      quarantined: state.quarantined,
      paused: state.paused,
      runs: state.runs,
    };
  });
  setHandler(embeddingPauseSignal, () => void (state.paused = true));
  setHandler(embeddingResumeSignal, () => void (state.paused = false));
  let shownPhase = '';
  const showPhase = (p: EmbeddingPhase) => {
    phase = p;
    if (p === shownPhase) return;
    shownPhase = p;
    upsertSearchAttributes([{ key: SearchAttributes.phase, value: p }]);
  };
  upsertSearchAttributes([
    { key: SearchAttributes.pipeline, value: 'embedding-backfill' },
    { key: SearchAttributes.dataset, value: dataset },
    { key: SearchAttributes.model, value: `${input.model.path}@${input.model.version}` },
  ]);

  const gpuOptions = {
    startToCloseTimeout: '4h',
    heartbeatTimeout: `${input.heartbeatTimeoutSeconds}s`,
    retry,
  } as const;
  const pinned = input.pinToHost
    ? new PinnedGpuHost<EmbeddingGpuActivities>({ activityOptions: gpuOptions })
    : undefined;
  const shared = proxyActivities<EmbeddingGpuActivities>({
    ...gpuOptions,
    taskQueue: taskQueues(workflowInfo().taskQueue).gpu,
    summary: 'embed one shard on the GPU pool',
  });
  const onGpu = <R>(step: (acts: ActivityInterfaceFor<EmbeddingGpuActivities>) => Promise<R>): Promise<R> =>
    pinned ? pinned.run((acts) => step(acts)) : step(shared);

  const pendingCommit: number[] = [];
  if (!state.plan) {
    showPhase('planning');
    const planned = await plan.planEmbeddingShards({
      source: input.source,
      idColumn: input.idColumn,
      ...(input.textColumn ? { textColumn: input.textColumn } : {}),
      ...(input.imageUriColumn ? { imageUriColumn: input.imageUriColumn } : {}),
      metadataColumns: input.metadataColumns,
      model: input.model,
      output: input.output,
      shardSize: input.shardSize,
      ...(input.incremental ? { incremental: input.incremental } : {}),
      runKey: workflowInfo().workflowId,
    });
    state.plan = {
      planUri: planned.planUri,
      runRoot: planned.runRoot,
      indexRoot: planned.indexRoot,
      shardCount: planned.shardCount,
      totalItems: planned.totalItems,
      ...(planned.sourceSnapshotId ? { sourceSnapshotId: planned.sourceSnapshotId } : {}),
      plannedAtMs: planned.plannedAtMs,
    };
    state.doneShards = [...planned.alreadyDone];
    state.itemsDone = planned.alreadyDoneItems;
    itemsAtStart = state.itemsDone;
    pendingCommit.push(...planned.alreadyDone);
  }
  const { planUri, shardCount } = state.plan;

  const commit = async () => {
    if (pendingCommit.length === 0) return;
    showPhase('committing');
    const batch = pendingCommit.splice(0);
    await plan.commitEmbeddingShards({ planUri, shardIndexes: batch });
    state.committedShards += batch.length;
    showPhase('embedding');
  };

  // Fan out: at most maxParallelism shards in flight; pause stops launching; continue-as-new after shardsPerRun.
  showPhase('embedding');
  const done = new Set(state.doneShards);
  const running = new Map<number, Promise<void>>();
  const perShardRate = input.rateLimit ? input.rateLimit / input.maxParallelism : undefined;
  let finishedThisRun = 0;
  let next = 0;
  const runOne = async (i: number) => {
    const r = await onGpu((acts) =>
      acts.embedShard({
        planUri,
        shardIndex: i,
        batchSize: input.batchSize,
        ...(perShardRate ? { rateLimit: perShardRate } : {}),
      }),
    ).catch((err: unknown) => {
      throw gateOrPermanent(err, `shard ${i}`);
    });
    done.add(i);
    state.doneShards.push(i);
    state.itemsDone += r.vectors + r.quarantined;
    state.quarantined += r.quarantined;
    if (r.attempt > 1) state.shardRetries += 1;
    state.lastFinishedAtMs = r.finishedAtMs;
    finishedThisRun += 1;
    pendingCommit.push(i);
    if (r.quarantined > 0) log.warn('shard quarantined items', { shard: r.shardId, count: r.quarantined });
  };
  for (;;) {
    const stopLaunching = finishedThisRun >= input.shardsPerRun || workflowInfo().continueAsNewSuggested;
    if (state.paused && running.size === 0) {
      await commit();
      showPhase('paused');
      await condition(() => !state.paused);
      showPhase('embedding');
    }
    while (!state.paused && !stopLaunching && running.size < input.maxParallelism && next < shardCount) {
      const i = next++;
      if (done.has(i)) continue;
      running.set(
        i,
        runOne(i).finally(() => running.delete(i)),
      );
    }
    if (running.size === 0) {
      if (next >= shardCount) break;
      if (stopLaunching) {
        await commit();
        state.doneShards.sort((a, b) => a - b);
        await condition(allHandlersFinished);
        await continueAsNew<typeof embeddingBackfill>({ ...input, state });
      }
      continue;
    }
    await Promise.race(running.values());
    if (pendingCommit.length >= input.commitEvery) await commit();
  }
  await commit();

  showPhase('indexing');
  const build = `b-${workflowInfo().firstExecutionRunId.slice(0, 8)}`;
  const index = await heavy.buildEmbeddingIndex({ planUri, build, sampleSize: input.paritySampleSize });

  showPhase('coverage');
  const coverage = await heavy.checkEmbeddingCoverage({ planUri, threshold: input.coverageThreshold });
  if (!coverage.passed) {
    throw ApplicationFailure.create({
      type: 'QualityGateFailed',
      nonRetryable: true,
      message:
        `coverage gate failed for ${input.output.index} version ${input.model.version}: ${coverage.covered}/` +
        `${coverage.sourceRows} rows (${(coverage.share * 100).toFixed(2)}%) have a vector, below ` +
        `${(input.coverageThreshold * 100).toFixed(2)}%; ${input.output.index}@current was left unchanged ` +
        `(missing e.g. ${coverage.missingSample.slice(0, 3).join(', ')}; see the quarantine under ${state.plan.runRoot})`,
      details: [coverage],
    });
  }

  let parity: ParityResult | undefined;
  if (input.paritySampleSize > 0) {
    showPhase('parity');
    parity = await onGpu((acts) =>
      acts.checkEmbeddingParity({
        sampleUri: index.sampleUri,
        minCosine: input.parityMinCosine,
        ...(input.parityModel ? { model: input.parityModel } : {}),
      }),
    );
    if (!parity.passed) {
      throw ApplicationFailure.create({
        type: 'QualityGateFailed',
        nonRetryable: true,
        message:
          `parity gate failed for ${input.output.index} version ${input.model.version}: min cosine ` +
          `${parity.minCosine.toFixed(5)} (worst id ${parity.worst?.id}) vs ${input.parityMinCosine}, versions ` +
          `[${parity.versions.join(', ')}]; ${input.output.index}@current was left unchanged`,
        details: [parity],
      });
    }
  }

  showPhase('publishing');
  const flipped = await plan.flipEmbeddingAlias({
    indexRoot: state.plan.indexRoot,
    index: input.output.index,
    version: input.model.version,
    indexDir: index.indexDir,
    workflowId: workflowInfo().workflowId,
  });
  showPhase('done');
  return {
    index: input.output.index,
    version: input.model.version,
    shards: shardCount,
    vectors: index.vectors,
    quarantined: state.quarantined,
    shardRetries: state.shardRetries,
    coverage,
    ...(parity ? { parity } : {}),
    indexDir: index.indexDir,
    aliasGeneration: flipped.generation,
    ...(flipped.previousVersion ? { previousVersion: flipped.previousVersion } : {}),
    runs: state.runs,
  };
}

/** A failed shard activity as the workflow's failure: its typed cause, named for the shard. */
function gateOrPermanent(err: unknown, what: string): unknown {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) return err;
  const cause = err.cause;
  return ApplicationFailure.create({
    type: cause.type ?? 'InvalidInput',
    nonRetryable: true,
    message: `embedding-backfill ${what} failed: ${cause.message}`,
    cause: err,
  });
}
