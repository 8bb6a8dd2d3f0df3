import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectionsError } from '../../../lib/collections/errors.js';
import {
  generateSyntheticCatalog,
  readEvaluationSet,
  readTruth,
  sha256Hex,
  SYNTHETIC_ATTRIBUTE_KEYS,
  SYNTHETIC_ATTRIBUTE_VALUES,
  type SyntheticCatalog,
} from '../../../lib/collections/synthetic.js';
import { scanTable } from '../../../lib/iceberg/scan.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';

const ITEMS = 300;

async function readTable(t: TempCatalog, table: string): Promise<Record<string, unknown>[]> {
  const { metadata } = await t.catalog.loadTable(table);
  const schema = metadata.schemas.find((s) => s.schemaId === metadata.currentSchemaId)!;
  const rows: Record<string, unknown>[] = [];
  for await (const batch of scanTable(t.io, metadata)) {
    for (let i = 0; i < batch.rowCount; i++)
      rows.push(Object.fromEntries(schema.fields.map((f) => [f.name, batch.columns.get(f.id)![i]])));
  }
  return rows;
}

describe('synthetic catalog (SQLite catalog, file:// warehouse)', () => {
  let t: TempCatalog;
  let gen: SyntheticCatalog;
  const uris = (t: TempCatalog, tag: string) => ({
    imagePrefix: `file://${t.dir}/images-${tag}`,
    evalUri: `file://${t.dir}/${tag}-eval.json`,
    truthUri: `file://${t.dir}/${tag}-truth.json`,
  });

  beforeAll(async () => {
    t = await createTempCatalog('sluice-synthetic-');
    gen = await generateSyntheticCatalog({
      catalog: t.catalog,
      io: t.io,
      table: 'db.catalog',
      items: ITEMS,
      seed: 7,
      demandTable: 'db.demand',
      ...uris(t, 'a'),
    });
  }, 60_000);
  afterAll(() => t?.cleanup());

  it('writes a catalog table that scanTable reads back, row for row', async () => {
    const rows = await readTable(t, 'db.catalog');
    expect(rows).toHaveLength(ITEMS);
    expect(rows.map((r) => r.item_id)).toEqual(gen.rows.map((r) => r.itemId));
    for (const [i, r] of rows.entries()) {
      const want = gen.rows[i]!;
      expect(r).toEqual({
        item_id: want.itemId,
        image_uri: want.imageUri,
        title: want.title,
        description: want.description,
        category: gen.truth.get(want.itemId)!.shape,
      });
      expect(typeof r.title === 'string' && r.title.length > 0).toBe(true);
    }
  });

  it('writes every image, and the truth knows each image by the sha256 of its bytes', async () => {
    const hashes = new Set<string>();
    for (const row of gen.rows) {
      const bytes = readFileSync(fileURLToPath(row.imageUri));
      expect([...bytes.subarray(1, 4)].map((b) => String.fromCharCode(b)).join('')).toBe('PNG');
      const hash = sha256Hex(bytes);
      hashes.add(hash);
      expect(gen.truthByImageHash.get(hash)).toEqual(gen.truth.get(row.itemId));
    }
    expect(hashes.size).toBe(ITEMS); // every image's bytes differ
    const fromFile = await readTruth(t.io, gen.truthUri);
    expect(fromFile.truth).toEqual(gen.truth);
    expect(fromFile.truthByImageHash).toEqual(gen.truthByImageHash);
  });

  it('draws every value of every key, with skewed but not degenerate frequencies', () => {
    for (const key of SYNTHETIC_ATTRIBUTE_KEYS) {
      const counts = new Map<string, number>();
      for (const a of gen.truth.values()) counts.set(a[key]!, (counts.get(a[key]!) ?? 0) + 1);
      expect([...counts.keys()].sort()).toEqual([...SYNTHETIC_ATTRIBUTE_VALUES[key]].sort());
      const shares = [...counts.values()].map((c) => c / ITEMS);
      expect(Math.min(...shares)).toBeGreaterThan(0.02);
    }
  });

  it('titles are noisy: synonyms, omissions or extra words appear, and the plain form does too', () => {
    const plain = gen.rows.filter((r) => {
      const a = gen.truth.get(r.itemId)!;
      return r.title === `${a.size} ${a.color} ${a.pattern} ${a.shape} ${r.title.split(' ').at(-1)}`;
    }).length;
    expect(plain).toBeGreaterThan(0);
    expect(plain).toBeLessThan(ITEMS * 0.8);
  });

  it('writes an evaluation set consistent with the truth', async () => {
    const set = await readEvaluationSet(t.io, gen.evalUri);
    expect(set.labelledItems).toHaveLength(Math.round(ITEMS * 0.1));
    const labelled = new Set(set.labelledItems);
    for (const id of labelled) expect(gen.truth.has(id)).toBe(true);
    const names = new Set<string>();
    for (const q of set.queries) {
      const n = Object.keys(q.attributes).length;
      expect(n === 1 || n === 2).toBe(true);
      names.add(q.name);
      const want = set.labelledItems.filter((id) =>
        Object.entries(q.attributes).every(([k, v]) => gen.truth.get(id)![k] === v),
      );
      expect(q.relevant.sort()).toEqual(want.sort());
      expect(want.length).toBeGreaterThan(0);
    }
    expect(names.size).toBe(set.queries.length);
    // Every single value and pair carried by a labelled item is a query.
    const combos = new Set<string>();
    for (const id of labelled) {
      const a = gen.truth.get(id)!;
      for (const k of SYNTHETIC_ATTRIBUTE_KEYS) {
        combos.add(a[k]!);
        for (const j of SYNTHETIC_ATTRIBUTE_KEYS.slice(SYNTHETIC_ATTRIBUTE_KEYS.indexOf(k) + 1))
          combos.add(`${a[k]} ${a[j]}`);
      }
    }
    expect(names).toEqual(combos);
    expect(
      names.has(`${gen.truth.get(set.labelledItems[0]!)!.color} ${gen.truth.get(set.labelledItems[0]!)!.shape}`),
    ).toBe(true);
  });

  it('writes a demand table of queries with Zipf-like counts', async () => {
    const rows = await readTable(t, 'db.demand');
    expect(rows.length).toBeGreaterThan(50);
    const counts = rows.map((r) => Number(r.count as bigint));
    expect(counts[0]).toBeGreaterThan(counts.at(-1)! * 20);
    expect(new Set(rows.map((r) => r.query)).size).toBe(rows.length);
  });

  it('is deterministic for a seed, and another seed gives another catalog; it overwrites the table', async () => {
    const again = await generateSyntheticCatalog({
      catalog: t.catalog,
      io: t.io,
      table: 'db.catalog2',
      items: ITEMS,
      seed: 7,
      ...uris(t, 'b'),
    });
    expect(again.rows.map(({ imageUri: _, ...r }) => r)).toEqual(gen.rows.map(({ imageUri: _, ...r }) => r));
    expect([...again.truthByImageHash.keys()]).toEqual([...gen.truthByImageHash.keys()]);
    expect(readFileSync(fileURLToPath(`file://${t.dir}/b-eval.json`), 'utf8')).toBe(
      readFileSync(fileURLToPath(gen.evalUri), 'utf8'),
    );
    const other = await generateSyntheticCatalog({
      catalog: t.catalog,
      io: t.io,
      table: 'db.catalog2',
      items: 50,
      seed: 8,
      ...uris(t, 'c'),
    });
    expect(other.rows.map((r) => r.title)).not.toEqual(gen.rows.slice(0, 50).map((r) => r.title));
    expect(await readTable(t, 'db.catalog2')).toHaveLength(50);
  });

  it('refuses a missing file with not-found, and a bad item count with invalid-option', async () => {
    await expect(readTruth(t.io, `file://${t.dir}/missing.json`)).rejects.toMatchObject({ kind: 'not-found' });
    await expect(
      generateSyntheticCatalog({ catalog: t.catalog, io: t.io, table: 'db.x', items: 0, seed: 1, ...uris(t, 'x') }),
    ).rejects.toMatchObject({ kind: 'invalid-option' });
  });

  it('refuses a corrupt truth or evaluation file with corrupt-file', async () => {
    await t.io.write(`file://${t.dir}/bad.json`, '{"byItem": 3}');
    await expect(readTruth(t.io, `file://${t.dir}/bad.json`)).rejects.toMatchObject({ kind: 'corrupt-file' });
    await t.io.write(`file://${t.dir}/bad2.json`, 'not json');
    await expect(readEvaluationSet(t.io, `file://${t.dir}/bad2.json`)).rejects.toBeInstanceOf(CollectionsError);
    await t.io.write(
      `file://${t.dir}/bad3.json`,
      JSON.stringify({
        labelledItems: ['a'],
        queries: [{ name: 'red', attributes: { color: 'red' }, relevant: ['b'] }],
      }),
    );
    await expect(readEvaluationSet(t.io, `file://${t.dir}/bad3.json`)).rejects.toMatchObject({ kind: 'corrupt-file' });
  });
});
