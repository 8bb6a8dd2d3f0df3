import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CollectionsError } from '../../../lib/collections/errors.js';
import { borderlineOrder, verifyBorderline } from '../../../lib/collections/verify.js';
import {
  collectionId,
  type Attributes,
  type CollectionCandidates,
  type CollectionDef,
} from '../../../lib/collections/types.js';
import { VlmClient } from '../../../lib/collections/vlm-client.js';
import { startVlmStandIn, type VlmStandIn, type VlmStandInOptions } from '../../../lib/collections/vlm-stand-in.js';
import { syntheticImages, type SyntheticImages } from './vlm-fixtures.js';

function def(attributes: Attributes, name: string): CollectionDef {
  return { id: collectionId(attributes), name, attributes, support: 3, demand: 0 };
}

describe('borderline verification (stand-in over HTTP)', () => {
  let data: SyntheticImages;
  let standIn: VlmStandIn | undefined;
  let collections: CollectionDef[];
  let candidates: CollectionCandidates[];
  beforeAll(async () => {
    data = await syntheticImages(12);
    collections = [def({ color: 'red' }, 'red'), def({ shape: 'circle', size: 'small' }, 'small circle')];
    const ids = data.rows.map((r) => r.itemId);
    // Scores chosen so that the global order interleaves the two collections.
    candidates = [
      {
        collectionId: collections[0]!.id,
        accepted: [{ itemId: ids[0]!, score: 0.9 }],
        borderline: [
          { itemId: ids[1]!, score: 0.59 },
          { itemId: ids[2]!, score: 0.5 },
          { itemId: ids[3]!, score: 0.46 },
        ],
      },
      {
        collectionId: collections[1]!.id,
        accepted: [],
        borderline: [
          { itemId: ids[4]!, score: 0.57 },
          { itemId: ids[5]!, score: 0.55 },
          { itemId: ids[6]!, score: 0.45 },
        ],
      },
    ];
  });
  afterEach(async () => {
    await standIn?.close();
    standIn = undefined;
  });

  async function start(opts: Partial<VlmStandInOptions> = {}): Promise<VlmStandIn> {
    standIn = await startVlmStandIn({ truth: data.lookup, ...opts });
    return standIn;
  }
  const imageFor = async (itemId: string) => ({
    bytes: data.images.get(`mem://${itemId}.png`)!,
    mimeType: 'image/png',
  });
  function truthOf(collection: CollectionDef, itemId: string): 'yes' | 'no' {
    const truth = data.attributesOf.get(itemId)!;
    return Object.entries(collection.attributes).every(([k, v]) => truth[k] === v) ? 'yes' : 'no';
  }
  const ids = () => data.rows.map((r) => r.itemId);

  it('orders every collection’s borderline candidates by closeness to the accept score', () => {
    const order = borderlineOrder(candidates, 0.6).map((p) => [p.itemId, p.score]);
    expect(order).toEqual([
      [ids()[1], 0.59],
      [ids()[4], 0.57],
      [ids()[5], 0.55],
      [ids()[2], 0.5],
      [ids()[3], 0.46],
      [ids()[6], 0.45],
    ]);
  });

  it('answers every borderline pair from the truth when the budget allows', async () => {
    const s = await start();
    const client = new VlmClient({ url: s.url, model: 'stand-in', concurrency: 3 });
    const progress: number[] = [];
    const out = await verifyBorderline({
      client,
      candidates,
      collections,
      acceptScore: 0.6,
      imageFor,
      onProgress: (done) => progress.push(done),
    });
    expect(out.asked).toBe(6);
    expect(out.unasked).toEqual([]);
    expect(out.budgetExhausted).toBe(false);
    expect(out.usage.calls).toBe(6);
    expect(progress).toHaveLength(6);
    const byId = new Map(collections.map((c) => [c.id, c]));
    for (const d of out.decisions) {
      expect(d.answer).toBe(truthOf(byId.get(d.collectionId)!, d.itemId));
      expect(d.confidence).toBeGreaterThanOrEqual(0.8);
    }
    // The fixture has both kinds of answer, so the check above is not vacuous.
    expect(new Set(out.decisions.map((d) => d.answer))).toEqual(new Set(['yes', 'no']));
    expect(s.stats().byKind).toEqual({ verify: 6 });
  });

  it('asks the most uncertain pairs first and stops cleanly at the budget', async () => {
    const s = await start();
    const client = new VlmClient({ url: s.url, model: 'stand-in', concurrency: 2 });
    const out = await verifyBorderline({
      client,
      candidates,
      collections,
      acceptScore: 0.6,
      imageFor,
      budget: { maxCalls: 3 },
    });
    expect(s.stats().requests).toBe(3);
    expect(out.asked).toBe(3);
    expect(out.budgetExhausted).toBe(true);
    expect(out.decisions.map((d) => d.itemId).sort()).toEqual([ids()[1], ids()[4], ids()[5]].sort());
    expect(out.unasked.map((p) => [p.collectionId, p.itemId])).toEqual([
      [collections[0]!.id, ids()[2]],
      [collections[0]!.id, ids()[3]],
      [collections[1]!.id, ids()[6]],
    ]);
  });

  it('flips answers with a lower confidence when the stand-in errs', async () => {
    const s = await start({ wrongRate: 1 });
    const client = new VlmClient({ url: s.url, model: 'stand-in' });
    const out = await verifyBorderline({ client, candidates, collections, acceptScore: 0.6, imageFor });
    const byId = new Map(collections.map((c) => [c.id, c]));
    for (const d of out.decisions) {
      expect(d.answer).not.toBe(truthOf(byId.get(d.collectionId)!, d.itemId));
      expect(d.confidence).toBeLessThan(0.8);
    }
  });

  it('repairs a malformed answer once, then quarantines the pair', async () => {
    const repaired = await start({ malformedRate: 1 });
    const ok = await verifyBorderline({
      client: new VlmClient({ url: repaired.url, model: 'm' }),
      candidates,
      collections,
      acceptScore: 0.6,
      imageFor,
    });
    expect(ok.decisions).toHaveLength(6);
    expect(ok.usage.calls).toBe(12);
    await repaired.close();
    const broken = await start({ malformedRate: 1, repairMalformedRate: 1 });
    const out = await verifyBorderline({
      client: new VlmClient({ url: broken.url, model: 'm' }),
      candidates,
      collections,
      acceptScore: 0.6,
      imageFor,
    });
    expect(out.decisions).toEqual([]);
    expect(out.asked).toBe(6);
    expect(out.quarantined).toHaveLength(6);
    for (const q of out.quarantined) {
      expect(q).toMatchObject({ stage: 'verify', reason: 'malformed-json' });
      expect(q.collectionId).toBeDefined();
      expect(q.raw).toMatch(/^Sure!/);
    }
  });

  it('quarantines a pair whose image cannot be read, and refuses unknown collections', async () => {
    const s = await start();
    const client = new VlmClient({ url: s.url, model: 'm' });
    const out = await verifyBorderline({
      client,
      candidates,
      collections,
      acceptScore: 0.6,
      imageFor: async (itemId) => {
        if (itemId === ids()[2]) throw new Error('gone');
        return imageFor(itemId);
      },
    });
    expect(out.quarantined.map((q) => [q.itemId, q.reason])).toEqual([[ids()[2], 'unreadable-image']]);
    expect(out.decisions).toHaveLength(5);
    await expect(
      verifyBorderline({
        client,
        candidates: [{ collectionId: 'color=teal', accepted: [], borderline: [] }],
        collections,
        acceptScore: 0.6,
        imageFor,
      }),
    ).rejects.toBeInstanceOf(CollectionsError);
  });
});
