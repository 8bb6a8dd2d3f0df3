/**
 * The extraction cache: an Iceberg table of VLM (or zero-shot) answers keyed by (content_hash, prompt_version,
 * model), so that a rerun, or a retried activity, never pays twice for the same item, prompt and model. Rows are
 * upserted by that key (position deletes + inserts, one snapshot per call), so a retried batch replaces its rows
 * instead of duplicating them. `item_id` is informational: items with identical content share one row.
 */
import { loadOrCreateTable } from '../iceberg/catalog/load-or-create.js';
import type { SqlCatalog } from '../iceberg/catalog/sql-catalog.js';
import { and, eq, isIn, type Expression } from '../iceberg/expressions.js';
import { currentSchema, type TableMetadata } from '../iceberg/metadata-json.js';
import { scanTable } from '../iceberg/scan.js';
import type { Schema } from '../iceberg/types.js';
import { upsertRows } from '../iceberg/upsert.js';
import { timestamptzFromIso } from '../iceberg/values.js';
import type { FileIO } from '../storage/file-io.js';
import { CollectionsError } from './errors.js';
import type { Attributes, ExtractionRecord } from './types.js';

/** The schema of an extraction cache table; (content_hash, prompt_version, model) is its primary key. */
export const EXTRACTION_SCHEMA: Schema = {
  schemaId: 0,
  identifierFieldIds: [1, 2, 3],
  fields: [
    { id: 1, name: 'content_hash', required: true, type: { kind: 'string' } },
    { id: 2, name: 'prompt_version', required: true, type: { kind: 'string' } },
    { id: 3, name: 'model', required: true, type: { kind: 'string' } },
    { id: 4, name: 'item_id', required: true, type: { kind: 'string' } },
    { id: 5, name: 'attributes', required: true, type: { kind: 'string' } },
    { id: 6, name: 'prompt_tokens', required: true, type: { kind: 'long' } },
    { id: 7, name: 'completion_tokens', required: true, type: { kind: 'long' } },
    { id: 8, name: 'cost_usd', required: true, type: { kind: 'double' } },
    { id: 9, name: 'extracted_at', required: true, type: { kind: 'timestamptz' } },
  ],
};

/** Above this many hashes a lookup filters on prompt version and model only, and picks the hashes in memory. */
const MAX_IN_FILTER = 2000;

/** Loads the extraction table, creating it (and its namespace) when missing; checks its columns and key otherwise. */
export async function ensureExtractionTable(catalog: SqlCatalog, table: string): Promise<TableMetadata> {
  if (!table.includes('.')) {
    throw new CollectionsError('invalid-option', `extraction table "${table}" needs a namespace, e.g. db.${table}`);
  }
  const metadata = await loadOrCreateTable(catalog, table, { schema: EXTRACTION_SCHEMA });
  const schema = currentSchema(metadata);
  const idOf = new Map(schema.fields.map((f) => [f.name, f.id]));
  const missing = EXTRACTION_SCHEMA.fields.filter((f) => !idOf.has(f.name)).map((f) => f.name);
  const keyNames = schema.identifierFieldIds.map((id) => schema.fields.find((f) => f.id === id)?.name).sort();
  if (missing.length > 0 || keyNames.join(',') !== 'content_hash,model,prompt_version') {
    throw new CollectionsError(
      'invalid-option',
      `table ${table} is not an extraction cache: it needs the columns ` +
        `${EXTRACTION_SCHEMA.fields.map((f) => f.name).join(', ')} with the key (content_hash, prompt_version, model)` +
        (missing.length > 0 ? `; missing: ${missing.join(', ')}` : `; its key is (${keyNames.join(', ')})`) +
        '; name another table in output.extractionTable',
    );
  }
  return metadata;
}

/** One cache key. */
export interface ExtractionKey {
  contentHash: string;
  promptVersion: string;
  model: string;
}

function microsToIso(micros: bigint): string {
  return new Date(Number(micros / 1000n)).toISOString();
}

/**
 * The cached answers for the given keys, by content hash (what `extractWithVlm` takes as `cached`). The keys must
 * share one prompt version and model (one run's); the scan filters on those and on the hashes.
 * @throws CollectionsError `invalid-option` when the keys mix prompt versions or models; `corrupt-file` when a
 *   cached `attributes` value is not a JSON object of strings.
 */
export async function lookupExtractions(
  catalog: SqlCatalog,
  io: FileIO,
  table: string,
  keys: readonly ExtractionKey[],
): Promise<Map<string, ExtractionRecord>> {
  const out = new Map<string, ExtractionRecord>();
  if (keys.length === 0) return out;
  const lookup = { promptVersion: keys[0]!.promptVersion, model: keys[0]!.model };
  if (keys.some((k) => k.promptVersion !== lookup.promptVersion || k.model !== lookup.model)) {
    throw new CollectionsError(
      'invalid-option',
      'lookupExtractions keys mix prompt versions or models; look each (prompt version, model) up separately',
    );
  }
  const wanted = new Set(keys.map((k) => k.contentHash));
  const metadata = await ensureExtractionTable(catalog, table);
  const schema = currentSchema(metadata);
  const id = (name: string): number => schema.fields.find((f) => f.name === name)!.id;
  let filter: Expression = and(eq('prompt_version', lookup.promptVersion), eq('model', lookup.model));
  if (wanted.size <= MAX_IN_FILTER) filter = and(filter, isIn('content_hash', [...wanted]));
  for await (const batch of scanTable(io, metadata, { filter })) {
    const col = (name: string): unknown[] => batch.columns.get(id(name))!;
    const [hash, pv, model, item, attrs, pt, ct, cost, at] = [
      'content_hash',
      'prompt_version',
      'model',
      'item_id',
      'attributes',
      'prompt_tokens',
      'completion_tokens',
      'cost_usd',
      'extracted_at',
    ].map(col) as [string[], string[], string[], string[], string[], bigint[], bigint[], number[], bigint[]];
    for (let r = 0; r < batch.rowCount; r++) {
      const contentHash = hash[r]!;
      if (!wanted.has(contentHash)) continue;
      let attributes: Attributes;
      try {
        const parsed = JSON.parse(attrs[r]!) as unknown;
        if (
          typeof parsed !== 'object' ||
          parsed === null ||
          Array.isArray(parsed) ||
          !Object.values(parsed).every((v) => typeof v === 'string')
        ) {
          throw new Error('not an object of strings');
        }
        attributes = parsed as Attributes;
      } catch (err) {
        throw new CollectionsError(
          'corrupt-file',
          `extraction table ${table} row ${contentHash} (prompt ${pv[r]}, model ${model[r]}) has unusable ` +
            `attributes ${JSON.stringify(attrs[r]).slice(0, 200)}: ${(err as Error).message}; delete the row to re-extract`,
        );
      }
      out.set(contentHash, {
        itemId: item[r]!,
        contentHash,
        promptVersion: pv[r]!,
        model: model[r]!,
        attributes,
        promptTokens: Number(pt[r]!),
        completionTokens: Number(ct[r]!),
        costUsd: cost[r]!,
        extractedAt: microsToIso(at[r]!),
      });
    }
  }
  return out;
}

/**
 * Upserts answers by (content_hash, prompt_version, model) in one snapshot; a record repeated in the batch keeps
 * its last occurrence. Returns the number of rows written (0 writes nothing).
 */
export async function storeExtractions(
  catalog: SqlCatalog,
  io: FileIO,
  table: string,
  records: readonly ExtractionRecord[],
): Promise<number> {
  if (records.length === 0) return 0;
  const metadata = await ensureExtractionTable(catalog, table);
  const schema = currentSchema(metadata);
  const byKey = new Map<string, ExtractionRecord>();
  for (const r of records) byKey.set(`${r.contentHash}\u0000${r.promptVersion}\u0000${r.model}`, r);
  const rows = [...byKey.values()];
  const column = (name: string, values: unknown[]): [number, unknown[]] => [
    schema.fields.find((f) => f.name === name)!.id,
    values,
  ];
  await upsertRows(catalog, io, table, {
    columns: new Map([
      column(
        'content_hash',
        rows.map((r) => r.contentHash),
      ),
      column(
        'prompt_version',
        rows.map((r) => r.promptVersion),
      ),
      column(
        'model',
        rows.map((r) => r.model),
      ),
      column(
        'item_id',
        rows.map((r) => r.itemId),
      ),
      column(
        'attributes',
        rows.map((r) => JSON.stringify(r.attributes)),
      ),
      column(
        'prompt_tokens',
        rows.map((r) => BigInt(Math.round(r.promptTokens))),
      ),
      column(
        'completion_tokens',
        rows.map((r) => BigInt(Math.round(r.completionTokens))),
      ),
      column(
        'cost_usd',
        rows.map((r) => r.costUsd),
      ),
      column(
        'extracted_at',
        rows.map((r) => timestamptzFromIso(r.extractedAt)),
      ),
    ]),
    ops: rows.map(() => 'upsert' as const),
    snapshotProperties: { 'sluice.collections.extractions': String(rows.length) },
  });
  return rows.length;
}
