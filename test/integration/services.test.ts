import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { connectToTestServer } from '../fixtures/temporal.js';

describe('integration services', () => {
  it('PostgreSQL runs with logical replication enabled', async () => {
    const client = new pg.Client({ connectionString: inject('postgresUrl') });
    await client.connect();
    try {
      const { rows } = await client.query<{ wal_level: string }>('SHOW wal_level');
      expect(rows[0]?.wal_level).toBe('logical');
      await client.query(`SELECT pg_create_logical_replication_slot('it_probe', 'pgoutput')`);
      const slots = await client.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'it_probe'`);
      expect(slots.rowCount).toBe(1);
      await client.query(`SELECT pg_drop_replication_slot('it_probe')`);
    } finally {
      await client.end();
    }
  });

  it('the S3 server stores and returns objects (path-style, signed)', async () => {
    const s3 = inject('s3');
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    await client.send(new CreateBucketCommand({ Bucket: 'it-probe' }));
    await client.send(new PutObjectCommand({ Bucket: 'it-probe', Key: 'a/b.txt', Body: 'hello sluice' }));
    const got = await client.send(new GetObjectCommand({ Bucket: 'it-probe', Key: 'a/b.txt' }));
    expect(await got.Body?.transformToString()).toBe('hello sluice');
    const wrong = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: 'not-the-secret' },
    });
    await expect(wrong.send(new GetObjectCommand({ Bucket: 'it-probe', Key: 'a/b.txt' }))).rejects.toThrow();
  });

  it('the Temporal dev server has the Sluice search attributes', async () => {
    const t = await connectToTestServer();
    try {
      const res = await t.client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
      expect(Object.keys(res.customAttributes ?? {})).toEqual(
        expect.arrayContaining(['SluicePipeline', 'SluiceDataset', 'SluiceModel', 'SluiceGpuHost', 'SluicePhase']),
      );
    } finally {
      await t.close();
    }
  });
});
