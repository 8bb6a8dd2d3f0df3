import { Context, log } from '@temporalio/activity';
import type { Registry } from 'prom-client';
import type { SqlCatalog } from '../lib/iceberg/catalog/sql-catalog.js';
import { currentSchema } from '../lib/iceberg/metadata-json.js';
import { scanTable } from '../lib/iceberg/scan.js';
import { isIn } from '../lib/iceberg/expressions.js';
import type { FileIO } from '../lib/storage/file-io.js';
import type { Embedder } from '../lib/embedding/backfill.js';
import { readAlias, setAlias } from '../lib/embedding/alias-store.js';
import { LoadedIndex, readIndexManifest } from '../lib/embedding/index-store.js';
import { CollectionsError } from '../lib/collections/errors.js';
import {
  addUsage,
  NO_USAGE,
  type CatalogRow,
  type CollectionCandidates,
  type CollectionDef,
  type CollectionsQuarantineRecord,
  type ExtractionRecord,
  type VerificationDecision,
  type Vocabulary,
  type VlmUsage,
} from '../lib/collections/types.js';
import { stratifiedSample } from '../lib/collections/sample.js';
import { VlmClient } from '../lib/collections/vlm-client.js';
import { contentHash, extractWithVlm } from '../lib/collections/extract.js';
import { ensureExtractionTable, lookupExtractions, storeExtractions } from '../lib/collections/extraction-cache.js';
import { verifyBorderline } from '../lib/collections/verify.js';
import { judgeCollections } from '../lib/collections/judge.js';
import { appendQuarantine } from '../lib/collections/quarantine-store.js';
import {
  collectionsMetrics,
  countQuarantined,
  countVlmUsage,
  type CollectionsMetrics,
} from '../lib/collections/metrics.js';
import { applyReview, proposeVocabulary, summariseVocabulary } from '../lib/collections/vocabulary.js';
import { zeroShotExtract } from '../lib/collections/zero-shot.js';
import { decideMembers, retrieveCandidates } from '../lib/collections/assign.js';
import { evaluateCollections, qualityGate, vlmCallShare } from '../lib/collections/evaluate.js';
import { writeBuildManifest, writeCollectionsVersion } from '../lib/collections/publish.js';
import { readEvaluationSet } from '../lib/collections/synthetic.js';
import {
  ApplyReviewInput,
  AssignCollectionsInput,
  ExtractVlmInput,
  ExtractZeroShotInput,
  FlipCollectionsAliasInput,
  ItemIndexStatusInput,
  PrepareCollectionsInput,
  ProposeVocabularyInput,
  PublishCollectionsInput,
  VerifyBorderlineInput,
  vlmBudgetLeft,
  type ApplyReviewResult,
  type AssignCollectionsResult,
  type CollectionsRunPaths,
  type ExtractResult,
  type ItemIndexStatusResult,
  type PrepareCollectionsResult,
  type ProposeVocabularyResult,
  type PublishCollectionsResult,
  type VerifyBorderlineResult,
  type VlmEndpoint,
  type VocabularySummaryJson,
} from '../schemas/collections.js';
import { toActivityFailure, validateActivityInput } from './failures.js';

/** What the CPU side of `collections-build` needs: the catalog, the FileIO and the warehouse root. */
export interface CollectionsActivityDeps {
  catalog: SqlCatalog;
  io: FileIO;
  /** Run files default to `<warehouse>/collections`, the item index to `<warehouse>/indexes`. */
  warehouse: string;
  /** Environment the VLM API key is read from (`vlm.apiKeyEnv`). @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Where the VLM spend and quarantine counters go (`sluice_vlm_*`, `sluice_collections_*`). @default none */
  metricsRegistry?: Registry;
}

/** What a GPU host needs for the dual-encoder stages: the FileIO and its inference engine. */
export interface CollectionsGpuActivityDeps {
  io: FileIO;
  embedder: Embedder;
  env?: NodeJS.ProcessEnv;
  metricsRegistry?: Registry;
}

async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toActivityFailure(err);
  }
}

async function readJson<T>(io: FileIO, uri: string, what: string): Promise<T> {
  let bytes: Uint8Array;
  try {
    bytes = await io.read(uri);
  } catch (err) {
    throw new CollectionsError('not-found', `${what} ${uri} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  } catch (err) {
    throw new CollectionsError('corrupt-file', `${what} ${uri} is not valid JSON: ${(err as Error).message}`);
  }
}

async function writeJson(io: FileIO, uri: string, value: unknown): Promise<string> {
  await io.write(uri, JSON.stringify(value));
  return uri;
}

function vlmClient(endpoint: VlmEndpoint, env: NodeJS.ProcessEnv): VlmClient {
  let apiKey: string | undefined;
  if (endpoint.apiKeyEnv) {
    apiKey = env[endpoint.apiKeyEnv];
    if (!apiKey) {
      throw new CollectionsError(
        'vlm-misconfigured',
        `vlm.apiKeyEnv names ${endpoint.apiKeyEnv}, which is not set on this worker`,
      );
    }
  }
  return new VlmClient({
    url: endpoint.url,
    model: endpoint.model,
    ...(apiKey ? { apiKey } : {}),
    concurrency: endpoint.concurrency,
    ...(endpoint.rateLimit ? { rateLimit: endpoint.rateLimit } : {}),
    pricePer1kTokens: endpoint.pricePer1kTokens,
    timeoutMs: endpoint.timeoutSeconds * 1000,
    maxAttempts: endpoint.maxAttempts,
  });
}

function namespaceOf(table: string): string {
  return table.slice(0, table.lastIndexOf('.'));
}

function trimRoot(uri: string): string {
  return uri.replace(/\/+$/, '');
}

interface StoredSample {
  rows: CatalogRow[];
}

/** Appends quarantined records under a prefix (JSONL parts an operator can replay) and counts them. */
function quarantineTo(io: FileIO, metrics: CollectionsMetrics | undefined) {
  return async (prefix: string, records: readonly CollectionsQuarantineRecord[]): Promise<void> => {
    if (records.length === 0) return;
    await appendQuarantine(io, prefix, records);
    countQuarantined(metrics, records);
  };
}

/** The CPU activities of `collections-build`. */
export function createCollectionsActivities(deps: CollectionsActivityDeps) {
  const { catalog, io } = deps;
  const env = deps.env ?? process.env;
  const metrics = deps.metricsRegistry ? collectionsMetrics(deps.metricsRegistry) : undefined;
  const quarantine = quarantineTo(io, metrics);

  /** Reads `columns` of the catalog table at a snapshot, as rows of strings (null stays null). */
  async function readCatalogColumns(
    table: string,
    columns: string[],
    snapshotId: bigint | undefined,
    filter?: { column: string; values: string[] },
  ): Promise<{ rows: (string | null)[][]; snapshotId: string }> {
    const loaded = await catalog.loadTable(table);
    const schema = currentSchema(loaded.metadata);
    const missing = columns.filter((c) => !schema.fields.some((f) => f.name === c));
    if (missing.length > 0) {
      throw new CollectionsError(
        'invalid-option',
        `catalog table ${table} has no column ${missing.join(', ')} (it has ${schema.fields.map((f) => f.name).join(', ')})`,
      );
    }
    const snap = snapshotId ?? loaded.metadata.currentSnapshotId ?? undefined;
    const ids = columns.map((c) => schema.fields.find((f) => f.name === c)!.id);
    const rows: (string | null)[][] = [];
    if (snap === undefined) return { rows, snapshotId: '-1' };
    // Filter literals in the column's own type (ids travel as strings).
    const filterField = filter ? schema.fields.find((f) => f.name === filter.column) : undefined;
    const literal = (v: string): string | number | bigint =>
      filterField?.type.kind === 'long' ? BigInt(v) : filterField?.type.kind === 'int' ? Number(v) : v;
    for await (const batch of scanTable(io, loaded.metadata, {
      snapshotId: BigInt(snap),
      columns,
      ...(filter ? { filter: isIn(filter.column, filter.values.map(literal)) } : {}),
    })) {
      const cols = ids.map((id) => batch.columns.get(id)!);
      for (let r = 0; r < batch.rowCount; r++) {
        rows.push(cols.map((c) => (c[r] === null || c[r] === undefined ? null : String(c[r]))));
      }
    }
    return { rows, snapshotId: String(snap) };
  }

  return {
    /** Resolves the run's locations, pins the catalog snapshot, draws the stratified sample and copies the demand. */
    async prepareCollectionsRun(raw: PrepareCollectionsInput): Promise<PrepareCollectionsResult> {
      const input = validateActivityInput(PrepareCollectionsInput, raw, 'prepareCollectionsRun input');
      return guarded(async () => {
        const ns = namespaceOf(input.catalog.table);
        const root = trimRoot(input.output.root ?? `${trimRoot(deps.warehouse)}/collections`);
        const itemIndex = input.output.itemIndex ?? `${input.name}-items`;
        const paths: CollectionsRunPaths = {
          runRoot: `${root}/${input.name}/runs/${input.version}/${input.runKey}`,
          root,
          indexRoot: trimRoot(input.output.indexRoot ?? `${trimRoot(deps.warehouse)}/indexes`),
          itemIndex,
          collectionsTable: input.output.table ?? `${ns}.collections`,
          extractionTable: input.output.extractionTable ?? `${ns}.vlm_extractions`,
          itemVectorsTable: `${ns}.${itemIndex.replace(/-/g, '_')}_vectors`,
        };
        const c = input.catalog;
        // Pass 1: ids, image URIs and strata of every row (what the sample is drawn on) at the current snapshot.
        const columns = [c.idColumn, c.imageUriColumn];
        if (c.stratumColumn) columns.push(c.stratumColumn);
        const { rows, snapshotId } = await readCatalogColumns(c.table, columns, undefined);
        if (rows.length === 0) {
          throw new CollectionsError(
            'invalid-option',
            `catalog table ${c.table} has no rows to build collections from`,
          );
        }
        const good: { itemId: string; stratum?: string }[] = [];
        const invalid: CollectionsQuarantineRecord[] = [];
        const at = new Date().toISOString();
        for (const [id, image, stratum] of rows) {
          if (!id || !image) {
            invalid.push({
              stage: 'extract',
              itemId: id ?? '(null)',
              reason: 'invalid-record',
              message: !id ? 'the item id is null' : 'the image URI is null',
              at,
            });
            continue;
          }
          good.push({ itemId: id, ...(c.stratumColumn ? { stratum: stratum ?? '(null)' } : {}) });
        }
        await quarantine(`${paths.runRoot}/quarantine/catalog/`, invalid);
        const picked = stratifiedSample(good, input.sample.size, input.sample.seed);
        // Pass 2: the text of the sampled rows only, at the same snapshot.
        const strata = new Map(good.map((r) => [r.itemId, r.stratum]));
        const detail = await readCatalogColumns(
          c.table,
          [c.idColumn, c.imageUriColumn, c.titleColumn, c.descriptionColumn],
          BigInt(snapshotId),
          { column: c.idColumn, values: picked },
        );
        const sample: CatalogRow[] = detail.rows
          .filter(([id, image]) => id && image)
          .map(([id, image, title, description]) => {
            const stratum = strata.get(id!);
            return {
              itemId: id!,
              imageUri: image!,
              title: title ?? '',
              description: description ?? '',
              ...(stratum === undefined ? {} : { stratum }),
            };
          });
        const sampleUri = await writeJson(io, `${paths.runRoot}/sample.json`, { rows: sample } satisfies StoredSample);
        let demandUri: string | undefined;
        let demandQueries = 0;
        if (input.demand) {
          const d = await readCatalogColumns(
            input.demand.table,
            [input.demand.queryColumn, input.demand.countColumn],
            undefined,
          );
          const demand = d.rows
            .filter(([q, n]) => q && n !== null && Number.isFinite(Number(n)))
            .map(([q, n]) => ({ query: q!, count: Number(n) }));
          demandQueries = demand.length;
          demandUri = await writeJson(io, `${paths.runRoot}/demand.json`, demand);
        }
        await ensureExtractionTable(catalog, paths.extractionTable);
        log.info('collections run prepared', { runRoot: paths.runRoot, rows: rows.length, sample: sample.length });
        return {
          paths,
          catalogSnapshotId: snapshotId,
          catalogRows: good.length,
          invalidRows: invalid.length,
          sampleUri,
          sampleSize: sample.length,
          strata: new Set(sample.map((r) => r.stratum ?? '')).size,
          ...(demandUri ? { demandUri } : {}),
          demandQueries,
        };
      });
    },

    /**
     * Asks the VLM for the attributes of every sampled item not in the cache, batch by batch: each batch's answers
     * are stored in the cache table before the heartbeat, so a retried activity pays only for the batch in flight.
     */
    async extractCollectionsVlm(raw: ExtractVlmInput): Promise<ExtractResult> {
      const input = validateActivityInput(ExtractVlmInput, raw, 'extractCollectionsVlm input');
      return guarded(async () => {
        const ctx = Context.current();
        const { rows } = await readJson<StoredSample>(io, input.sampleUri, 'sample');
        const client = vlmClient(input.vlm, env);
        const keys = input.attributes.map((a) => a.key);
        const images = new Map<string, Uint8Array>();
        const readImage = async (uri: string) => {
          const hit = images.get(uri);
          if (hit) return hit;
          const bytes = await io.read(uri);
          images.set(uri, bytes);
          return bytes;
        };
        const records: ExtractionRecord[] = [];
        let cacheHits = 0;
        let quarantined = 0;
        // A retried attempt starts over (the cache answers what was already paid for) but keeps the spend of the
        // attempts before it, from their heartbeats, so the budget holds across retries.
        const carried = (ctx.info.heartbeatDetails as { usage?: VlmUsage } | undefined)?.usage;
        let usage: VlmUsage = carried ?? NO_USAGE;
        let budgetExhausted = false;
        for (let start = 0; start < rows.length && !budgetExhausted; start += input.batchSize) {
          const batch = rows.slice(start, start + input.batchSize);
          const hashes: string[] = [];
          for (const row of batch) {
            try {
              hashes.push(contentHash(await readImage(row.imageUri), row.title, row.description));
            } catch {
              hashes.push(''); // unreadable: extractWithVlm quarantines it
            }
          }
          const cached = await lookupExtractions(
            catalog,
            io,
            input.extractionTable,
            hashes
              .filter(Boolean)
              .map((h) => ({ contentHash: h, promptVersion: input.promptVersion, model: input.vlm.model })),
          );
          const remaining = vlmBudgetLeft(input.budget, usage);
          const out = await extractWithVlm({
            client,
            items: batch,
            readImage,
            keys,
            promptVersion: input.promptVersion,
            model: input.vlm.model,
            cached,
            budget: remaining,
            // Answers reach the cache as they come (and before an error propagates): a retry pays for none twice.
            storeNew: async (fresh) => void (await storeExtractions(catalog, io, input.extractionTable, fresh)),
            storeEvery: 16,
            onProgress: (done) => ctx.heartbeat({ done: start + done, total: rows.length, usage }),
          });
          await quarantine(`${input.runRoot}/quarantine/extract/`, out.quarantined);
          countVlmUsage(metrics, 'extract', input.vlm.model, out.usage);
          records.push(...out.records);
          cacheHits += out.cacheHits;
          quarantined += out.quarantined.length;
          usage = addUsage(usage, out.usage);
          budgetExhausted = out.budgetExhausted;
          for (const row of batch) images.delete(row.imageUri);
          ctx.heartbeat({ done: Math.min(rows.length, start + batch.length), total: rows.length, usage });
        }
        const extractionsUri = await writeJson(io, `${input.runRoot}/extractions.json`, records);
        log.info('sample extracted', { extracted: records.length, cacheHits, quarantined, calls: usage.calls });
        return { extractionsUri, extracted: records.length, cacheHits, quarantined, usage, budgetExhausted };
      });
    },

    /** Applies the operator's edit to the proposed vocabulary and stores the approved one. */
    async applyVocabularyReview(raw: ApplyReviewInput): Promise<ApplyReviewResult> {
      const input = validateActivityInput(ApplyReviewInput, raw, 'applyVocabularyReview input');
      return guarded(async () => {
        const proposed = await readJson<Vocabulary>(io, input.vocabularyUri, 'vocabulary');
        const approved = applyReview(proposed, input.review);
        const vocabularyUri = await writeJson(io, `${input.runRoot}/vocabulary.approved.json`, approved);
        return { vocabularyUri, summary: summariseVocabulary(approved) as VocabularySummaryJson };
      });
    },

    /** Whether the item index already holds this model version over this catalog snapshot (then it is reused). */
    async itemIndexStatus(raw: ItemIndexStatusInput): Promise<ItemIndexStatusResult> {
      const input = validateActivityInput(ItemIndexStatusInput, raw, 'itemIndexStatus input');
      return guarded(async () => {
        const alias = await readAlias(io, input.indexRoot, input.itemIndex);
        if (!alias) return { action: 'full', detail: `index ${input.itemIndex} does not exist yet: full backfill` };
        if (alias.version !== input.modelVersion) {
          return {
            action: 'full',
            detail: `index ${input.itemIndex} is at model version ${alias.version}, not ${input.modelVersion}: full backfill`,
          };
        }
        const manifest = await readIndexManifest(io, alias.indexDir);
        if (manifest.sourceSnapshotId === input.catalogSnapshotId) {
          return {
            action: 'reuse',
            detail: `index ${input.itemIndex}@${alias.version} already covers catalog snapshot ${input.catalogSnapshotId}: reused`,
          };
        }
        if (manifest.sourceSnapshotId) {
          return {
            action: 'incremental',
            fromSnapshotId: manifest.sourceSnapshotId,
            detail: `index ${input.itemIndex}@${alias.version} covers snapshot ${manifest.sourceSnapshotId}: embedding the rows written since`,
          };
        }
        return { action: 'full', detail: `index ${input.itemIndex} has no source snapshot: full backfill` };
      });
    },

    /**
     * Asks the VLM about the borderline candidates, nearest the threshold first, in chunks: each chunk's decisions
     * are stored before the heartbeat, so a retry resumes after the last stored chunk and pays for nothing twice.
     */
    async verifyCollectionsBorderline(raw: VerifyBorderlineInput): Promise<VerifyBorderlineResult> {
      const input = validateActivityInput(VerifyBorderlineInput, raw, 'verifyCollectionsBorderline input');
      return guarded(async () => {
        const ctx = Context.current();
        const candidates = await readJson<CollectionCandidates[]>(io, input.candidatesUri, 'candidates');
        const vocabulary = await readJson<Vocabulary>(io, input.vocabularyUri, 'vocabulary');
        // One global order: nearest the accept threshold first, whatever the collection.
        const flat = candidates
          .flatMap((c) =>
            c.borderline.map((cand) => ({
              collectionId: c.collectionId,
              cand,
              accept: c.acceptScore ?? input.acceptScore,
            })),
          )
          .sort((a, b) => Math.abs(a.cand.score - a.accept) - Math.abs(b.cand.score - b.accept));
        const chunks: CollectionCandidates[][] = [];
        for (let i = 0; i < flat.length; i += input.chunkSize) {
          const byCollection = new Map<string, CollectionCandidates>();
          for (const { collectionId, cand } of flat.slice(i, i + input.chunkSize)) {
            let entry = byCollection.get(collectionId);
            if (!entry) byCollection.set(collectionId, (entry = { collectionId, accepted: [], borderline: [] }));
            entry.borderline.push(cand);
          }
          chunks.push([...byCollection.values()]);
        }
        const decisionsRoot = `${input.runRoot}/decisions`;
        const resumeFrom = Number((ctx.info.heartbeatDetails as { chunk?: number } | undefined)?.chunk ?? 0);
        const stored: { decisions: VerificationDecision[]; usage: VlmUsage; asked: number; quarantined: number }[] = [];
        for (let i = 0; i < resumeFrom; i++) {
          stored.push(
            await readJson(io, `${decisionsRoot}/chunk-${String(i).padStart(6, '0')}.json`, 'decision chunk'),
          );
        }
        let usage = stored.reduce((u, s) => addUsage(u, s.usage), NO_USAGE);
        const needed = new Set(flat.map((f) => f.cand.itemId));
        const images = await readCatalogColumns(
          input.catalogTable,
          [input.idColumn, input.imageUriColumn],
          BigInt(input.catalogSnapshotId),
          { column: input.idColumn, values: [...needed] },
        );
        const imageOf = new Map(images.rows.map(([id, uri]) => [id!, uri]));
        const client = vlmClient(input.vlm, env);
        let budgetExhausted = false;
        let chunk = resumeFrom;
        for (; chunk < chunks.length && !budgetExhausted; chunk++) {
          const remaining = vlmBudgetLeft(input.budget, usage);
          const out = await verifyBorderline({
            client,
            candidates: chunks[chunk]!,
            collections: vocabulary.collections,
            acceptScore: input.acceptScore,
            imageFor: async (itemId: string) => {
              const uri = imageOf.get(itemId);
              if (!uri) throw new CollectionsError('not-found', `item ${itemId} has no image URI in the catalog`);
              const bytes = await io.read(uri);
              return { bytes, mimeType: mimeOf(bytes) };
            },
            budget: remaining,
          });
          await quarantine(`${input.runRoot}/quarantine/verify/`, out.quarantined);
          countVlmUsage(metrics, 'verify', input.vlm.model, out.usage);
          const entry = {
            decisions: out.decisions,
            usage: out.usage,
            asked: out.asked,
            quarantined: out.quarantined.length,
          };
          await writeJson(io, `${decisionsRoot}/chunk-${String(chunk).padStart(6, '0')}.json`, entry);
          stored.push(entry);
          usage = addUsage(usage, out.usage);
          budgetExhausted = out.budgetExhausted;
          ctx.heartbeat({ chunk: chunk + 1 });
        }
        const decisions = stored.flatMap((s) => s.decisions);
        const decisionsUri = await writeJson(io, `${input.runRoot}/decisions.json`, decisions);
        const asked = stored.reduce((n, s) => n + s.asked, 0);
        return {
          decisionsUri,
          asked,
          unasked: Math.max(0, flat.length - decisions.length),
          quarantined: stored.reduce((n, s) => n + s.quarantined, 0),
          usage,
          budgetExhausted,
        };
      });
    },

    /**
     * Decides the members (accepted + VLM-confirmed borderline), evaluates them against the labelled set, writes the
     * version's rows in one snapshot and the build manifest. The alias is not touched here.
     */
    async publishCollectionsVersion(raw: PublishCollectionsInput): Promise<PublishCollectionsResult> {
      const input = validateActivityInput(PublishCollectionsInput, raw, 'publishCollectionsVersion input');
      return guarded(async () => {
        const candidates = await readJson<CollectionCandidates[]>(io, input.candidatesUri, 'candidates');
        const decisions = input.decisionsUri
          ? await readJson<VerificationDecision[]>(io, input.decisionsUri, 'decisions')
          : [];
        const vocabulary = await readJson<Vocabulary>(io, input.vocabularyUri, 'vocabulary');
        const answered = new Set(decisions.map((d) => `${d.collectionId}\u0000${d.itemId}`));
        const unasked = new Set<string>();
        for (const c of candidates)
          for (const b of c.borderline) {
            const key = `${c.collectionId}\u0000${b.itemId}`;
            if (!answered.has(key)) unasked.add(key);
          }
        const decided = decideMembers({
          collections: vocabulary.collections,
          candidates,
          decisions,
          minConfidence: input.minConfidence,
          unasked,
        });
        const byId = new Map<string, CollectionDef>(vocabulary.collections.map((c) => [c.id, c]));
        const published = decided
          .filter((c) => c.items.length > 0)
          .map((c) => ({
            ...c,
            name: byId.get(c.id)?.name ?? c.name,
            attributes: byId.get(c.id)?.attributes ?? c.attributes,
          }));
        const evaluation = input.evaluation
          ? evaluateCollections(published, await readEvaluationSet(io, input.evaluation.uri))
          : undefined;
        const gate =
          evaluation && input.evaluation
            ? qualityGate(evaluation, {
                minPrecisionAt10: input.evaluation.minPrecisionAt10,
                minRecallAt10: input.evaluation.minRecallAt10,
                minCollectionRecall: input.evaluation.minCollectionRecall,
              })
            : null;
        const callShare = vlmCallShare(input.usage.calls, input.catalogItems, published.length);
        const summary: Record<string, string> = {
          ...input.facts,
          'sluice.collections.vlm-calls': String(input.usage.calls),
          'sluice.collections.vlm-cost-usd': input.usage.costUsd.toFixed(6),
          ...(evaluation
            ? {
                'sluice.collections.precision-at-10': evaluation.precisionAt10.toFixed(4),
                'sluice.collections.recall-at-10': evaluation.recallAt10.toFixed(4),
              }
            : {}),
        };
        const written = await writeCollectionsVersion({
          catalog,
          io,
          table: input.paths.collectionsTable,
          version: input.version,
          runKey: input.runKey,
          collections: published,
          builtAt: new Date(),
          summary,
        });
        const members = published.reduce((n, c) => n + c.items.length, 0);
        const verifiedMembers = published.reduce((n, c) => n + c.items.filter((m) => m.verified).length, 0);
        const partialCollections = published.filter((c) => c.partial).length;
        const buildDir = await writeBuildManifest(io, input.paths.root, input.name, input.version, {
          runKey: input.runKey,
          table: input.paths.collectionsTable,
          snapshotId: String(written.snapshotId),
          evaluation: evaluation ?? null,
          gate,
          usage: input.usage,
          vlmCallShare: callShare,
          counts: { collections: published.length, members, verifiedMembers, partialCollections },
        });
        return {
          snapshotId: String(written.snapshotId),
          buildDir,
          collections: published.length,
          members,
          verifiedMembers,
          partialCollections,
          ...(evaluation ? { evaluation } : {}),
          gate,
          vlmCallShare: callShare,
        };
      });
    },

    /** Points the alias `<name>` at the build (compare-and-swap in the object store). */
    async flipCollectionsAlias(raw: FlipCollectionsAliasInput): Promise<{ generation: number }> {
      const input = validateActivityInput(FlipCollectionsAliasInput, raw, 'flipCollectionsAlias input');
      return guarded(async () => {
        const current = await readAlias(io, input.root, input.name);
        if (current && current.indexDir === input.buildDir) return { generation: current.generation };
        const record = await setAlias(
          io,
          input.root,
          input.name,
          { version: input.version, indexDir: input.buildDir },
          {
            by: input.by,
          },
        );
        return { generation: record.generation };
      });
    },
  };
}

export type CollectionsActivities = ReturnType<typeof createCollectionsActivities>;

function mimeOf(bytes: Uint8Array): string {
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return 'image/png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  if (bytes[0] === 0x52 && bytes[1] === 0x49 && bytes[8] === 0x57) return 'image/webp';
  return 'application/octet-stream';
}

/** The GPU-pool activities of `collections-build`: everything that runs the dual encoder. */
export function createCollectionsGpuActivities(deps: CollectionsGpuActivityDeps) {
  const { io, embedder } = deps;
  const env = deps.env ?? process.env;
  const metrics = deps.metricsRegistry ? collectionsMetrics(deps.metricsRegistry) : undefined;
  const quarantine = quarantineTo(io, metrics);

  // Every call into the model heartbeats: these activities run with a heartbeat timeout, and a large sample or
  // vocabulary takes many calls.
  const embedTextsStrict = (model: { path: string; version: string }) => async (texts: readonly string[]) => {
    const out = await embedder.embedTexts(model, texts);
    Context.current().heartbeat();
    return out.map((o, i) => {
      if (o instanceof Float32Array) return o;
      throw new CollectionsError('invalid-option', `"${texts[i]}" cannot be embedded: ${o.error.message}`);
    });
  };

  return {
    /** The demo's extractor: the dual encoder's zero-shot scoring of each sampled image against the candidate values. */
    async extractCollectionsZeroShot(raw: ExtractZeroShotInput): Promise<ExtractResult> {
      const input = validateActivityInput(ExtractZeroShotInput, raw, 'extractCollectionsZeroShot input');
      return guarded(async () => {
        const { rows } = await readJson<StoredSample>(io, input.sampleUri, 'sample');
        const items: { itemId: string; contentHash: string; imageBytes: Uint8Array }[] = [];
        const quarantined: CollectionsQuarantineRecord[] = [];
        for (const row of rows) {
          try {
            const bytes = await io.read(row.imageUri);
            items.push({
              itemId: row.itemId,
              contentHash: contentHash(bytes, row.title, row.description),
              imageBytes: bytes,
            });
          } catch (err) {
            quarantined.push({
              stage: 'extract',
              itemId: row.itemId,
              reason: 'unreadable-image',
              message: `${row.imageUri}: ${(err as Error).message}`,
              at: new Date().toISOString(),
            });
          }
        }
        // An image the image tower rejects (undecodable) gets a zero vector here and is quarantined below.
        const rejected = new Map<number, string>();
        let offset = 0;
        const all = await zeroShotExtract({
          embedImages: async (images: readonly Uint8Array[]) => {
            const out = await embedder.embedImages(input.imageModel, images);
            Context.current().heartbeat({ imagesEmbedded: offset + images.length });
            const vectors = out.map((o, i) => {
              if (o instanceof Float32Array) return o;
              rejected.set(offset + i, o.error.message);
              return new Float32Array(0);
            });
            offset += images.length;
            return vectors;
          },
          embedTexts: embedTextsStrict(input.textModel),
          keys: input.attributes,
          items,
          modelLabel: `${input.textModel.version}`,
          promptVersion: input.promptVersion,
        });
        const rejectedIds = new Map([...rejected].map(([i, message]) => [items[i]!.itemId, message]));
        for (const [itemId, message] of rejectedIds) {
          quarantined.push({
            stage: 'extract',
            itemId,
            reason: 'unreadable-image',
            message: `the image tower cannot read the image: ${message}`,
            at: new Date().toISOString(),
          });
        }
        const records = all.filter((r) => !rejectedIds.has(r.itemId));
        await quarantine(`${input.runRoot}/quarantine/extract/`, quarantined);
        const extractionsUri = await writeJson(io, `${input.runRoot}/extractions.json`, records);
        return {
          extractionsUri,
          extracted: records.length,
          cacheHits: 0,
          quarantined: quarantined.length,
          usage: NO_USAGE,
          budgetExhausted: false,
        };
      });
    },

    /** Curates the vocabulary from the extractions (frequency filter, embedding clustering, demand, judge). */
    async proposeCollectionsVocabulary(raw: ProposeVocabularyInput): Promise<ProposeVocabularyResult> {
      const input = validateActivityInput(ProposeVocabularyInput, raw, 'proposeCollectionsVocabulary input');
      return guarded(async () => {
        const extractions = await readJson<ExtractionRecord[]>(io, input.extractionsUri, 'extractions');
        const demand = input.demandUri
          ? await readJson<{ query: string; count: number }[]>(io, input.demandUri, 'demand')
          : undefined;
        let usage: VlmUsage = NO_USAGE;
        const judgeEndpoint = input.judge;
        // The judge's requests can take minutes without an embedding call in between: heartbeat on a timer too.
        const ctx = Context.current();
        const keepAlive = setInterval(() => ctx.heartbeat({ phase: 'curating' }), 10_000);
        const vocabulary = await (async () => {
          try {
            return await proposeVocabulary({
              extractions,
              keys: input.keys,
              embedTexts: embedTextsStrict(input.textModel),
              ...(demand ? { demand } : {}),
              minValueShare: input.minValueShare,
              minSupport: input.minSupport,
              maxAttributes: input.maxAttributes,
              mergeCosine: input.mergeCosine,
              maxCollections: input.maxCollections,
              ...(judgeEndpoint
                ? {
                    judge: async (cols: CollectionDef[]) => {
                      const client = vlmClient(judgeEndpoint, env);
                      const verdicts = await judgeCollections({ client, collections: cols, budget: input.budget });
                      usage = client.usage();
                      countVlmUsage(metrics, 'judge', judgeEndpoint.model, usage);
                      return verdicts;
                    },
                  }
                : {}),
            });
          } finally {
            clearInterval(keepAlive);
          }
        })();
        const vocabularyUri = await writeJson(io, `${input.runRoot}/vocabulary.proposed.json`, vocabulary);
        return { vocabularyUri, summary: summariseVocabulary(vocabulary) as VocabularySummaryJson, usage };
      });
    },

    /** Embeds the collection phrases with the text tower and retrieves their items from the item index. */
    async assignCollections(raw: AssignCollectionsInput): Promise<AssignCollectionsResult> {
      const input = validateActivityInput(AssignCollectionsInput, raw, 'assignCollections input');
      return guarded(async () => {
        const started = performance.now();
        const vocabulary = await readJson<Vocabulary>(io, input.vocabularyUri, 'vocabulary');
        const alias = await readAlias(io, input.indexRoot, input.itemIndex);
        if (!alias) {
          throw new CollectionsError(
            'not-found',
            `item index ${input.itemIndex} has no current build under ${input.indexRoot}`,
          );
        }
        if (alias.version !== input.textModel.version) {
          throw new CollectionsError(
            'invalid-option',
            `item index ${input.itemIndex} is at version ${alias.version}; the text model is ${input.textModel.version}`,
          );
        }
        const index = await LoadedIndex.load(io, alias.indexDir);
        const names = vocabulary.collections.map((c) => c.name);
        const vectors = names.length > 0 ? await embedTextsStrict(input.textModel)(names) : [];
        const phraseVectors = new Map(vocabulary.collections.map((c, i) => [c.id, vectors[i]!]));
        const result = retrieveCandidates({
          index,
          collections: vocabulary.collections,
          phraseVectors,
          topK: input.topK,
          scoreMode: input.scoreMode,
          acceptScore: input.acceptScore,
          borderlineScore: input.borderlineScore,
          minScore: input.minScore,
          onProgress: (done, total) => Context.current().heartbeat({ phase: 'retrieving', done, total }),
        });
        const candidates: CollectionCandidates[] = result.candidates;
        if (index.incompleteSearches > 0) {
          log.warn('the item index returned fewer hits than asked: some items may be unreachable in its graph', {
            index: input.itemIndex,
            incompleteSearches: index.incompleteSearches,
          });
        }
        const candidatesUri = await writeJson(io, `${input.runRoot}/candidates.json`, candidates);
        return {
          candidatesUri,
          collections: candidates.length,
          accepted: candidates.reduce((n, c) => n + c.accepted.length, 0),
          borderline: candidates.reduce((n, c) => n + c.borderline.length, 0),
          indexedItems: index.keys.length,
          capped: result.capped,
          incompleteSearches: index.incompleteSearches,
          seconds: (performance.now() - started) / 1000,
        };
      });
    },
  };
}

export type CollectionsGpuActivities = ReturnType<typeof createCollectionsGpuActivities>;
