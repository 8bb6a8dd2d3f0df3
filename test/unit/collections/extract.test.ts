import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CollectionsError } from '../../../lib/collections/errors.js';
import { contentHash, extractWithVlm, imageMimeType } from '../../../lib/collections/extract.js';
import {
  ensureExtractionTable,
  lookupExtractions,
  storeExtractions,
} from '../../../lib/collections/extraction-cache.js';
import { appendQuarantine, readQuarantine } from '../../../lib/collections/quarantine-store.js';
import type { CatalogRow, CollectionsQuarantineRecord, ExtractionRecord } from '../../../lib/collections/types.js';
import { VlmClient, type VlmClientOptions } from '../../../lib/collections/vlm-client.js';
import { startVlmStandIn, type VlmStandIn, type VlmStandInOptions } from '../../../lib/collections/vlm-stand-in.js';
import { scanTable } from '../../../lib/iceberg/scan.js';
import { ATTRIBUTE_WORDS } from '../../../lib/inference/synthetic-catalog.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';
import { syntheticImages, type SyntheticImages } from './vlm-fixtures.js';

const KEYS = ['color', 'shape', 'pattern', 'size'];
const TABLE = 'db.vlm_extractions';

describe('VLM extraction with the Iceberg extraction cache (stand-in over HTTP, SQLite catalog)', () => {
  let data: SyntheticImages;
  let t: TempCatalog;
  let standIn: VlmStandIn | undefined;
  beforeAll(async () => {
    data = await syntheticImages(12);
    t = await createTempCatalog('sluice-vlm-extract-');
  });
  afterAll(() => t.cleanup());
  afterEach(async () => {
    await standIn?.close();
    standIn = undefined;
  });

  async function start(opts: Partial<VlmStandInOptions> = {}): Promise<VlmStandIn> {
    standIn = await startVlmStandIn({ truth: data.lookup, ...opts });
    return standIn;
  }
  function client(s: VlmStandIn, opts: Partial<VlmClientOptions> = {}): VlmClient {
    return new VlmClient({ url: s.url, model: 'stand-in', backoffMs: 2, concurrency: 4, ...opts });
  }
  const readImage = async (uri: string): Promise<Uint8Array> => {
    const bytes = data.images.get(uri);
    if (!bytes) throw new Error(`no such object ${uri}`);
    return bytes;
  };
  function run(c: VlmClient, extra: Partial<Parameters<typeof extractWithVlm>[0]> = {}) {
    return extractWithVlm({ client: c, items: data.rows, readImage, keys: KEYS, promptVersion: 'p1', ...extra });
  }
  function expectTruth(records: ExtractionRecord[]): void {
    for (const r of records) expect(r.attributes).toEqual(data.attributesOf.get(r.itemId));
  }

  it('extracts the ground truth, caches it in Iceberg, and answers a rerun from the cache with zero calls', async () => {
    const s = await start();
    const c = client(s, { pricePer1kTokens: 0.01 });
    const progress: number[] = [];
    const table = 'db.cache_e2e';
    const first = await run(c, {
      storeNew: async (records) => void (await storeExtractions(t.catalog, t.io, table, records)),
      storeEvery: 5,
      onProgress: (done) => progress.push(done),
    });
    expect(first.records).toHaveLength(12);
    expect(first.records.map((r) => r.itemId)).toEqual(data.rows.map((r) => r.itemId));
    expectTruth(first.records);
    expect(first.quarantined).toEqual([]);
    expect(first.newRecords).toHaveLength(12);
    expect(first.cacheHits).toBe(0);
    expect(first.budgetExhausted).toBe(false);
    expect(first.usage.calls).toBe(12);
    expect(first.usage.costUsd).toBeCloseTo(
      first.records.reduce((n, r) => n + r.costUsd, 0),
      12,
    );
    expect(progress).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    for (const r of first.records) {
      expect(r).toMatchObject({ promptVersion: 'p1', model: 'stand-in' });
      const row = data.rows.find((x) => x.itemId === r.itemId)!;
      expect(r.contentHash).toBe(contentHash(data.images.get(row.imageUri)!, row.title, row.description));
    }

    // Storing the same batch again (a retried activity) replaces rows instead of duplicating them.
    await storeExtractions(t.catalog, t.io, table, first.newRecords);
    const { metadata } = await t.catalog.loadTable(table);
    let rows = 0;
    for await (const b of scanTable(t.io, metadata)) rows += b.rowCount;
    expect(rows).toBe(12);

    const keys = first.records.map((r) => ({ contentHash: r.contentHash, promptVersion: 'p1', model: 'stand-in' }));
    const cached = await lookupExtractions(t.catalog, t.io, table, keys);
    expect(cached.size).toBe(12);
    const original = first.records[3]!;
    expect(cached.get(original.contentHash)).toEqual(original);
    // Another prompt version or model is another key.
    expect(
      (
        await lookupExtractions(
          t.catalog,
          t.io,
          table,
          keys.map((k) => ({ ...k, promptVersion: 'p2' })),
        )
      ).size,
    ).toBe(0);

    const before = s.stats().requests;
    const second = await run(c, { cached });
    expect(s.stats().requests).toBe(before);
    expect(second.usage.calls).toBe(0);
    expect(second.cacheHits).toBe(12);
    expect(second.newRecords).toEqual([]);
    expect(second.records).toEqual(first.records);
  });

  it('repairs a malformed reply with exactly one repair request', async () => {
    const s = await start({ malformedRate: 1 });
    const out = await run(client(s));
    expectTruth(out.records);
    expect(out.records).toHaveLength(12);
    expect(out.quarantined).toEqual([]);
    expect(out.usage.calls).toBe(24);
    expect(s.stats().byKind).toEqual({ extract: 12, repair: 12 });
    // The repair's cost is part of the record's cost.
    expect(out.records.reduce((n, r) => n + r.promptTokens + r.completionTokens, 0)).toBe(
      s.stats().promptTokens + s.stats().completionTokens,
    );
  });

  it('repairs a schema-invalid reply too', async () => {
    const s = await start({ schemaInvalidRate: 1 });
    const out = await run(client(s));
    expectTruth(out.records);
    expect(out.records).toHaveLength(12);
    expect(s.stats().byOutcome['schema-invalid']).toBe(12);
  });

  it('quarantines an item whose repair is malformed too, keeping the raw reply', async () => {
    const s = await start({ malformedRate: 1, repairMalformedRate: 1 });
    const out = await run(client(s));
    expect(out.records).toEqual([]);
    expect(out.quarantined).toHaveLength(12);
    expect(out.usage.calls).toBe(24);
    for (const q of out.quarantined) {
      expect(q).toMatchObject({ stage: 'extract', reason: 'malformed-json' });
      expect(q.raw).toMatch(/^Sure!/);
      expect(q.raw!.length).toBeLessThanOrEqual(2000);
    }
  });

  it('quarantines refusals and rejected images, and goes on with the rest', async () => {
    const rejected = data.shaOf.get(data.rows[2]!.itemId)!;
    const s = await start({ refusalRate: 0.3, rejectImages: new Set([rejected]) });
    const out = await run(client(s));
    const byReason = (reason: string) => out.quarantined.filter((q) => q.reason === reason);
    expect(byReason('client-error').map((q) => q.itemId)).toEqual([data.rows[2]!.itemId]);
    expect(byReason('refusal').length).toBe(s.stats().byOutcome.refusal);
    expect(byReason('refusal').length).toBeGreaterThan(0);
    expect(out.records.length + out.quarantined.length).toBe(12);
    expect(out.records.length).toBeGreaterThan(0);
    expectTruth(out.records);
  });

  it('quarantines unreadable images and unusable rows without calling the VLM', async () => {
    const s = await start();
    const items: CatalogRow[] = [
      data.rows[0]!,
      { ...data.rows[1]!, imageUri: 'mem://missing.png' },
      { ...data.rows[2]!, itemId: 'not-an-image', imageUri: 'mem://text' },
      { ...data.rows[3]!, itemId: '' },
    ];
    const out = await extractWithVlm({
      client: client(s),
      items,
      readImage: async (uri) => (uri === 'mem://text' ? new TextEncoder().encode('hello') : readImage(uri)),
      keys: KEYS,
      promptVersion: 'p1',
    });
    expect(out.records.map((r) => r.itemId)).toEqual([data.rows[0]!.itemId]);
    expect(out.quarantined.map((q) => [q.itemId, q.reason])).toEqual([
      [data.rows[1]!.itemId, 'unreadable-image'],
      ['not-an-image', 'unreadable-image'],
      ['', 'invalid-record'],
    ]);
    expect(s.stats().requests).toBe(1);
  });

  it('stops cleanly at the call budget and says so', async () => {
    const s = await start();
    const out = await run(client(s, { concurrency: 3 }), { budget: { maxCalls: 5 } });
    expect(s.stats().requests).toBe(5);
    expect(out.usage.calls).toBe(5);
    expect(out.records).toHaveLength(5);
    expectTruth(out.records);
    expect(out.budgetExhausted).toBe(true);
    expect(out.unprocessed).toHaveLength(7);
    expect(new Set([...out.records.map((r) => r.itemId), ...out.unprocessed])).toEqual(
      new Set(data.rows.map((r) => r.itemId)),
    );
  });

  it('stops at the cost budget, estimating from the replies seen so far', async () => {
    const s = await start();
    const price = 1; // USD per 1k tokens
    const probe = await run(client(s, { pricePer1kTokens: price }), { items: data.rows.slice(0, 1) });
    const perItem = probe.usage.costUsd;
    expect(perItem).toBeGreaterThan(0);
    const s2 = await startVlmStandIn({ truth: data.lookup });
    try {
      const c = new VlmClient({ url: s2.url, model: 'stand-in', concurrency: 1, pricePer1kTokens: price });
      const out = await run(c, { budget: { maxCostUsd: perItem * 4.5 } });
      expect(out.budgetExhausted).toBe(true);
      expect(out.usage.costUsd).toBeLessThanOrEqual(perItem * 4.5);
      expect(out.records.length).toBeGreaterThanOrEqual(3);
      expect(out.records.length).toBeLessThanOrEqual(4);
      expect(s2.stats().requests).toBe(out.usage.calls);
    } finally {
      await s2.close();
    }
  });

  it('propagates vlm-unavailable after retries, storing the answers it had first', async () => {
    const s = await start({ serverErrorRate: 0.4 });
    const stored: ExtractionRecord[] = [];
    const err = await run(client(s, { concurrency: 1, maxAttempts: 1 }), {
      storeNew: async (records) => void stored.push(...records),
      storeEvery: 100,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CollectionsError);
    expect((err as CollectionsError).kind).toBe('vlm-unavailable');
    expect(stored.length).toBe(s.stats().byOutcome.ok ?? 0);
    expectTruth(stored);
  });

  it('answers synonyms and wrong values when the stand-in is told to, deterministically', async () => {
    const s = await start({ synonymRate: 1 });
    const out = await run(client(s));
    for (const r of out.records) {
      const truth = data.attributesOf.get(r.itemId)!;
      for (const k of KEYS) {
        expect(r.attributes[k]).not.toBe(truth[k]);
        expect(ATTRIBUTE_WORDS[truth[k]!]).toContain(r.attributes[k]);
      }
    }
    await s.close();
    standIn = undefined;
    const wrong1 = await startVlmStandIn({ truth: data.lookup, wrongRate: 0.5, seed: 7 });
    const wrong2 = await startVlmStandIn({ truth: data.lookup, wrongRate: 0.5, seed: 7 });
    try {
      const a = await run(client(wrong1));
      const b = await run(client(wrong2, { concurrency: 1 }));
      expect(a.records.map((r) => r.attributes)).toEqual(b.records.map((r) => r.attributes));
      const wrongItems = a.records.filter(
        (r) => JSON.stringify(r.attributes) !== JSON.stringify(data.attributesOf.get(r.itemId)),
      );
      expect(wrongItems.length).toBe(wrong1.stats().byOutcome.wrong);
      expect(wrongItems.length).toBeGreaterThan(0);
      for (const r of wrongItems) {
        const truth = data.attributesOf.get(r.itemId)!;
        expect(KEYS.filter((k) => r.attributes[k] !== truth[k])).toHaveLength(1);
      }
    } finally {
      await wrong1.close();
      await wrong2.close();
    }
  });

  it('pays once for items with identical content', async () => {
    const s = await start();
    const twin = { ...data.rows[0]!, itemId: 'twin-of-0' };
    const out = await run(client(s), { items: [data.rows[0]!, twin, data.rows[1]!] });
    expect(s.stats().requests).toBe(2);
    expect(out.cacheHits).toBe(1);
    expect(out.records.map((r) => r.itemId)).toEqual([data.rows[0]!.itemId, 'twin-of-0', data.rows[1]!.itemId]);
    expect(out.records[1]!.attributes).toEqual(out.records[0]!.attributes);
    expect(out.newRecords).toHaveLength(2);
  });

  it('refuses a table that is not an extraction cache', async () => {
    await t.catalog.createTable('db.not_a_cache', {
      schema: {
        schemaId: 0,
        identifierFieldIds: [],
        fields: [{ id: 1, name: 'x', required: false, type: { kind: 'string' } }],
      },
    });
    await expect(ensureExtractionTable(t.catalog, 'db.not_a_cache')).rejects.toThrow(/is not an extraction cache/);
    await ensureExtractionTable(t.catalog, TABLE);
    await ensureExtractionTable(t.catalog, TABLE);
    expect(await t.catalog.tableExists(TABLE)).toBe(true);
  });
});

describe('content hash, image type and the quarantine store', () => {
  it('hashes image bytes, title and description with NUL separators', () => {
    const img = new Uint8Array([1, 2, 3]);
    expect(contentHash(img, 'a', 'b')).toMatch(/^[0-9a-f]{64}$/);
    expect(contentHash(img, 'a', 'b')).toBe(contentHash(new Uint8Array([1, 2, 3]), 'a', 'b'));
    expect(contentHash(img, 'a', 'b')).not.toBe(contentHash(img, 'ab', ''));
    expect(contentHash(img, 'a', 'b')).not.toBe(contentHash(new Uint8Array([1, 2, 4]), 'a', 'b'));
  });

  it('detects PNG, JPEG, WebP and GIF from their magic bytes', () => {
    expect(imageMimeType(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d]))).toBe('image/png');
    expect(imageMimeType(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))).toBe('image/jpeg');
    expect(imageMimeType(new TextEncoder().encode('RIFF\u0000\u0000\u0000\u0000WEBPVP8 '))).toBe('image/webp');
    expect(imageMimeType(new TextEncoder().encode('GIF89a'))).toBe('image/gif');
    expect(imageMimeType(new TextEncoder().encode('hello world'))).toBeUndefined();
  });

  it('appends part files that never clash and reads them back', async () => {
    const t = await createTempCatalog('sluice-vlm-quarantine-');
    try {
      const prefix = `file://${t.dir}/run/quarantine/extract`;
      const rec = (itemId: string): CollectionsQuarantineRecord => ({
        stage: 'extract',
        itemId,
        reason: 'refusal',
        message: 'refused',
        at: '2026-11-26T00:00:00.000Z',
      });
      expect(await appendQuarantine(t.io, prefix, [])).toBeUndefined();
      const [a, b] = await Promise.all([
        appendQuarantine(t.io, prefix, [rec('a'), rec('b')]),
        appendQuarantine(t.io, prefix, [rec('c')]),
      ]);
      expect(a).not.toBe(b);
      // A stable part name makes a retried append a no-op.
      await appendQuarantine(t.io, prefix, [rec('d')], { partName: 'act-1' });
      await appendQuarantine(t.io, prefix, [rec('d')], { partName: 'act-1' });
      const all = await readQuarantine(t.io, prefix);
      expect(all.map((r) => r.itemId).sort()).toEqual(['a', 'b', 'c', 'd']);
      await t.io.write(`${prefix}/part-zz.jsonl`, 'not json\n');
      await expect(readQuarantine(t.io, prefix)).rejects.toThrow(/line 1 cannot be read/);
    } finally {
      t.cleanup();
    }
  });
});
