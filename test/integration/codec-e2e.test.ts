import { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AesGcmPayloadCodec,
  dataConverterFor,
  ENCRYPTED_ENCODING,
  generateCodecKey,
  parseCodecKeys,
} from '../../client/codec.js';
import { startActivityFanOut } from '../../client/pipelines.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { connectToTestServer, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

describe('payload encryption end to end', () => {
  let t: Awaited<ReturnType<typeof connectToTestServer>>;
  beforeAll(async () => {
    t = await connectToTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a run with the codec on client and worker completes, and the server only ever sees ciphertext', async () => {
    const codec = new AesGcmPayloadCodec({ keys: parseCodecKeys(`k1:${generateCodecKey()}`), encryptKeyId: 'k1' });
    const dataConverter = dataConverterFor(codec);
    const client = new Client({ connection: t.client.connection, namespace: 'default', dataConverter });
    const base = uniqueQueue('codec');
    const worker = await createCpuWorker({
      connection: t.nativeConnection,
      namespace: 'default',
      baseTaskQueue: base,
      workflows: { workflowBundle: testWorkflowBundle() },
      dataConverter,
      shutdownGraceTime: '1s',
    });
    await worker.runUntil(async () => {
      const handle = await startActivityFanOut(client, { count: 3, mode: 'parallel' }, { taskQueue: base });
      expect(await handle.result()).toEqual({ completed: 3 });

      // Read the history without the codec: input and result must be encrypted, with the key id in the metadata.
      const raw = t.client.workflow.getHandle(handle.workflowId);
      const events = (await raw.fetchHistory()).events ?? [];
      const input = events[0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
      const result = events.at(-1)!.workflowExecutionCompletedEventAttributes!.result!.payloads![0]!;
      for (const p of [input, result]) {
        expect(Buffer.from(p.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
        expect(Buffer.from(p.metadata!['encryption-key-id']!).toString()).toBe('k1');
        expect(Buffer.from(p.data!).toString('latin1')).not.toContain('parallel');
      }
      // A client without the key cannot read the result.
      await expect(raw.result()).rejects.toThrow();
    });
  });
});
