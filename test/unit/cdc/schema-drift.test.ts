import { describe, expect, it } from 'vitest';
import { IncompatibleSchemaChangeError } from '../../../lib/cdc/errors.js';
import type { PgType } from '../../../lib/cdc/pg-types.js';
import { buildEnvelope, type ChangeEvent } from '../../../lib/cdc/envelope.js';
import {
  acceptedDriftOf,
  acceptedDriftProperties,
  detectSchemaDrift,
  holdBlockedChanges,
  resolveSchemaDrift,
  type RelationColumn,
} from '../../../lib/cdc/schema-drift.js';
import { buildIcebergSchema, type SourceTable } from '../../../lib/cdc/source-schema.js';

const t = (name: string, typmod = -1, display = name): PgType => ({ kind: 'base', name, typmod, display });
const numeric = (p: number, s: number) => t('numeric', ((p << 16) | s) + 4, `numeric(${p},${s})`);

const source: SourceTable = {
  schema: 'public',
  table: 'orders',
  oid: 1,
  relkind: 'r',
  columns: [
    { attnum: 1, name: 'id', type: t('int4', -1, 'integer'), notNull: true },
    { attnum: 2, name: 'qty', type: t('int4', -1, 'integer'), notNull: true },
    { attnum: 3, name: 'amount', type: numeric(10, 2), notNull: false },
    { attnum: 4, name: 'label', type: t('varchar', 14, 'character varying(10)'), notNull: false },
    { attnum: 5, name: 'score', type: t('float8', -1, 'double precision'), notNull: false },
  ],
  primaryKey: ['id'],
  replicaIdentity: 'default',
  replicaIdentityColumns: ['id'],
};
const { schema } = buildIcebergSchema(source);
const relation = (overrides: Record<string, PgType | null> = {}, extra: RelationColumn[] = []): RelationColumn[] => [
  ...source.columns
    .filter((c) => overrides[c.name] !== null)
    .map((c) => ({ name: c.name, type: overrides[c.name] ?? c.type, isKey: c.name === 'id' })),
  ...extra,
];
const drift = (columns: RelationColumn[], accepted = acceptedDriftOf({})) =>
  detectSchemaDrift({ table: 'public.orders', columns, replicaIdentity: 'default', schema, accepted });

describe('schema drift between a Relation message and the Iceberg table', () => {
  it('finds nothing when the columns match', () => {
    expect(drift(relation())).toMatchObject({ items: [], blocking: [], evolve: [] });
  });

  it('follows additive changes: a new column, int → bigint, numeric precision up, longer varchar', () => {
    const d = drift(
      relation(
        { qty: t('int8', -1, 'bigint'), amount: numeric(14, 2), label: t('varchar', 44, 'character varying(40)') },
        [{ name: 'note', type: t('text') }],
      ),
    );
    expect(d.blocking).toEqual([]);
    expect(d.evolve).toEqual([
      { op: 'update-column-type', column: 'qty', type: { kind: 'long' } },
      { op: 'update-column-type', column: 'amount', type: { kind: 'decimal', precision: 14, scale: 2 } },
      { op: 'add-column', name: 'note', type: { kind: 'string' } },
    ]);
  });

  it('blocks on a drop, a narrowing, an unrelated type change and a key change', () => {
    const d = drift(
      relation({ score: null, amount: numeric(8, 2), label: t('int4', -1, 'integer') }).map((c) =>
        c.name === 'qty' ? { ...c, isKey: true } : c,
      ),
    );
    expect(d.blocking.map((b) => b.kind).sort()).toEqual(['change-type', 'drop-column', 'key-change', 'narrow-type']);
    expect(d.blocking.find((b) => b.kind === 'drop-column')?.description).toBe('column "score" was dropped or renamed');
  });

  it('apply makes a dropped required column optional and remembers it; a narrowing is accepted as is', () => {
    const s = schema; // qty is NOT NULL, so its Iceberg column is required
    const d = detectSchemaDrift({
      table: 'public.orders',
      columns: relation({ qty: null, amount: numeric(8, 2) }),
      replicaIdentity: 'default',
      schema: s,
    });
    const r = resolveSchemaDrift(d, 'apply', s, acceptedDriftOf({}));
    expect(r.evolve).toEqual([{ op: 'make-optional', column: 'qty' }]);
    expect(r.accepted).toEqual({ droppedColumns: ['qty'], acceptedTypes: { amount: 'numeric(8,2)' } });
    // Once accepted, the same drift no longer blocks.
    const again = detectSchemaDrift({
      table: 'public.orders',
      columns: relation({ qty: null, amount: numeric(8, 2) }),
      replicaIdentity: 'default',
      schema: s,
      accepted: acceptedDriftOf(acceptedDriftProperties(r.accepted)),
    });
    expect(again.blocking).toEqual([]);
  });

  it('refuses to apply or skip a key change, and to apply an unrelated type change', () => {
    const keyChange = drift(relation({ id: null }));
    expect(() => resolveSchemaDrift(keyChange, 'skip', schema, acceptedDriftOf({}))).toThrow(
      IncompatibleSchemaChangeError,
    );
    const retyped = drift(relation({ label: t('int4', -1, 'integer') }));
    expect(() => resolveSchemaDrift(retyped, 'apply', schema, acceptedDriftOf({}))).toThrow(/re-bootstrap/);
    expect(resolveSchemaDrift(retyped, 'skip', schema, acceptedDriftOf({})).accepted.acceptedTypes).toEqual({
      label: 'integer',
    });
  });

  it('reads malformed accepted-drift properties as nothing accepted', () => {
    expect(acceptedDriftOf({ 'sluice.cdc.dropped-columns': '{', 'sluice.cdc.accepted-source-types': '[1]' })).toEqual({
      droppedColumns: [],
      acceptedTypes: {},
    });
  });
});

describe('holding the changes of a blocked table', () => {
  const event = (table: string, endLsn: bigint): ChangeEvent => ({
    envelope: buildEnvelope({
      op: 'c',
      before: null,
      after: { id: String(endLsn) },
      table: { schema: 'public', table },
      db: 'db',
      serverName: 's',
      txId: 1,
      commitLsn: endLsn - 1n,
      changeLsn: endLsn - 2n,
      commitTimeMicros: 0n,
      nowMs: 0,
    }),
    encoding: 'pg-text',
    position: { commitLsn: endLsn - 1n, commitEndLsn: endLsn, changeLsn: endLsn - 2n, sequence: 0 },
    unchangedColumns: [],
    origin: `${table} ${endLsn}`,
  });

  it('quarantines only the blocked table, above its watermark; the other tables go on', () => {
    const events = [event('a', 10n), event('b', 11n), event('a', 20n), event('b', 21n)];
    const { events: kept, held } = holdBlockedChanges(events, new Set(['public.a']), new Map([['public.a', 10n]]));
    expect(kept.map((e) => e.origin)).toEqual(['b 11', 'b 21']);
    expect(held.map((r) => [r.origin, r.errorKind, r.failureType, r.table])).toEqual([
      ['a 20', 'incompatible-schema-change', 'Unsupported', 'public.a'],
    ]);
  });
});
