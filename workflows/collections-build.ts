import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  defineQuery,
  defineUpdate,
  executeChild,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CollectionsActivities, CollectionsGpuActivities } from '../activities/collections-activities.js';
import {
  COLLECTIONS_QUERIES,
  COLLECTIONS_UPDATES,
  CollectionsBuildInput,
  VocabularyReview,
  addVlmUsage,
  vlmBudgetLeft,
  type CollectionsBuildSummary,
  type CollectionsPhase,
  type VlmUsageJson,
  type VocabularySummaryJson,
} from '../schemas/collections.js';
import type { EmbeddingBackfillInput } from '../schemas/embedding.js';
import type { Progress } from '../schemas/progress.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
import { taskQueues } from '../schemas/task-queues.js';
import { parseOrThrow } from '../schemas/validation.js';
import { embeddingBackfill } from './embedding-backfill.js';
import { parseWorkflowInput } from './validate-input.js';

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 20 };
const cpu = proxyActivities<CollectionsActivities>({
  startToCloseTimeout: '30m',
  retry,
  summary: 'collections: prepare, review, publish',
});
/** VLM stages: long, heartbeating per batch; a retry resumes from the cache / the stored chunks. */
const vlm = proxyActivities<CollectionsActivities>({
  startToCloseTimeout: '6h',
  heartbeatTimeout: '2m',
  retry,
  summary: 'collections: ask the VLM (extract / verify)',
});

/** The proposed (or approved) vocabulary and where the checkpoint stands, for operators. */
export interface VocabularyView {
  status: 'not-yet' | 'awaiting-review' | 'approved' | 'edited' | 'rejected' | 'auto-approved';
  proposal?: VocabularySummaryJson;
  approved?: VocabularySummaryJson;
  reviewedBy?: string;
  comment?: string;
  /** How long the run waits for the review (0 = forever), and what the timeout does. */
  timeoutSeconds?: number;
  onTimeout?: 'approve' | 'fail';
}

export const collectionsProgressQuery = defineQuery<Progress>(COLLECTIONS_QUERIES.progress);
export const collectionsVocabularyQuery = defineQuery<VocabularyView>(COLLECTIONS_QUERIES.vocabulary);
export const collectionsSummaryQuery = defineQuery<CollectionsBuildSummary>(COLLECTIONS_QUERIES.summary);
/** The human checkpoint: approve, edit or reject the proposed vocabulary. */
export const reviewVocabularyUpdate = defineUpdate<VocabularyView, [VocabularyReview]>(
  COLLECTIONS_UPDATES.reviewVocabulary,
);

const STAGES: CollectionsPhase[] = [
  'preparing',
  'extracting',
  'curating',
  'awaiting-review',
  'embedding-items',
  'assigning',
  'verifying',
  'publishing',
  'done',
];

/**
 * `collections-build/<name>/<version>`: turns a catalog into searchable collections. The VLM labels a stratified
 * sample (cached in Iceberg, so a rerun never pays twice); the vocabulary is curated and waits for an operator's
 * review; the dual encoder's image tower embeds every item through an `embedding-backfill` child (reused when its
 * index already holds this version over this catalog snapshot); collection phrases retrieve their items from the
 * ANN index; only borderline items go back to the VLM, within the run's budget; the collections are written to
 * Iceberg and the alias `<name>` flips only when precision@10 and recall@10 pass. docs/collections.md.
 */
export async function collectionsBuild(rawInput: CollectionsBuildInput): Promise<CollectionsBuildSummary> {
  const input = parseWorkflowInput(CollectionsBuildInput, rawInput, 'collectionsBuild input');
  const info = workflowInfo();
  const queues = taskQueues(info.taskQueue);
  const gpu = proxyActivities<CollectionsGpuActivities>({
    startToCloseTimeout: '2h',
    heartbeatTimeout: '2m',
    retry,
    taskQueue: queues.gpu,
    summary: 'collections: dual encoder on the GPU pool',
  });
  const runKey = info.firstExecutionRunId.slice(0, 8);
  const keys = input.attributes.map((a) => a.key);

  let usage: VlmUsageJson = { calls: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 };
  const summary: CollectionsBuildSummary = {
    name: input.name,
    version: input.version,
    phase: 'preparing',
    extractor: input.vlm ? 'vlm' : 'zero-shot',
    catalogItems: 0,
    sampleSize: 0,
    vlm: usage,
  };
  const vocabulary: VocabularyView = { status: 'not-yet' };
  let review: VocabularyReview | undefined;

  const remainingBudget = () => vlmBudgetLeft(input.budget, usage);
  const spend = (u: VlmUsageJson) => {
    usage = addVlmUsage(usage, u);
    summary.vlm = { ...summary.vlm, ...usage };
  };
  const showPhase = (phase: CollectionsPhase, detail: string) => {
    summary.phase = phase;
    upsertSearchAttributes([{ key: SearchAttributes.phase, value: phase }]);
    setCurrentDetails(
      `**${phase}** — ${detail}\n\nVLM: ${usage.calls} calls, ${usage.promptTokens + usage.completionTokens} tokens, ` +
        `$${usage.costUsd.toFixed(4)}`,
    );
  };

  setHandler(collectionsProgressQuery, (): Progress => {
    const at = Math.max(0, STAGES.indexOf(summary.phase));
    return {
      phase: summary.phase,
      done: at,
      total: STAGES.length - 1,
      unit: 'stages',
      detail: `VLM ${usage.calls} calls ($${usage.costUsd.toFixed(4)})`,
    };
  });
  setHandler(collectionsVocabularyQuery, () => vocabulary);
  setHandler(collectionsSummaryQuery, () => summary);
  setHandler(
    reviewVocabularyUpdate,
    (decision) => {
      review = decision;
      const status = decision.action === 'approve' ? 'approved' : decision.action === 'edit' ? 'edited' : 'rejected';
      return { ...vocabulary, status, reviewedBy: decision.by };
    },
    {
      validator: (decision) => {
        parseOrThrow(VocabularyReview, decision, 'vocabulary review');
        if (vocabulary.status !== 'awaiting-review') {
          throw new Error(`the vocabulary is not awaiting review (it is ${vocabulary.status})`);
        }
        if (review !== undefined) throw new Error('the vocabulary was already reviewed');
      },
    },
  );
  upsertSearchAttributes([
    { key: SearchAttributes.pipeline, value: 'collections-build' },
    { key: SearchAttributes.dataset, value: input.catalog.table },
    { key: SearchAttributes.model, value: `${input.imageModel.path}@${input.imageModel.version}` },
  ]);

  try {
    // 1. Prepare: resolve locations, pin the catalog snapshot, draw the stratified sample.
    showPhase('preparing', `reading ${input.catalog.table}`);
    const prep = await cpu.prepareCollectionsRun({
      name: input.name,
      version: input.version,
      runKey,
      catalog: input.catalog,
      ...(input.demand ? { demand: input.demand } : {}),
      sample: input.sample,
      output: input.output,
    });
    const { paths } = prep;
    summary.catalogItems = prep.catalogRows;
    summary.sampleSize = prep.sampleSize;

    // 2. Extract attributes from the sample.
    showPhase('extracting', `${prep.sampleSize} sampled items (${prep.strata} strata)`);
    const extraction = input.vlm
      ? await vlm.extractCollectionsVlm({
          runRoot: paths.runRoot,
          sampleUri: prep.sampleUri,
          vlm: input.vlm,
          attributes: input.attributes,
          promptVersion: input.promptVersion,
          extractionTable: paths.extractionTable,
          budget: remainingBudget(),
        })
      : await gpu.extractCollectionsZeroShot({
          runRoot: paths.runRoot,
          sampleUri: prep.sampleUri,
          attributes: input.attributes,
          promptVersion: input.promptVersion,
          textModel: input.textModel,
          imageModel: input.imageModel,
        });
    spend(extraction.usage);
    summary.extraction = {
      extracted: extraction.extracted,
      cacheHits: extraction.cacheHits,
      quarantined: extraction.quarantined,
    };
    if (extraction.extracted === 0) {
      throw ApplicationFailure.create({
        type: extraction.budgetExhausted ? 'BudgetExceeded' : 'QualityGateFailed',
        nonRetryable: true,
        message: extraction.budgetExhausted
          ? 'the VLM budget ran out before any sampled item was extracted'
          : `no sampled item could be extracted (${extraction.quarantined} quarantined under ${paths.runRoot}/quarantine)`,
      });
    }

    // 3. Curate the vocabulary.
    showPhase('curating', `${extraction.extracted} extractions`);
    const proposed = await gpu.proposeCollectionsVocabulary({
      runRoot: paths.runRoot,
      extractionsUri: extraction.extractionsUri,
      ...(prep.demandUri ? { demandUri: prep.demandUri } : {}),
      keys,
      textModel: input.textModel,
      minValueShare: input.vocabulary.minValueShare,
      minSupport: input.vocabulary.minSupport,
      maxAttributes: input.vocabulary.maxAttributes,
      mergeCosine: input.vocabulary.mergeCosine,
      maxCollections: input.vocabulary.maxCollections,
      ...(input.vocabulary.llmJudge && input.vlm ? { judge: input.vlm } : {}),
      budget: remainingBudget(),
    });
    spend(proposed.usage);
    vocabulary.proposal = proposed.summary;
    summary.vocabulary = { proposed: proposed.summary.collectionCount };

    // 4. The human checkpoint.
    vocabulary.status = 'awaiting-review';
    const timeoutMs = input.review.timeoutSeconds * 1000;
    vocabulary.timeoutSeconds = input.review.timeoutSeconds;
    vocabulary.onTimeout = input.review.onTimeout;
    showPhase(
      'awaiting-review',
      `${proposed.summary.collectionCount} collections proposed; approve, edit or reject with ` +
        `\`sluice collections review ${info.workflowId}\``,
    );
    const decided =
      timeoutMs > 0
        ? await condition(() => review !== undefined, timeoutMs, { summary: 'wait for the vocabulary review' })
        : (await condition(() => review !== undefined, { summary: 'wait for the vocabulary review' }), true);
    let vocabularyUri = proposed.vocabularyUri;
    if (!decided || review === undefined) {
      if (input.review.onTimeout === 'fail') {
        vocabulary.status = 'rejected';
        throw ApplicationFailure.create({
          type: 'PolicyDenied',
          nonRetryable: true,
          message: `nobody reviewed the vocabulary within ${input.review.timeoutSeconds}s (review.onTimeout = fail)`,
        });
      }
      vocabulary.status = 'auto-approved';
      vocabulary.approved = proposed.summary;
      summary.vocabulary.review = 'auto-approved on timeout';
    } else {
      vocabulary.reviewedBy = review.by;
      if (review.comment) vocabulary.comment = review.comment;
      if (review.action === 'reject') {
        vocabulary.status = 'rejected';
        summary.vocabulary.review = `rejected by ${review.by}`;
        throw ApplicationFailure.create({
          type: 'PolicyDenied',
          nonRetryable: true,
          message: `${review.by} rejected the proposed vocabulary${review.comment ? `: ${review.comment}` : ''}`,
        });
      }
      if (review.action === 'edit') {
        const applied = await cpu.applyVocabularyReview({
          runRoot: paths.runRoot,
          vocabularyUri: proposed.vocabularyUri,
          review,
        });
        vocabularyUri = applied.vocabularyUri;
        vocabulary.approved = applied.summary;
        vocabulary.status = 'edited';
      } else {
        vocabulary.approved = proposed.summary;
        vocabulary.status = 'approved';
      }
      summary.vocabulary.review = `${vocabulary.status} by ${review.by}`;
    }
    summary.vocabulary.approved = vocabulary.approved?.collectionCount ?? 0;

    // 5. Embed every item (the backfill's versioned output, reused when it is current).
    const itemStatus = await cpu.itemIndexStatus({
      indexRoot: paths.indexRoot,
      itemIndex: paths.itemIndex,
      modelVersion: input.imageModel.version,
      catalogSnapshotId: prep.catalogSnapshotId,
    });
    summary.itemIndex = { action: itemStatus.action, detail: itemStatus.detail };
    showPhase('embedding-items', itemStatus.detail);
    if (itemStatus.action !== 'reuse') {
      const backfill: EmbeddingBackfillInput = {
        source: { kind: 'iceberg', table: input.catalog.table, snapshotId: prep.catalogSnapshotId, filter: [] },
        idColumn: input.catalog.idColumn,
        imageUriColumn: input.catalog.imageUriColumn,
        metadataColumns: [],
        model: input.imageModel,
        output: { table: paths.itemVectorsTable, index: paths.itemIndex, indexRoot: paths.indexRoot },
        shardSize: input.backfill.shardSize,
        batchSize: input.backfill.batchSize,
        maxParallelism: input.backfill.maxParallelism,
        coverageThreshold: input.backfill.coverageThreshold,
        paritySampleSize: 32,
        parityMinCosine: 0.999,
        pinToHost: false,
        shardsPerRun: 200,
        commitEvery: 16,
        heartbeatTimeoutSeconds: 30,
        ...(itemStatus.action === 'incremental' && itemStatus.fromSnapshotId
          ? { incremental: { fromSnapshotId: itemStatus.fromSnapshotId, toSnapshotId: prep.catalogSnapshotId } }
          : {}),
      };
      await executeChild(embeddingBackfill, {
        args: [backfill],
        workflowId: `embedding-backfill/${paths.itemIndex}/${input.imageModel.version}/${runKey}`,
        taskQueue: info.taskQueue,
        staticSummary: `item embeddings for collections ${input.name} (${input.version})`,
      });
    }

    // 6. Assign: phrase vectors retrieve their items from the ANN index.
    showPhase('assigning', `${summary.vocabulary.approved} collections over ${prep.catalogRows} items`);
    const assigned = await gpu.assignCollections({
      runRoot: paths.runRoot,
      vocabularyUri,
      indexRoot: paths.indexRoot,
      itemIndex: paths.itemIndex,
      textModel: input.textModel,
      topK: input.assign.topK,
      scoreMode: input.assign.scoreMode,
      acceptScore: input.assign.acceptScore,
      borderlineScore: input.assign.borderlineScore,
      minScore: input.assign.minScore,
    });
    summary.assignment = {
      accepted: assigned.accepted,
      borderline: assigned.borderline,
      capped: assigned.capped,
      seconds: assigned.seconds,
      itemsPerSecond: assigned.seconds > 0 ? assigned.indexedItems / assigned.seconds : 0,
    };

    // 7. Verify the borderline candidates, within what is left of the budget.
    let decisionsUri: string | undefined;
    if (input.vlm && assigned.borderline > 0) {
      showPhase('verifying', `${assigned.borderline} borderline candidates`);
      const verified = await vlm.verifyCollectionsBorderline({
        runRoot: paths.runRoot,
        candidatesUri: assigned.candidatesUri,
        vocabularyUri,
        catalogTable: input.catalog.table,
        idColumn: input.catalog.idColumn,
        imageUriColumn: input.catalog.imageUriColumn,
        catalogSnapshotId: prep.catalogSnapshotId,
        vlm: input.vlm,
        acceptScore: input.assign.acceptScore,
        budget: remainingBudget(),
      });
      spend(verified.usage);
      decisionsUri = verified.decisionsUri;
      summary.verification = {
        asked: verified.asked,
        unasked: verified.unasked,
        quarantined: verified.quarantined,
        budgetExhausted: verified.budgetExhausted,
      };
      if (verified.budgetExhausted) {
        log.warn('VLM budget exhausted during verification: unverified borderline items are left out', {
          unasked: verified.unasked,
        });
      }
    }

    // 8. Publish the version's rows, evaluate, and flip the alias only when the gate passes.
    showPhase('publishing', 'writing the collections table and evaluating');
    const published = await cpu.publishCollectionsVersion({
      name: input.name,
      version: input.version,
      runKey,
      paths,
      candidatesUri: assigned.candidatesUri,
      vocabularyUri,
      ...(decisionsUri ? { decisionsUri } : {}),
      minConfidence: input.assign.minConfidence,
      ...(input.evaluation ? { evaluation: input.evaluation } : {}),
      catalogItems: prep.catalogRows,
      usage,
      facts: {
        'sluice.collections.extractor': summary.extractor,
        'sluice.collections.workflow-id': info.workflowId,
        'sluice.collections.catalog-snapshot': prep.catalogSnapshotId,
      },
    });
    summary.published = published;
    summary.vlm = { ...usage, callShareOfNaive: published.vlmCallShare };
    if (published.gate && !published.gate.passed) {
      summary.alias = { skipped: `quality gate failed: ${published.gate.reasons.join('; ')}` };
      throw ApplicationFailure.create({
        type: 'QualityGateFailed',
        nonRetryable: true,
        message: `collections ${input.name} ${input.version} not published: ${published.gate.reasons.join('; ')}`,
        details: [published.evaluation],
      });
    }
    const flipped = await cpu.flipCollectionsAlias({
      root: paths.root,
      name: input.name,
      version: input.version,
      buildDir: published.buildDir,
      by: info.workflowId,
    });
    summary.alias = { generation: flipped.generation };
    const ev = published.evaluation;
    showPhase(
      'done',
      `${published.collections} collections, ${published.members} memberships` +
        (ev
          ? `, P@10 ${ev.precisionAt10.toFixed(3)}, R@10 ${ev.recallAt10.toFixed(3)}`
          : ', ungated (no evaluation set)'),
    );
    await condition(allHandlersFinished);
    return summary;
  } catch (err) {
    summary.phase = 'failed';
    upsertSearchAttributes([{ key: SearchAttributes.phase, value: 'failed' }]);
    throw err;
  }
}
