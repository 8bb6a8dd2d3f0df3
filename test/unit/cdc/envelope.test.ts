import { describe, expect, it } from 'vitest';
import { SLUICE_SOURCE_VERSION, buildEnvelope, envelopeToJson } from '../../../lib/cdc/envelope.js';

describe('Debezium envelopes', () => {
  const input = {
    op: 'u' as const,
    before: { id: '1' },
    after: { id: '2', name: 'x' },
    table: { schema: 'public', table: 'orders' },
    db: 'shop',
    serverName: 'prod',
    txId: 731,
    commitLsn: 0x1528ce0n,
    changeLsn: 0x1528ab0n,
    commitTimeMicros: 1706708700123456n,
    nowMs: 1706708701000,
    totalOrder: 2,
    dataCollectionOrder: 1,
  };

  it("uses the PostgreSQL connector's field names and values", () => {
    const envelope = buildEnvelope(input);
    expect(envelope).toEqual({
      before: { id: '1' },
      after: { id: '2', name: 'x' },
      source: {
        version: SLUICE_SOURCE_VERSION,
        connector: 'postgresql',
        name: 'prod',
        ts_ms: 1706708700123,
        snapshot: 'false',
        db: 'shop',
        sequence: JSON.stringify([String(0x1528ce0), String(0x1528ab0)]),
        schema: 'public',
        table: 'orders',
        txId: 731,
        lsn: 0x1528ab0,
        xmin: null,
      },
      op: 'u',
      ts_ms: 1706708701000,
      transaction: { id: `731:${0x1528ce0}`, total_order: 2, data_collection_order: 1 },
    });
  });

  it('leaves stream positions out of snapshot reads', () => {
    const envelope = buildEnvelope({
      ...input,
      op: 'r',
      before: null,
      txId: null,
      commitLsn: 0n,
      changeLsn: 0n,
      commitTimeMicros: 0n,
      snapshot: 'true',
    });
    expect(envelope.source.sequence).toBeNull();
    expect(envelope.source.lsn).toBeNull();
    expect(envelope.source.snapshot).toBe('true');
    expect(envelope.transaction).toBeNull();
  });

  it('serializes bigints exactly and bytes as base64', () => {
    const envelope = buildEnvelope({ ...input, after: { big: 9007199254740993n, bytes: new Uint8Array([0, 255]) } });
    const json = envelopeToJson(envelope);
    expect(json).toContain('"big":9007199254740993');
    expect(json).toContain('"bytes":"AP8="');
    expect(JSON.parse(json).op).toBe('u');
  });
});
