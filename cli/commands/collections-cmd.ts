import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Command } from 'commander';
import { REPO_ROOT, sluiceEnv } from '../../lib/config.js';
import { rollbackAlias } from '../../lib/embedding/alias-store.js';
import { EmbeddingError } from '../../lib/embedding/errors.js';
import {
  listCollectionAliases,
  readPublishedCollections,
  type CollectionsBuildManifest,
} from '../../lib/collections/publish.js';
import type { PublishedCollection } from '../../lib/collections/types.js';
import type { VocabularySummary } from '../../lib/collections/vocabulary.js';
import { openWarehouse, resolveWarehouseUri } from '../../lib/stack/warehouse.js';
import { readQuarantine } from '../../lib/collections/quarantine-store.js';
import { CompositeFileIO } from '../../lib/storage/composite-file-io.js';
import { COLLECTIONS_QUERIES, COLLECTIONS_UPDATES, VocabularyReview } from '../../schemas/collections.js';
import { parseOrThrow } from '../../schemas/validation.js';
import { clientFor, globals, stackConfig } from '../context.js';

/**
 * `sluice collections …`: the operator's view of `collections-build` (docs/collections.md). `ls`, `show` and
 * `rollback` read the published collections (alias, build manifest, Iceberg table) directly and work while no build
 * runs; `vocabulary` and `review` talk to a running build: the `vocabulary` query and the `reviewVocabulary` update,
 * both by name.
 */

interface RootOption {
  root?: string;
}

/** The collections root: `--root`, else `<warehouse>/collections` of temporal-dev.yml's defaults (as the build). */
function collectionsRoot(opts: RootOption, cmd: Command): string {
  if (opts.root) return opts.root.replace(/\/+$/, '');
  const config = stackConfig(globals(cmd));
  return `${resolveWarehouseUri(config.defaults.warehouse, REPO_ROOT)}/collections`;
}

function openIo(): CompositeFileIO {
  return new CompositeFileIO({ file: { baseDir: REPO_ROOT }, s3: sluiceEnv.s3 });
}

function positiveInt(value: string, option: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${option} must be a positive integer, not "${value}"`);
  return n;
}

/** The lines `collections show` prints: the build, then the largest collections with their best members. */
export function formatPublishedCollections(
  manifest: Pick<CollectionsBuildManifest, 'version' | 'snapshotId' | 'table' | 'evaluation' | 'usage' | 'builtAt'>,
  collections: readonly PublishedCollection[],
  opts: { limit: number; items: number },
): string[] {
  const lines: string[] = [];
  const members = collections.reduce((n, c) => n + c.items.length, 0);
  const partial = collections.filter((c) => c.partial).length;
  lines.push(
    `version ${manifest.version}: ${collections.length} collections, ${members} members` +
      (partial ? `, ${partial} partial (VLM budget ran out)` : '') +
      `  [${manifest.table} @ snapshot ${manifest.snapshotId}, built ${manifest.builtAt}]`,
  );
  if (manifest.evaluation) {
    const e = manifest.evaluation;
    lines.push(
      `evaluation: P@10 ${e.precisionAt10.toFixed(4)}, R@10 ${e.recallAt10.toFixed(4)}, member recall ` +
        `${e.memberRecall.toFixed(4)} (${e.collectionsEvaluated} collections, ${e.queriesEvaluated} queries)`,
    );
  }
  if (manifest.usage) {
    lines.push(`VLM: ${manifest.usage.calls} calls, $${manifest.usage.costUsd.toFixed(4)}`);
  }
  const shown = [...collections]
    .sort((a, b) => b.items.length - a.items.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, opts.limit);
  for (const c of shown) {
    const verified = c.items.filter((m) => m.verified).length;
    lines.push(
      `${c.name}  (${c.id}) ${c.items.length} items, ${verified} VLM-verified${c.partial ? '  [partial]' : ''}`,
    );
    for (const m of c.items.slice(0, opts.items)) {
      lines.push(`    ${m.score.toFixed(4)}  ${m.itemId}${m.verified ? '  ✓vlm' : ''}`);
    }
    if (c.items.length > opts.items) lines.push(`    … ${c.items.length - opts.items} more`);
  }
  if (collections.length > shown.length) lines.push(`… ${collections.length - shown.length} more collections`);
  return lines;
}

/** What the `vocabulary` query returns, read loosely so the CLI prints whatever the running build reports. */
interface VocabularyViewLike {
  status?: string;
  proposal?: Partial<VocabularySummary>;
  approved?: Partial<VocabularySummary>;
  reviewedBy?: string;
  comment?: string;
  timeoutSeconds?: number;
  onTimeout?: string;
}

/** One vocabulary summary (`summariseVocabulary`'s shape: exact totals, capped lists). */
function formatSummary(title: string, s: Partial<VocabularySummary>): string[] {
  const lines = [`${title}: ${s.collectionCount ?? s.topCollections?.length ?? 0} collections`];
  for (const [key, n] of Object.entries(s.valueCounts ?? {})) lines.push(`  ${key}: ${n} values`);
  const merges = s.merges ?? [];
  for (const m of merges) {
    const more = (m.mergedCount ?? m.merged.length) - m.merged.length;
    lines.push(`  merged ${m.key}: ${m.canonical} ← ${m.merged.join(', ')}${more > 0 ? ` (+${more} more)` : ''}`);
  }
  if ((s.mergeCount ?? 0) > merges.length) lines.push(`  … ${s.mergeCount! - merges.length} more merges`);
  const top = s.topCollections ?? [];
  if (top.length) {
    lines.push('  collections (demand, support):');
    for (const c of top) lines.push(`    ${c.name.padEnd(32)} ${c.id}  demand ${c.demand}, support ${c.support}`);
    if ((s.collectionCount ?? 0) > top.length) lines.push(`    … ${s.collectionCount! - top.length} more`);
  }
  const byReason = Object.entries(s.droppedByReason ?? {});
  if (byReason.length) {
    lines.push(`  dropped: ${byReason.map(([r, n]) => `${n} ${r}`).join(', ')}`);
  }
  return lines;
}

/** The lines `collections vocabulary` prints for the `vocabulary` query's answer. */
export function formatVocabularyView(view: VocabularyViewLike): string[] {
  const lines = [`status: ${view.status ?? 'unknown'}`];
  if (view.reviewedBy) lines.push(`reviewed by ${view.reviewedBy}${view.comment ? `: ${view.comment}` : ''}`);
  if (view.status === 'awaiting-review' && view.timeoutSeconds !== undefined) {
    lines.push(
      view.timeoutSeconds === 0
        ? 'waits for a review without timeout'
        : `on no review within ${view.timeoutSeconds}s the run will ${view.onTimeout === 'approve' ? 'auto-approve' : 'fail'}`,
    );
  }
  if (view.proposal) lines.push(...formatSummary('proposal', view.proposal));
  if (view.approved) lines.push(...formatSummary('approved', view.approved));
  if (!view.proposal && !view.approved) lines.push('no vocabulary proposed yet');
  return lines;
}

/** Options of `collections review`. */
export interface ReviewOptions {
  approve?: boolean;
  reject?: boolean;
  /** Path of a JSON file `{ "remove": [ids], "add": [{ "attributes": {…}, "name"?: "…" }] }`. */
  edit?: string;
  by?: string;
  comment?: string;
}

/**
 * The `reviewVocabulary` payload from the command line, validated with the shared schema: exactly one of
 * `--approve`, `--reject` or `--edit <file.json>`.
 */
export function buildVocabularyReview(opts: ReviewOptions, editFileText?: string): VocabularyReview {
  const chosen = [opts.approve, opts.reject, opts.edit !== undefined].filter(Boolean).length;
  if (chosen !== 1) throw new Error('say exactly one of --approve, --reject or --edit <file.json>');
  const by = opts.by ?? process.env.USER ?? os.userInfo().username;
  if (!by) throw new Error('who is reviewing? pass --by <name> (or set $USER)');
  const base = { by, ...(opts.comment ? { comment: opts.comment } : {}) };
  if (opts.approve) return parseOrThrow(VocabularyReview, { action: 'approve', ...base }, 'vocabulary review');
  if (opts.reject) return parseOrThrow(VocabularyReview, { action: 'reject', ...base }, 'vocabulary review');
  let edit: unknown;
  try {
    edit = JSON.parse(editFileText ?? '');
  } catch (err) {
    throw new Error(`--edit ${opts.edit} is not JSON: ${(err as Error).message}`);
  }
  if (edit === null || typeof edit !== 'object' || Array.isArray(edit)) {
    throw new Error(`--edit ${opts.edit} must hold an object { "remove": [...], "add": [...] }`);
  }
  return parseOrThrow(VocabularyReview, { action: 'edit', ...base, ...edit }, `vocabulary edit ${opts.edit}`);
}

/** `sluice collections ls | show | rollback | vocabulary | review`. */
export function registerCollections(program: Command): void {
  const collections = program
    .command('collections')
    .description('collections built by collections-build: list, show, roll back, review the vocabulary');

  collections
    .command('ls')
    .description('list published collections with their current version and rollback history')
    .option('--root <uri>', 'collections root (default <warehouse>/collections)')
    .action(async (opts: RootOption, cmd: Command) => {
      const io = openIo();
      try {
        const aliases = await listCollectionAliases(io, collectionsRoot(opts, cmd));
        if (aliases.length === 0) console.log('no published collections');
        for (const a of aliases) {
          console.log(
            `${a.index}@current = ${a.version}  (generation ${a.generation}, ${a.reason} by ${a.by} at ${a.flippedAt})`,
          );
          if (a.previous.length) console.log(`  previous: ${a.previous.map((p) => p.version).join(', ')}`);
        }
      } finally {
        await io.close();
      }
    });

  collections
    .command('show')
    .description('show the collections of the current version, largest first, with their best items')
    .argument('<name>')
    .option('--limit <n>', 'collections to show', '20')
    .option('--items <m>', 'items per collection', '5')
    .option('--root <uri>', 'collections root (default <warehouse>/collections)')
    .action(async (name: string, opts: RootOption & { limit: string; items: string }, cmd: Command) => {
      const limit = positiveInt(opts.limit, '--limit');
      const items = positiveInt(opts.items, '--items');
      const config = stackConfig(globals(cmd));
      const warehouse = await openWarehouse(config.defaults, { baseDir: REPO_ROOT, s3: sluiceEnv.s3 });
      try {
        const root = opts.root ? opts.root.replace(/\/+$/, '') : `${warehouse.warehouse}/collections`;
        const published = await readPublishedCollections({
          catalog: warehouse.catalog,
          io: warehouse.io,
          root,
          name,
        });
        const a = published.alias;
        console.log(`${name}@current = ${a.version} (generation ${a.generation}, ${a.reason} at ${a.flippedAt})`);
        for (const line of formatPublishedCollections(published.manifest, published.collections, { limit, items })) {
          console.log(line);
        }
      } finally {
        await warehouse.close();
      }
    });

  collections
    .command('quarantine')
    .description(
      'list the records a build quarantined (stage, item, reason); replay them by rerunning the build: they are not in the extraction cache, so only they reach the VLM again',
    )
    .argument('<name>')
    .option('--version <v>', 'only this version (default: every version)')
    .option('--limit <n>', 'records to print', '50')
    .option('--root <uri>', 'collections root (default <warehouse>/collections)')
    .action(async (name: string, opts: RootOption & { version?: string; limit: string }, cmd: Command) => {
      const limit = positiveInt(opts.limit, '--limit');
      const io = openIo();
      try {
        const prefix = `${collectionsRoot(opts, cmd)}/${name}/runs/${opts.version ? `${opts.version}/` : ''}`;
        const records = await readQuarantine(io, prefix);
        const byReason = new Map<string, number>();
        for (const r of records)
          byReason.set(`${r.stage}/${r.reason}`, (byReason.get(`${r.stage}/${r.reason}`) ?? 0) + 1);
        console.log(
          `${records.length} quarantined under ${prefix}` +
            (byReason.size ? `: ${[...byReason].map(([k, n]) => `${k} ${n}`).join(', ')}` : ''),
        );
        for (const r of records.slice(0, limit)) {
          console.log(
            `  ${r.at}  ${r.stage.padEnd(7)} ${r.itemId}  ${r.reason}${r.collectionId ? ` (${r.collectionId})` : ''}: ${r.message}`,
          );
        }
        if (records.length > limit) console.log(`  … ${records.length - limit} more (--limit)`);
      } finally {
        await io.close();
      }
    });

  collections
    .command('rollback')
    .description('point <name>@current back at its previous version')
    .argument('<name>')
    .option('--root <uri>', 'collections root (default <warehouse>/collections)')
    .action(async (name: string, opts: RootOption, cmd: Command) => {
      const io = openIo();
      try {
        const root = collectionsRoot(opts, cmd);
        const record = await rollbackAlias(io, root, name, { by: 'cli' }).catch((err: unknown) => {
          if (err instanceof EmbeddingError && err.kind === 'not-found') {
            throw new Error(`collections ${name} cannot be rolled back under ${root}: ${err.message}`);
          }
          throw err;
        });
        console.log(`${name}@current = ${record.version} (generation ${record.generation}, rolled back)`);
      } finally {
        await io.close();
      }
    });

  collections
    .command('vocabulary')
    .description('print the vocabulary a running build proposes (and its review status)')
    .argument('<workflowId>', 'the build, collections-build/<name>/<version>')
    .option('--json', 'print the raw query answer')
    .action(async (workflowId: string, opts: { json?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      const { client, connection } = await clientFor(g, stackConfig(g));
      try {
        const view = await client.workflow
          .getHandle(workflowId)
          .query<VocabularyViewLike>(COLLECTIONS_QUERIES.vocabulary);
        if (opts.json) console.log(JSON.stringify(view, null, 2));
        else for (const line of formatVocabularyView(view)) console.log(line);
      } finally {
        await connection.close();
      }
    });

  collections
    .command('review')
    .description('approve, edit or reject the proposed vocabulary of a running build')
    .argument('<workflowId>', 'the build, collections-build/<name>/<version>')
    .option('--approve', 'approve the proposal as it is')
    .option('--reject', 'reject it: the build fails without publishing')
    .option(
      '--edit <file.json>',
      'apply edits: { "remove": [collection ids], "add": [{ "attributes": {…}, "name": "…" }] }',
    )
    .option('--by <name>', 'who reviews (default $USER)')
    .option('--comment <text>', 'a note kept with the decision')
    .action(async (workflowId: string, opts: ReviewOptions, cmd: Command) => {
      const editText = opts.edit !== undefined ? await readFile(opts.edit, 'utf8') : undefined;
      const review = buildVocabularyReview(opts, editText);
      const g = globals(cmd);
      const { client, connection } = await clientFor(g, stackConfig(g));
      try {
        const result = await client.workflow
          .getHandle(workflowId)
          .executeUpdate<VocabularyViewLike, [VocabularyReview]>(COLLECTIONS_UPDATES.reviewVocabulary, {
            args: [review],
          })
          .catch((err: unknown) => {
            if (err instanceof WorkflowUpdateFailedError) {
              throw new Error(`the review was refused: ${err.cause?.message ?? err.message}`);
            }
            if (err instanceof WorkflowNotFoundError || /already completed/i.test(String((err as Error)?.message))) {
              throw new Error(`${workflowId} is not running (finished, or never started): nothing to review`);
            }
            throw err;
          });
        console.log(`${review.action} sent by ${review.by} to ${workflowId}`);
        for (const line of formatVocabularyView(result)) console.log(line);
      } finally {
        await connection.close();
      }
    });
}
