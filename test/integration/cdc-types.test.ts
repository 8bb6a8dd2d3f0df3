import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { collapseChanges } from '../../lib/cdc/collapse.js';
import type { ChangeEvent } from '../../lib/cdc/envelope.js';
import { SourceTableError } from '../../lib/cdc/errors.js';
import { readChangeBatch } from '../../lib/cdc/pgoutput-reader.js';
import { copyInitialSnapshot, dropSlot, ensurePublication } from '../../lib/cdc/slot.js';
import { buildIcebergSchema, diffSourceTables, readSourceTable } from '../../lib/cdc/source-schema.js';
import { typeToString, type Schema } from '../../lib/iceberg/types.js';
import { daysFromCivil } from '../../lib/iceberg/values.js';

// The real PostgreSQL from globalSetup, in a database of this file's own. The database's defaults are set to
// unusual formats (SQL dates, a half-hour time zone, escape bytea) to prove that the readers pin their own.
const postgresUrl = inject('postgresUrl');
const database = `sluice_cdc_types_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
const databaseUrl = (() => {
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();
const slot = `${database}_slot`;

let admin: pg.Client;
let db: pg.Client;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.query(`ALTER DATABASE ${database} SET DateStyle = 'SQL, DMY'`);
  await admin.query(`ALTER DATABASE ${database} SET TimeZone = 'America/St_Johns'`);
  await admin.query(`ALTER DATABASE ${database} SET bytea_output = 'escape'`);
  await admin.query(`ALTER DATABASE ${database} SET extra_float_digits = 0`);
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await dropSlot(db, slot).catch(() => undefined);
  await db?.end();
  await admin?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin?.end();
});

// One column per mapped type, with the Iceberg type it must get and a value that exercises its edge cases.
const COLUMNS: [name: string, sqlType: string, iceberg: string, literal: string, expected: unknown][] = [
  ['c_int2', 'int2', 'int', '-32768', -32768],
  ['c_int4', 'int4', 'int', '2147483647', 2147483647],
  ['c_int8', 'int8', 'long', '9223372036854775807', 9223372036854775807n],
  ['c_numeric', 'numeric(12,3)', 'decimal(12, 3)', '-123456789.125', { unscaled: -123456789125n, scale: 3 }],
  [
    'c_numeric_free',
    'numeric',
    'decimal(38, 18)',
    '12345678901234567890.123456789012345678',
    { unscaled: 12345678901234567890123456789012345678n, scale: 18 },
  ],
  ['c_real', 'real', 'float', '1.1', Math.fround(1.1)],
  ['c_double', 'double precision', 'double', '-2.5e-300', -2.5e-300],
  ['c_bool', 'bool', 'boolean', 'true', true],
  ['c_text', 'text', 'string', `E'h\\u00e9llo "world"\\n'`, 'héllo "world"\n'],
  ['c_varchar', 'varchar(20)', 'string', "'abc'", 'abc'],
  ['c_char', 'char(5)', 'string', "'ab'", 'ab   '],
  ['c_bytea', 'bytea', 'binary', "'\\x00ff5c10'", new Uint8Array([0x00, 0xff, 0x5c, 0x10])],
  ['c_date', 'date', 'date', "'1969-07-20'", daysFromCivil(1969, 7, 20)],
  ['c_date_bc', 'date', 'date', "'0044-03-15 BC'", daysFromCivil(-43, 3, 15)],
  ['c_time', 'time', 'time', "'23:59:59.999999'", 86_399_999_999n],
  ['c_timetz', 'timetz', 'string', "'12:00:00+05:30'", '12:00:00+05:30'],
  ['c_ts', 'timestamp', 'timestamp', "'1969-12-31 23:59:59.5'", -500_000n],
  ['c_ts_old', 'timestamp(3)', 'timestamp', "'1900-01-01 00:00:00.001'", -2208988800000000n + 1000n],
  ['c_tstz', 'timestamptz', 'timestamptz', "'2024-01-31 19:15:00.123456+05:30'", 1706708700123456n],
  ['c_uuid', 'uuid', 'uuid', "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
  ['c_json', 'json', 'string', `'{"b": 1,  "a": [1,2]}'`, '{"b": 1,  "a": [1,2]}'],
  ['c_jsonb', 'jsonb', 'string', `'{"b": 1,  "a": [1,2]}'`, '{"a": [1, 2], "b": 1}'],
  ['c_int_arr', 'int4[]', 'list<int>', "'{1,NULL,3}'", [1, null, 3]],
  [
    'c_text_arr',
    'text[]',
    'list<string>',
    `ARRAY['a', 'b c', NULL, 'NULL', 'q"x', '']`,
    ['a', 'b c', null, 'NULL', 'q"x', ''],
  ],
  [
    'c_num_arr',
    'numeric(6,2)[]',
    'list<decimal(6, 2)>',
    "'{1.5,-2.25}'",
    [
      { unscaled: 150n, scale: 2 },
      { unscaled: -225n, scale: 2 },
    ],
  ],
  [
    'c_tstz_arr',
    'timestamptz[]',
    'list<timestamptz>',
    "ARRAY['2024-01-31 13:45:00+00'::timestamptz]",
    [1706708700000000n],
  ],
  ['c_enum', 'mood', 'string', "'happy'", 'happy'],
  ['c_domain', 'posint', 'int', '7', 7],
  ['c_interval', 'interval', 'string', "'1 day 02:03:04'", '1 day 02:03:04'],
  ['c_inet', 'inet', 'string', "'192.168.0.1/24'", '192.168.0.1/24'],
];

function rowsById(schema: Schema, events: ChangeEvent[], source: Parameters<typeof collapseChanges>[1]['tables'][0]) {
  const batch = collapseChanges(events, { tables: [source] });
  const changes = batch.tables.get('public.all_types')!;
  const rows = new Map<number, Record<string, unknown>>();
  changes.keys.forEach(([id], i) => {
    rows.set(id as number, Object.fromEntries(schema.fields.map((f) => [f.name, changes.columns.get(f.id)![i]])));
  });
  return { rows, quarantined: batch.quarantined, ops: changes.ops };
}

describe('PostgreSQL types end to end', () => {
  it('maps every type and converts snapshot and streamed values exactly, whatever the session defaults', async () => {
    await db.query("CREATE TYPE mood AS ENUM ('sad', 'happy')");
    await db.query('CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)');
    await db.query(
      `CREATE TABLE all_types (id int PRIMARY KEY, ${COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ')})`,
    );
    await db.query(
      `INSERT INTO all_types (id, ${COLUMNS.map(([name]) => name).join(', ')})
       VALUES (1, ${COLUMNS.map(([, type, , literal]) => `(${literal})::${type}`).join(', ')})`,
    );
    await db.query('INSERT INTO all_types (id) VALUES (2)');
    await ensurePublication(db, { publication: 'pub_types', tables: [{ schema: 'public', table: 'all_types' }] });

    const source = await readSourceTable(db, { schema: 'public', table: 'all_types' });
    const { schema } = buildIcebergSchema(source);
    expect(schema.fields.map((f) => [f.name, typeToString(f.type)])).toEqual([
      ['id', 'int'],
      ...COLUMNS.map(([name, , iceberg]) => [name, iceberg]),
    ]);
    const target = { source, schema };

    const snapshot: ChangeEvent[] = [];
    await copyInitialSnapshot({
      connection: databaseUrl,
      slot,
      tables: [source],
      onChunk: async (_table, events) => {
        snapshot.push(...events);
      },
    });
    // Rewriting every row sends whole new tuples through pgoutput.
    await db.query('UPDATE all_types SET id = id');
    const streamed = await readChangeBatch(db, { slot, publication: 'pub_types' });
    expect(streamed.events.map((e) => e.envelope.op)).toEqual(['u', 'u']);

    const expected = Object.fromEntries([['id', 1], ...COLUMNS.map(([name, , , , value]) => [name, value])]);
    const nulls = Object.fromEntries([['id', 2], ...COLUMNS.map(([name]) => [name, null])]);
    for (const events of [snapshot, streamed.events]) {
      const { rows, quarantined } = rowsById(schema, events, target);
      expect(quarantined).toEqual([]);
      expect(rows.get(1)).toEqual(expected);
      expect(rows.get(2)).toEqual(nulls);
    }
  });

  it('quarantines values Iceberg cannot hold, naming the column', async () => {
    const source = await readSourceTable(db, { schema: 'public', table: 'all_types' });
    const { schema } = buildIcebergSchema(source);
    await db.query(
      "INSERT INTO all_types (id, c_ts, c_numeric_free) VALUES (3, 'infinity', 1), (4, '2024-01-01', 0.0000000000000000001)",
    );
    await db.query("INSERT INTO all_types (id, c_date) VALUES (5, '2024-02-29')");
    const batch = await readChangeBatch(db, { slot, publication: 'pub_types' });
    const { rows, quarantined } = rowsById(schema, batch.events, { source, schema });
    expect(quarantined.map((q) => q.message)).toEqual([
      expect.stringMatching(/column "c_ts": cannot convert "infinity" to timestamp: PostgreSQL infinity/),
      expect.stringMatching(/column "c_numeric_free": .* to decimal\(38, 18\): it has more than 18 fraction digits/),
    ]);
    expect(JSON.parse(quarantined[0]!.raw).after.id).toBe('3');
    expect([...rows.keys()].filter((id) => id >= 3)).toEqual([5]);
    expect(rows.get(5)!.c_date).toBe(daysFromCivil(2024, 2, 29));
  });
});

describe('source tables', () => {
  it('refuses a table without a primary key unless a key is named', async () => {
    await db.query('CREATE TABLE no_key (a int NOT NULL, b text)');
    const source = await readSourceTable(db, { schema: 'public', table: 'no_key' });
    expect(source.primaryKey).toEqual([]);
    expect(() => buildIcebergSchema(source)).toThrow(SourceTableError);
    expect(() => buildIcebergSchema(source)).toThrow(/table "public\.no_key" has no primary key/);
    await db.query('ALTER TABLE no_key REPLICA IDENTITY FULL');
    const full = await readSourceTable(db, { schema: 'public', table: 'no_key' });
    expect(buildIcebergSchema(full, { key: ['a'] }).schema.identifierFieldIds).toEqual([1]);
  });

  it('reads keys, replica identity and relation kinds from the catalog', async () => {
    await db.query('CREATE TABLE "Mixed Case" (b text, a int, "Key 2" int, PRIMARY KEY ("Key 2", a))');
    const mixed = await readSourceTable(db, { schema: 'public', table: 'Mixed Case' });
    expect(mixed.primaryKey).toEqual(['Key 2', 'a']);
    expect(mixed.replicaIdentity).toBe('default');
    expect(mixed.replicaIdentityColumns).toEqual(['Key 2', 'a']);
    expect(mixed.columns.map((c) => [c.attnum, c.name, c.notNull])).toEqual([
      [1, 'b', false],
      [2, 'a', true],
      [3, 'Key 2', true],
    ]);
    await db.query('CREATE UNIQUE INDEX mixed_b ON "Mixed Case" (b)');
    await db.query('ALTER TABLE "Mixed Case" ALTER COLUMN b SET NOT NULL');
    await db.query('ALTER TABLE "Mixed Case" REPLICA IDENTITY USING INDEX mixed_b');
    const indexed = await readSourceTable(db, { schema: 'public', table: 'Mixed Case' });
    expect(indexed.replicaIdentity).toBe('index');
    expect(indexed.replicaIdentityColumns).toEqual(['b']);
    expect(() => buildIcebergSchema(indexed)).toThrow(/REPLICA IDENTITY FULL/);

    await db.query('CREATE VIEW a_view AS SELECT 1 AS x');
    await expect(readSourceTable(db, { schema: 'public', table: 'a_view' })).rejects.toMatchObject({
      kind: 'unsupported-relation',
    });
    await expect(readSourceTable(db, { schema: 'public', table: 'missing' })).rejects.toMatchObject({
      kind: 'table-not-found',
      failureType: 'NotFound',
    });
    await db.query('CREATE TABLE gen (id int PRIMARY KEY, twice int GENERATED ALWAYS AS (id * 2) STORED)');
    expect((await readSourceTable(db, { schema: 'public', table: 'gen' })).columns.map((c) => c.name)).toEqual(['id']);
  });

  it('tells compatible source changes from incompatible ones', async () => {
    await db.query('CREATE TABLE evolving (id int PRIMARY KEY, qty int, note text)');
    const name = { schema: 'public', table: 'evolving' };
    const v1 = await readSourceTable(db, name);
    await db.query('ALTER TABLE evolving ALTER COLUMN qty TYPE bigint, ADD COLUMN added numeric(5,1)');
    const v2 = await readSourceTable(db, name);
    const diff = diffSourceTables(v1, v2);
    expect(diff.compatible).toBe(true);
    expect(diff.icebergChanges).toEqual([
      { op: 'update-column-type', column: 'qty', type: { kind: 'long' } },
      { op: 'add-column', name: 'added', type: { kind: 'decimal', precision: 5, scale: 1 } },
    ]);
    await db.query('ALTER TABLE evolving DROP COLUMN note, ALTER COLUMN qty TYPE int');
    await db.query('ALTER TABLE evolving RENAME COLUMN added TO renamed');
    const v3 = await readSourceTable(db, name);
    const bad = diffSourceTables(v2, v3);
    expect(bad.compatible).toBe(false);
    expect(bad.changes.map((c) => c.kind)).toEqual(['narrow-type', 'drop-column', 'rename-column']);
  });
});
