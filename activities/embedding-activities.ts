import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/activity';
import type { SqlCatalog } from '../lib/iceberg/catalog/sql-catalog.js';
import { isInferenceError } from '../lib/inference/errors.js';
import {
  buildVersionIndex,
  checkParity,
  commitShardFiles,
  computeCoverage,
  dataDirectory,
  deserializeDataFile,
  EmbeddingError,
  ensureVectorsTable,
  indexBuildDir,
  planShards,
  planUriOf,
  readPlan,
  readShardManifest,
  runShard,
  readAlias,
  setAlias,
  type Embedder,
  type ShardPlan,
} from '../lib/embedding/index.js';
import { schemaToJson } from '../lib/iceberg/types.js';
import { currentSchema } from '../lib/iceberg/metadata-json.js';
import type { FileIO } from '../lib/storage/file-io.js';
import {
  CheckParityInput,
  CommitShardsInput,
  CoverageInput,
  EmbedShardHeartbeat,
  EmbedShardInput,
  FlipAliasInput,
  BuildIndexInput,
  PlanShardsInput,
  type BuildIndexResult,
  type CommitShardsResult,
  type CoverageResult,
  type EmbedShardResult,
  type FlipAliasResult,
  type ParityResult,
  type PlanShardsResult,
} from '../schemas/embedding.js';
import { toActivityFailure, typedFailure, validateActivityInput } from './failures.js';

/** What the CPU side of the backfill needs: the catalog (source and vectors tables) and the FileIO. */
export interface EmbeddingActivityDeps {
  catalog: SqlCatalog;
  io: FileIO;
  /** The warehouse root; indexes default to `<warehouse>/indexes`. */
  warehouse: string;
}

/** What a GPU host needs to run shards: the FileIO (source files, parts, outputs) and its inference engine. */
export interface EmbeddingGpuActivityDeps {
  io: FileIO;
  embedder: Embedder;
  host: string;
}

/** Maps engine errors (embedding, iceberg, storage, inference) to typed failures; anything else stays transient. */
function failure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (isInferenceError(err)) return typedFailure(err.failureType, err.message, { kind: err.kind });
  if (err instanceof EmbeddingError) return typedFailure(err.failureType, err.message, { kind: err.kind });
  return toActivityFailure(err);
}

async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw failure(err);
  }
}

/** Keeps the last few plans read, so that shard after shard does not re-read a large plan file. */
function planCache(io: FileIO) {
  const cache = new Map<string, Promise<ShardPlan>>();
  return (uri: string): Promise<ShardPlan> => {
    let p = cache.get(uri);
    if (!p) {
      p = readPlan(io, uri);
      p.catch(() => cache.delete(uri));
      cache.set(uri, p);
      if (cache.size > 8) cache.delete(cache.keys().next().value!);
    }
    return p;
  };
}

/** The CPU activities of `embedding-backfill`: planning, commits, index, coverage and the alias. */
export function createEmbeddingActivities(deps: EmbeddingActivityDeps) {
  const { catalog, io } = deps;
  const plans = planCache(io);
  return {
    /** Plans the shards (pinning the source snapshot) and writes the plan file; finds shards a rerun already did. */
    async planEmbeddingShards(raw: PlanShardsInput): Promise<PlanShardsResult> {
      const input = validateActivityInput(PlanShardsInput, raw, 'planEmbeddingShards input');
      return guarded(async () => {
        const vectors = await ensureVectorsTable(catalog, input.output.table);
        const indexRoot = input.output.indexRoot ?? `${deps.warehouse.replace(/\/+$/, '')}/indexes`;
        const plan = await planShards(catalog, io, {
          ...input,
          indexRoot,
          dataDir: dataDirectory(vectors),
          outputSchema: schemaToJson(currentSchema(vectors)),
        });
        const planUri = planUriOf(plan);
        await io.write(planUri, JSON.stringify(plan));
        const alreadyDone: number[] = [];
        let alreadyDoneItems = 0;
        for (let i = 0; i < plan.shards.length; i++) {
          if (await readShardManifest(io, plan, i)) {
            alreadyDone.push(i);
            alreadyDoneItems += plan.shards[i]!.end - plan.shards[i]!.start;
          }
        }
        log.info('planned embedding shards', { planUri, shards: plan.shards.length, alreadyDone: alreadyDone.length });
        return {
          planUri,
          runRoot: plan.runRoot,
          indexRoot,
          shardCount: plan.shards.length,
          totalItems: plan.shards.reduce((n, s) => n + (s.end - s.start), 0),
          ...(plan.source.kind === 'iceberg' && plan.source.snapshotId
            ? { sourceSnapshotId: plan.source.snapshotId }
            : {}),
          alreadyDone,
          alreadyDoneItems,
          plannedAtMs: Date.now(),
        };
      });
    },

    /** Adds finished shards' files to the vectors table; a retry adds only the files the table does not list yet. */
    async commitEmbeddingShards(raw: CommitShardsInput): Promise<CommitShardsResult> {
      const input = validateActivityInput(CommitShardsInput, raw, 'commitEmbeddingShards input');
      return guarded(async () => {
        const plan = await plans(input.planUri);
        const files = [];
        for (const i of input.shardIndexes) {
          const m = await readShardManifest(io, plan, i);
          if (!m) throw typedFailure('Corrupt', `shard ${i} of ${input.planUri} has no manifest; it did not finish`);
          if (m.hasFile) files.push({ shardId: m.shardId, dataFile: deserializeDataFile(m.dataFile) });
        }
        if (files.length === 0) return { added: 0, alreadyCommitted: 0 };
        const r = await commitShardFiles(catalog, io, plan.output.table, files, {
          'sluice.embedding.model-version': plan.model.version,
          'sluice.embedding.plan': plan.planId,
        });
        return {
          ...(r.snapshotId === undefined ? {} : { snapshotId: r.snapshotId.toString() }),
          added: r.added,
          alreadyCommitted: r.alreadyCommitted,
        };
      });
    },

    /** Builds the version's usearch index from the vectors table into a new build directory, with the parity sample. */
    async buildEmbeddingIndex(raw: BuildIndexInput): Promise<BuildIndexResult> {
      const input = validateActivityInput(BuildIndexInput, raw, 'buildEmbeddingIndex input');
      return guarded(async () => {
        const plan = await plans(input.planUri);
        const dir = indexBuildDir(plan.output.indexRoot, plan.output.index, plan.model.version, input.build);
        Context.current().heartbeat('building');
        const { manifest, sampleUri } = await buildVersionIndex(catalog, io, plan, {
          dir,
          sampleSize: input.sampleSize,
        });
        return {
          indexDir: dir,
          version: manifest.version,
          vectors: manifest.count,
          dimensions: manifest.dimensions,
          sampleUri,
        };
      });
    },

    /** Coverage gate: the share of the plan's source rows that have a vector of the version. */
    async checkEmbeddingCoverage(raw: CoverageInput): Promise<CoverageResult> {
      const input = validateActivityInput(CoverageInput, raw, 'checkEmbeddingCoverage input');
      return guarded(async () => {
        const plan = await plans(input.planUri);
        const c = await computeCoverage(catalog, io, plan);
        const share = c.sourceRows === 0 ? 1 : c.covered / c.sourceRows;
        return { ...c, share, passed: share >= input.threshold };
      });
    },

    /** Points `<index>@current` at the build (compare-and-swap); a retried flip to the same build changes nothing. */
    async flipEmbeddingAlias(raw: FlipAliasInput): Promise<FlipAliasResult> {
      const input = validateActivityInput(FlipAliasInput, raw, 'flipEmbeddingAlias input');
      return guarded(async () => {
        const before = await readAlias(io, input.indexRoot, input.index);
        const record = await setAlias(
          io,
          input.indexRoot,
          input.index,
          { version: input.version, indexDir: input.indexDir },
          { by: input.workflowId },
        );
        const previous = record.generation === before?.generation ? record.previous[0] : before;
        return { generation: record.generation, ...(previous ? { previousVersion: previous.version } : {}) };
      });
    },
  };
}

/** The GPU activities of `embedding-backfill`: one shard, and the parity recomputation. */
export function createEmbeddingGpuActivities(deps: EmbeddingGpuActivityDeps) {
  const { io } = deps;
  const plans = planCache(io);
  return {
    /**
     * Embeds one shard, heartbeating its offset after each stored batch and resuming from the last heartbeat on a
     * retry, then writes the shard's deterministic file. Bad items are quarantined; the shard goes on.
     */
    async embedShard(raw: EmbedShardInput): Promise<EmbedShardResult> {
      const input = validateActivityInput(EmbedShardInput, raw, 'embedShard input');
      const ctx = Context.current();
      const started = performance.now();
      return guarded(async () => {
        const plan = await plans(input.planUri);
        const shard = plan.shards[input.shardIndex];
        const details = EmbedShardHeartbeat.safeParse(ctx.info.heartbeatDetails);
        const startOffset = details.success && details.data.shardId === shard?.id ? details.data.offset : 0;
        const attempt = ctx.info.attempt;
        // A batch can take longer than the heartbeat timeout (a large model on a busy CPU): keep heartbeating the
        // last stored offset while it runs, so that only a dead worker times out.
        let stored = startOffset;
        const keepAlive = setInterval(() => ctx.heartbeat({ shardId: shard!.id, offset: stored }), 1000);
        const result = await runShard({
          io,
          plan,
          shardIndex: input.shardIndex,
          batchSize: input.batchSize,
          embedder: deps.embedder,
          startOffset,
          attempt,
          ...(input.rateLimit ? { rateLimit: input.rateLimit } : {}),
          signal: ctx.cancellationSignal,
          onBatchStart: (offset, size) =>
            ctx.log.info('embedding batch', { shardId: shard?.id, offset, size, attempt, host: deps.host }),
          onProgress: (offset) => {
            stored = offset;
            ctx.heartbeat({ shardId: shard!.id, offset } satisfies EmbedShardHeartbeat);
          },
        }).finally(() => clearInterval(keepAlive));
        return {
          shardIndex: input.shardIndex,
          shardId: result.shardId,
          file: result.file,
          vectors: result.vectors,
          quarantined: result.quarantined,
          resumedFrom: result.resumedFrom,
          reusedParts: result.reusedParts,
          computed: result.computed,
          attempt,
          host: deps.host,
          finishedAtMs: Date.now(),
          durationMs: performance.now() - started,
        };
      });
    },

    /** Parity gate: recomputes the sample through the inference pool directly, as the online service does. */
    async checkEmbeddingParity(raw: CheckParityInput): Promise<ParityResult> {
      const input = validateActivityInput(CheckParityInput, raw, 'checkEmbeddingParity input');
      return guarded(() => checkParity(io, deps.embedder, input.sampleUri, input.minCosine, input.model));
    },
  };
}

export type EmbeddingActivities = ReturnType<typeof createEmbeddingActivities>;
export type EmbeddingGpuActivities = ReturnType<typeof createEmbeddingGpuActivities>;
