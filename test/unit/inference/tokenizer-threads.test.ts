import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferencePool, type BundledModels } from '../../../lib/inference/index.js';
import { generateDualModels } from './generated-models.js';

let models: BundledModels;
let cleanup: () => void;
beforeAll(async () => {
  ({ models, cleanup } = await generateDualModels());
}, 120_000);
afterAll(() => cleanup?.());

describe('tokenizer threads', { timeout: 60_000 }, () => {
  it('give the same vectors and the same per-item errors as tokenizing on the calling thread', async () => {
    const texts = Array.from({ length: 600 }, (_, i) => `a ${['big', 'tiny'][i % 2]} red striped circle ${i}`);
    texts[17] = Array.from({ length: 40 }, () => 'blue').join(' ');
    texts[401] = '';
    const inline = new InferencePool({ provider: 'cpu', tokenizerThreads: 0 });
    const threaded = new InferencePool({ provider: 'cpu', tokenizerThreads: 2 });
    try {
      const a = await inline.embedTextsSettled(models.dualText, texts);
      const b = await threaded.embedTextsSettled(models.dualText, texts);
      expect(b.map((o) => o.ok)).toEqual(a.map((o) => o.ok));
      expect(b[17]).toMatchObject({ ok: false, error: { kind: 'text-too-long', index: 17 } });
      expect(b[401]).toMatchObject({ ok: false, error: { kind: 'empty-text', index: 401 } });
      for (let i = 0; i < texts.length; i++) {
        const x = a[i]!;
        const y = b[i]!;
        if (x.ok && y.ok) expect(Array.from(y.vector)).toEqual(Array.from(x.vector));
      }
    } finally {
      await inline.close();
      await threaded.close();
    }
  });
});
