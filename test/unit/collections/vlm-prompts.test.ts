import { afterEach, describe, expect, it } from 'vitest';
import { judgeCollections } from '../../../lib/collections/judge.js';
import { collectionId, type CollectionDef } from '../../../lib/collections/types.js';
import { VlmClient } from '../../../lib/collections/vlm-client.js';
import {
  detectPromptKind,
  extractionMessages,
  judgeMessages,
  parseExtractionReply,
  parseJudgeReply,
  parseVerificationReply,
  readPromptLine,
  repairMessages,
  verificationMessages,
} from '../../../lib/collections/vlm-prompts.js';
import { startVlmStandIn, type VlmStandIn } from '../../../lib/collections/vlm-stand-in.js';

const image = { bytes: new Uint8Array([0x89, 0x50, 0x4e, 0x47]), mimeType: 'image/png' };

function userText(messages: ReturnType<typeof extractionMessages>): string {
  const user = messages.filter((m) => m.role === 'user').at(-1)!;
  return typeof user.content === 'string'
    ? user.content
    : user.content.map((p) => (p.type === 'text' ? p.text : '')).join('\n');
}

describe('VLM prompts and reply parsers', () => {
  it('puts machine-readable lines in every prompt', () => {
    const extract = userText(
      extractionMessages({ keys: ['Color', 'shape'], title: 'Red\nball', description: 'round', image }),
    );
    expect(detectPromptKind(extract)).toBe('extract');
    expect(readPromptLine(extract, 'Keys')).toBe('color, shape');
    expect(readPromptLine(extract, 'Title')).toBe('Red ball');
    const verify = userText(verificationMessages({ collectionName: 'red', attributes: { color: 'red' }, image }));
    expect(detectPromptKind(verify)).toBe('verify');
    expect(JSON.parse(readPromptLine(verify, 'Collection attributes')!)).toEqual({ color: 'red' });
    const judge = userText(judgeMessages(['red circle', 'x']));
    expect(detectPromptKind(judge)).toBe('judge');
    expect(JSON.parse(readPromptLine(judge, 'Collection names')!)).toEqual(['red circle', 'x']);
    const repair = repairMessages(judgeMessages(['a']), 'oops', 'not JSON');
    expect(repair.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(detectPromptKind(userText(repair))).toBe('repair');
    expect(detectPromptKind('hello')).toBeUndefined();
  });

  it('parses extraction replies: normalises, drops unknown keys and nulls, refuses non-strings', () => {
    expect(
      parseExtractionReply('{"attributes": {" Color ": "  Dark   RED ", "shape": null, "brand": "acme"}}', [
        'color',
        'shape',
      ]),
    ).toEqual({ ok: true, value: { color: 'dark red' } });
    expect(parseExtractionReply('```json\n{"attributes": {"shape": "circle"}}\n```', ['shape'])).toEqual({
      ok: true,
      value: { shape: 'circle' },
    });
    expect(parseExtractionReply('{"attributes": {}}', ['shape'])).toEqual({ ok: true, value: {} });
    expect(parseExtractionReply('{"attributes": {"shape": 3}}', ['shape'])).toMatchObject({
      ok: false,
      reason: 'schema-invalid',
    });
    expect(parseExtractionReply('{"color": "red"}', ['color'])).toMatchObject({ ok: false, reason: 'schema-invalid' });
    expect(parseExtractionReply('It is red.', ['color'])).toMatchObject({ ok: false, reason: 'malformed-json' });
    expect(parseExtractionReply('', ['color'])).toMatchObject({ ok: false, reason: 'malformed-json' });
  });

  it('parses verification and judge replies', () => {
    expect(parseVerificationReply('{"answer": "YES", "confidence": 0.9}')).toEqual({
      ok: true,
      value: { answer: 'yes', confidence: 0.9 },
    });
    expect(parseVerificationReply('{"answer": "maybe", "confidence": 0.9}')).toMatchObject({ ok: false });
    expect(parseVerificationReply('{"answer": "no", "confidence": 1.5}')).toMatchObject({
      ok: false,
      reason: 'schema-invalid',
    });
    expect(parseJudgeReply('{"verdicts": [{"name": "a", "keep": false, "reason": "odd"}]}')).toEqual({
      ok: true,
      value: { verdicts: [{ name: 'a', keep: false, reason: 'odd' }] },
    });
    expect(parseJudgeReply('{"verdicts": [{"name": "a", "keep": "yes"}]}')).toMatchObject({ ok: false });
  });
});

describe('LLM-as-judge through the stand-in', () => {
  let standIn: VlmStandIn | undefined;
  afterEach(async () => {
    await standIn?.close();
    standIn = undefined;
  });
  const col = (attributes: Record<string, string>, name: string): CollectionDef => ({
    id: collectionId(attributes),
    name,
    attributes,
    support: 2,
    demand: 0,
  });
  const collections = [
    col({ color: 'red', shape: 'circle' }, 'red circle'),
    col({ color: 'blue' }, 'Navy'),
    col({ color: 'red', shape: 'banana' }, 'red banana'),
  ];

  it('keeps sensible names and drops the rest, in batches, without images', async () => {
    standIn = await startVlmStandIn({ truth: () => undefined });
    const client = new VlmClient({ url: standIn.url, model: 'judge' });
    const verdicts = await judgeCollections({ client, collections, batchSize: 2 });
    expect(standIn.stats().byKind).toEqual({ judge: 2 });
    expect(client.usage().calls).toBe(2);
    expect(verdicts.get('color=red+shape=circle')).toEqual({ keep: true, judged: true });
    expect(verdicts.get('color=blue')).toEqual({ keep: true, judged: true });
    expect(verdicts.get('color=red+shape=banana')).toMatchObject({ keep: false, judged: true });
    expect(verdicts.get('color=red+shape=banana')!.reason).toMatch(/banana/);
  });

  it('keeps a batch unjudged when the reply stays unusable or the budget is spent', async () => {
    standIn = await startVlmStandIn({ truth: () => undefined, malformedRate: 1, repairMalformedRate: 1 });
    const client = new VlmClient({ url: standIn.url, model: 'judge' });
    const verdicts = await judgeCollections({ client, collections });
    expect(client.usage().calls).toBe(2);
    for (const c of collections) expect(verdicts.get(c.id)).toMatchObject({ keep: true, judged: false });
    const none = await judgeCollections({ client, collections, budget: { maxCalls: 0 } });
    expect(client.usage().calls).toBe(2);
    expect(none.get(collections[2]!.id)!.reason).toMatch(/budget/);
  });
});
