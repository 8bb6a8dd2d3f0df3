import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddingError, listAliases, readAlias, rollbackAlias, setAlias } from '../../../lib/embedding/index.js';
import { LocalFileIO } from '../../../lib/storage/index.js';

describe('index alias store (compare-and-swap generations in the object store)', () => {
  let dir: string;
  let root: string;
  const io = new LocalFileIO({});
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-alias-'));
    root = `file://${dir}/indexes`;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('flips, keeps history, rolls back, and treats a repeated flip as a no-op', async () => {
    expect(await readAlias(io, root, 'items')).toBeUndefined();
    const a = await setAlias(
      io,
      root,
      'items',
      { version: 'v1', indexDir: `${root}/items/versions/v1/b1` },
      { by: 'wf-1' },
    );
    expect(a).toMatchObject({ generation: 1, version: 'v1', previous: [] });
    const b = await setAlias(
      io,
      root,
      'items',
      { version: 'v2', indexDir: `${root}/items/versions/v2/b1` },
      { by: 'wf-2' },
    );
    expect(b).toMatchObject({ generation: 2, version: 'v2', previous: [{ version: 'v1' }] });
    const again = await setAlias(
      io,
      root,
      'items',
      { version: 'v2', indexDir: `${root}/items/versions/v2/b1` },
      { by: 'wf-2' },
    );
    expect(again.generation).toBe(2);
    const back = await rollbackAlias(io, root, 'items', { by: 'cli' });
    expect(back).toMatchObject({ generation: 3, version: 'v1', previous: [], reason: 'rollback' });
    await expect(rollbackAlias(io, root, 'items', { by: 'cli' })).rejects.toThrow(/no previous version/);
    expect((await listAliases(io, root)).map((r) => [r.index, r.version])).toEqual([['items', 'v1']]);
  });

  it('lets exactly one of two concurrent flips from the same generation win', async () => {
    await setAlias(io, root, 'items', { version: 'v1', indexDir: 'file:///x/v1' }, { by: 'a' });
    const results = await Promise.allSettled([
      setAlias(io, root, 'items', { version: 'v2', indexDir: 'file:///x/v2' }, { by: 'a', expectedGeneration: 1 }),
      setAlias(io, root, 'items', { version: 'v3', indexDir: 'file:///x/v3' }, { by: 'b', expectedGeneration: 1 }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(EmbeddingError);
    expect(((lost[0] as PromiseRejectedResult).reason as EmbeddingError).kind).toBe('alias-conflict');
    expect((await readAlias(io, root, 'items'))?.generation).toBe(2);
  });
});
