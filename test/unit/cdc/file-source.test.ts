import { describe, expect, it } from 'vitest';
import { CDC_FILES_WATERMARK_PROPERTY } from '../../../lib/cdc/debezium-files.js';
import { CRASH_POINTS, createCrashInjector, parseCrashPlans } from '../../../lib/cdc/crash-points.js';
import { InvalidCdcOptionError, SourceTableError } from '../../../lib/cdc/errors.js';
import {
  buildSchemaFromColumns,
  buildSchemaFromConnect,
  icebergTypeForConnect,
  readFilesWatermark,
} from '../../../lib/cdc/file-source.js';
import type { TableMetadata } from '../../../lib/iceberg/metadata-json.js';

describe('icebergTypeForConnect', () => {
  it('maps Debezium PostgreSQL Connect schemas by logical name first, then Connect type', () => {
    const t = (type: string, name?: string, parameters?: Record<string, string>) =>
      icebergTypeForConnect(
        { field: 'c', type, ...(name ? { name } : {}), ...(parameters ? { parameters } : {}) },
        't',
      );
    expect(t('int16')).toEqual({ kind: 'int' });
    expect(t('int64')).toEqual({ kind: 'long' });
    expect(t('float32')).toEqual({ kind: 'float' });
    expect(t('boolean')).toEqual({ kind: 'boolean' });
    expect(t('bytes')).toEqual({ kind: 'binary' });
    expect(t('int32', 'io.debezium.time.Date')).toEqual({ kind: 'date' });
    expect(t('int64', 'io.debezium.time.MicroTime')).toEqual({ kind: 'time' });
    expect(t('int64', 'io.debezium.time.MicroTimestamp')).toEqual({ kind: 'timestamp' });
    expect(t('string', 'io.debezium.time.ZonedTimestamp')).toEqual({ kind: 'timestamptz' });
    expect(t('string', 'io.debezium.data.Uuid')).toEqual({ kind: 'uuid' });
    expect(t('string', 'io.debezium.data.Json')).toEqual({ kind: 'string' });
    expect(
      t('bytes', 'org.apache.kafka.connect.data.Decimal', { scale: '2', 'connect.decimal.precision': '12' }),
    ).toEqual({ kind: 'decimal', precision: 12, scale: 2 });
    expect(icebergTypeForConnect({ field: 'tags', type: 'array', items: { field: '', type: 'string' } }, 't')).toEqual({
      kind: 'list',
      elementId: 0,
      elementRequired: false,
      element: { kind: 'string' },
    });
  });

  it('refuses what no Iceberg type holds, naming the column and the connector setting', () => {
    expect(() =>
      icebergTypeForConnect({ field: 'n', type: 'struct', name: 'io.debezium.data.VariableScaleDecimal' }, 'p.t'),
    ).toThrow(SourceTableError);
    expect(() => icebergTypeForConnect({ field: 'n', type: 'map' }, 'p.t')).toThrow(/column "n" of "p.t".*map/);
  });
});

describe('file-source schemas', () => {
  const fields = [
    { field: 'id', type: 'int64', optional: false },
    { field: 'name', type: 'string', optional: false },
    { field: 'tags', type: 'array', optional: true, items: { field: '', type: 'string' } },
  ];

  it('builds the schema from a Connect row schema: ids assigned, key required and the identifier', () => {
    const { schema, key } = buildSchemaFromConnect('public.t', fields, ['id']);
    expect(key).toEqual(['id']);
    expect(schema.identifierFieldIds).toEqual([1]);
    expect(schema.fields.map((f) => [f.id, f.name, f.required])).toEqual([
      [1, 'id', true],
      [2, 'name', false],
      [3, 'tags', false],
    ]);
    expect(schema.fields[2]!.type).toMatchObject({ kind: 'list', elementId: 4 });
  });

  it('needs a key that is a column', () => {
    expect(() => buildSchemaFromConnect('public.t', fields, [])).toThrow(/name the key columns/);
    expect(() => buildSchemaFromConnect('public.t', fields, ['nope'])).toThrow(/key column "nope"/);
  });

  it('builds the schema from explicit columns and rejects unknown types', () => {
    const { schema } = buildSchemaFromColumns(
      'public.t',
      [
        { name: 'id', type: 'long' },
        { name: 'amount', type: 'decimal(12, 2)', required: true },
      ],
      ['id'],
    );
    expect(schema.fields.map((f) => [f.name, f.type, f.required])).toEqual([
      ['id', { kind: 'long' }, true],
      ['amount', { kind: 'decimal', precision: 12, scale: 2 }, true],
    ]);
    expect(() => buildSchemaFromColumns('public.t', [{ name: 'id', type: 'bigint' }], ['id'])).toThrow(
      InvalidCdcOptionError,
    );
  });
});

describe('readFilesWatermark', () => {
  const snapshot = (id: bigint, parent: bigint | undefined, mark?: string) => ({
    snapshotId: id,
    ...(parent === undefined ? {} : { parentSnapshotId: parent }),
    sequenceNumber: id,
    timestampMs: 0n,
    manifestList: '',
    summary: { operation: 'append' as const, ...(mark ? { [CDC_FILES_WATERMARK_PROPERTY]: mark } : {}) },
  });
  const table = (snapshots: ReturnType<typeof snapshot>[], current: bigint | null) =>
    ({ snapshots, currentSnapshotId: current }) as unknown as TableMetadata;

  it('takes the newest mark on the current branch, skipping snapshots without one (maintenance)', () => {
    const snaps = [snapshot(1n, undefined, '{"t+0":"0"}'), snapshot(2n, 1n, '{"t+0":"40"}'), snapshot(3n, 2n)];
    expect(readFilesWatermark(table(snaps, 3n))).toEqual({ 't+0': '40' });
    expect(readFilesWatermark(table(snaps, 1n))).toEqual({ 't+0': '0' });
    expect(readFilesWatermark(table([], null))).toEqual({});
  });
});

describe('test-only crash points', () => {
  it('parses SLUICE_TEST_CRASH_AT and refuses unknown points or probabilities', () => {
    expect(parseCrashPlans(undefined)).toEqual([]);
    expect(parseCrashPlans('after-commit:0.25, before-write')).toEqual([
      { point: 'after-commit', probability: 0.25 },
      { point: 'before-write', probability: 1 },
    ]);
    expect(() => parseCrashPlans('after-lunch')).toThrow(new RegExp(CRASH_POINTS.join(', ')));
    expect(() => parseCrashPlans('after-write:2')).toThrow(/0\.\.1/);
  });

  it('crashes only at an armed point, with its probability', () => {
    const crashed: string[] = [];
    let next = 0.5;
    const injector = createCrashInjector(parseCrashPlans('after-write:0.4'), {
      random: () => next,
      crash: (point, detail) => crashed.push(`${point} ${detail}`),
    });
    injector.reach('before-write', 'a');
    injector.reach('after-write', 'b'); // 0.5 ≥ 0.4: no crash
    next = 0.1;
    injector.reach('after-write', 'c');
    expect(crashed).toEqual(['after-write c']);
    expect(injector.armed).toBe(true);
    expect(createCrashInjector([]).armed).toBe(false);
  });
});
