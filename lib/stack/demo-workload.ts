import type pg from 'pg';
import { parseLsn } from '../cdc/lsn.js';
import { currentSchema, isDecimalValue, scanTable, type TableMetadata } from '../iceberg/index.js';
import type { FileIO } from '../storage/file-io.js';

/**
 * The CDC demo's source workload (no Temporal imports): an `orders` table in PostgreSQL, a runner that commits
 * small transactions of mixed inserts, updates and deletes at a target rate while recording each transaction's
 * commit time and WAL position, the freshness statistics, and a row-by-row comparison of the source table with
 * the Iceberg table the merge writes.
 */

/** One committed workload transaction. */
export interface WorkloadTransaction {
  /** When the client saw the COMMIT acknowledged (ms since the epoch). */
  committedAtMs: number;
  /** `pg_current_wal_lsn()` right after the commit: at or past the transaction's commit end LSN. */
  lsn: bigint;
  inserts: number;
  updates: number;
  deletes: number;
}

/** What {@link runOrdersWorkload} did. */
export interface WorkloadResult {
  transactions: WorkloadTransaction[];
  changes: number;
  inserts: number;
  updates: number;
  deletes: number;
  elapsedMs: number;
}

/** Options of {@link runOrdersWorkload}. */
export interface OrdersWorkloadOptions {
  /** Row changes per second to aim at. @default 200 */
  changesPerSecond?: number;
  /** How long to run. @default 15000 */
  durationMs?: number;
  /** Row changes per transaction. @default 4 */
  changesPerTransaction?: number;
  /** Seed of the value generator (the same seed gives the same statements). @default 1 */
  seed?: number;
  /** Stops early when aborted. */
  signal?: AbortSignal;
  /** Called after every commit, e.g. to start measuring its freshness. */
  onCommit?: (tx: WorkloadTransaction) => void;
}

const STATUSES = ['new', 'paid', 'packed', 'shipped', 'delivered', 'returned'] as const;

/** A small deterministic PRNG (mulberry32), so that a demo run can be repeated. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Creates `orders` (id bigint PK, customer text, status text, amount numeric(12,2), updated_at timestamptz) with
 * `rows` initial rows, ids 1…rows. Fails when the table exists.
 */
export async function createOrdersTable(db: pg.ClientBase, rows: number): Promise<void> {
  await db.query(`CREATE TABLE orders (
    id bigint PRIMARY KEY, customer text NOT NULL, status text NOT NULL, amount numeric(12,2),
    updated_at timestamptz NOT NULL)`);
  await db.query(
    `INSERT INTO orders
       SELECT g, 'customer ' || (g % 97), (ARRAY['new','paid','shipped'])[1 + g % 3], (g * 7 % 100000) / 100.0,
              now() - (g || ' minutes')::interval
         FROM generate_series(1, $1::int) g`,
    [rows],
  );
}

/**
 * Runs the workload on `db` (a connection of its own): transactions of `changesPerTransaction` row changes, about
 * 50% updates, 30% inserts and 20% deletes of live rows, paced to `changesPerSecond` for `durationMs`. Each
 * transaction is one round trip (`BEGIN; …; COMMIT; SELECT pg_current_wal_lsn()`), so its LSN is taken right after
 * its commit. Expects the table of {@link createOrdersTable}.
 */
export async function runOrdersWorkload(
  db: pg.ClientBase,
  options: OrdersWorkloadOptions = {},
): Promise<WorkloadResult> {
  const changesPerSecond = options.changesPerSecond ?? 200;
  const durationMs = options.durationMs ?? 15_000;
  const perTx = options.changesPerTransaction ?? 4;
  const random = prng(options.seed ?? 1);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

  const ids = (await db.query<{ id: string }>('SELECT id::text AS id FROM orders')).rows.map((r) => Number(r.id));
  const max = await db.query<{ max: string | null }>('SELECT max(id)::text AS max FROM orders');
  let nextId = Number(max.rows[0]?.max ?? 0) + 1;
  const live = new Set(ids);
  const liveList = [...ids];
  const takeLive = (): number | undefined => {
    // Swap-remove on a list kept alongside the set, so picking a random live id stays O(1).
    while (liveList.length > 0) {
      const at = Math.floor(random() * liveList.length);
      const id = liveList[at] as number;
      if (live.has(id)) return id;
      liveList[at] = liveList[liveList.length - 1] as number;
      liveList.pop();
    }
    return undefined;
  };
  const amount = () => (Math.floor(random() * 10_000_000) / 100).toFixed(2);

  const intervalMs = (1000 * perTx) / changesPerSecond;
  const transactions: WorkloadTransaction[] = [];
  const totals = { inserts: 0, updates: 0, deletes: 0 };
  const started = Date.now();
  for (let k = 0; ; k++) {
    const due = started + k * intervalMs;
    if (due - started >= durationMs || options.signal?.aborted) break;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));

    const statements: string[] = [];
    const counts = { inserts: 0, updates: 0, deletes: 0 };
    for (let c = 0; c < perTx; c++) {
      const roll = random();
      const target = roll < 0.7 ? takeLive() : undefined;
      if (roll < 0.5 && target !== undefined) {
        statements.push(
          `UPDATE orders SET status = '${pick(STATUSES)}', amount = ${amount()}, updated_at = now() WHERE id = ${target}`,
        );
        counts.updates++;
      } else if (roll < 0.7 && target !== undefined) {
        statements.push(`DELETE FROM orders WHERE id = ${target}`);
        live.delete(target);
        counts.deletes++;
      } else {
        const id = nextId++;
        const customer = `customer ${Math.floor(random() * 97)}`;
        statements.push(`INSERT INTO orders VALUES (${id}, '${customer}', 'new', ${amount()}, now())`);
        live.add(id);
        liveList.push(id);
        counts.inserts++;
      }
    }
    // Values are generated here (numbers and fixed words), never user input, so plain SQL text is safe.
    const results = (await db.query(
      `BEGIN; ${statements.join('; ')}; COMMIT; SELECT pg_current_wal_lsn()::text AS lsn`,
    )) as unknown as pg.QueryResult<{ lsn: string }>[];
    const committedAtMs = Date.now();
    const lsnText = results[results.length - 1]?.rows[0]?.lsn;
    if (lsnText === undefined) throw new Error('the workload transaction returned no LSN');
    const tx: WorkloadTransaction = { committedAtMs, lsn: parseLsn(lsnText), ...counts };
    transactions.push(tx);
    totals.inserts += counts.inserts;
    totals.updates += counts.updates;
    totals.deletes += counts.deletes;
    options.onCommit?.(tx);
  }
  return {
    transactions,
    changes: totals.inserts + totals.updates + totals.deletes,
    ...totals,
    elapsedMs: Date.now() - started,
  };
}

/** Tracks when each transaction became visible in Iceberg, given the merge's watermark as it is polled. */
export class FreshnessTracker {
  private readonly pending: WorkloadTransaction[] = [];
  /** Seconds from each transaction's commit to the first poll that saw the watermark at or past its LSN. */
  readonly seconds: number[] = [];

  /** A transaction was committed on the source. Call in commit order. */
  committed(tx: WorkloadTransaction): void {
    this.pending.push(tx);
  }

  /** A poll at `nowMs` saw the watermark at `watermark`: every transaction at or below it is now in Iceberg. */
  observed(watermark: bigint, nowMs: number): void {
    let done = 0;
    while (done < this.pending.length && (this.pending[done] as WorkloadTransaction).lsn <= watermark) {
      this.seconds.push((nowMs - (this.pending[done] as WorkloadTransaction).committedAtMs) / 1000);
      done++;
    }
    this.pending.splice(0, done);
  }

  /** Transactions not yet seen in Iceberg. */
  get waiting(): number {
    return this.pending.length;
  }

  /** The LSN the watermark must reach for every transaction to be in; undefined when none waits. */
  get target(): bigint | undefined {
    return this.pending[this.pending.length - 1]?.lsn;
  }

  /** p50, p95 and max in seconds (nearest rank); undefined when nothing was measured. */
  stats(): { p50: number; p95: number; max: number; count: number } | undefined {
    if (this.seconds.length === 0) return undefined;
    const sorted = [...this.seconds].sort((a, b) => a - b);
    const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
    return { p50: rank(0.5), p95: rank(0.95), max: sorted[sorted.length - 1] as number, count: sorted.length };
  }
}

/** An `orders` row as comparable text: id, amount and timestamps printed exactly (`updated_at` in UTC, µs). */
export interface OrderRow {
  id: string;
  customer: string | null;
  status: string | null;
  amount: string | null;
  updated_at: string | null;
}

const ORDER_COLUMNS = ['id', 'customer', 'status', 'amount', 'updated_at'] as const;

/** `SELECT * FROM orders` as {@link OrderRow}s, by id. */
export async function readSourceOrders(db: pg.ClientBase): Promise<OrderRow[]> {
  const result = await db.query<OrderRow>(
    `SELECT id::text AS id, customer, status, amount::text AS amount,
            to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at
       FROM orders ORDER BY id`,
  );
  return result.rows;
}

function decimalText(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

function timestampText(micros: bigint): string {
  const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  const sub = ((micros % 1000n) + 1000n) % 1000n;
  const iso = new Date(Number(ms)).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  return `${iso.slice(0, -1)}${sub.toString().padStart(3, '0')}Z`;
}

function cellText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (isDecimalValue(value)) return decimalText(value.unscaled, value.scale);
  return String(value);
}

/**
 * The Iceberg table's current snapshot read with our own engine (`scanTable`), as {@link OrderRow}s by id. The
 * table must have the columns of {@link createOrdersTable}.
 */
export async function readIcebergOrders(io: FileIO, metadata: TableMetadata): Promise<OrderRow[]> {
  const schema = currentSchema(metadata);
  const fields = ORDER_COLUMNS.map((name) => {
    const field = schema.fields.find((f) => f.name === name);
    if (!field) throw new Error(`the Iceberg table has no column "${name}"`);
    return field;
  });
  const rows: OrderRow[] = [];
  for await (const batch of scanTable(io, metadata)) {
    const columns = fields.map((f) => batch.columns.get(f.id) ?? []);
    for (let r = 0; r < batch.rowCount; r++) {
      const [id, customer, status, amount, updatedAt] = columns.map((c) => c[r]);
      rows.push({
        id: cellText(id) ?? '',
        customer: cellText(customer),
        status: cellText(status),
        amount: cellText(amount),
        updated_at: typeof updatedAt === 'bigint' ? timestampText(updatedAt) : cellText(updatedAt),
      });
    }
  }
  return rows.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0));
}

/** Differences between the source and Iceberg rows, one line each, at most `limit`; empty when they match. */
export function diffOrders(source: readonly OrderRow[], iceberg: readonly OrderRow[], limit = 5): string[] {
  const out: string[] = [];
  const byId = new Map(iceberg.map((r) => [r.id, r]));
  if (byId.size !== iceberg.length) out.push(`Iceberg holds ${iceberg.length - byId.size} duplicate ids`);
  const seen = new Set<string>();
  for (const row of source) {
    if (out.length >= limit) return out;
    const other = byId.get(row.id);
    seen.add(row.id);
    if (!other) {
      out.push(`id ${row.id}: in the source, missing in Iceberg`);
      continue;
    }
    const differing = ORDER_COLUMNS.filter((c) => row[c] !== other[c]);
    if (differing.length > 0) {
      out.push(
        `id ${row.id}: ${differing.map((c) => `${c} ${JSON.stringify(row[c])} in the source, ${JSON.stringify(other[c])} in Iceberg`).join('; ')}`,
      );
    }
  }
  for (const row of iceberg) {
    if (out.length >= limit) break;
    if (!seen.has(row.id)) out.push(`id ${row.id}: in Iceberg, not in the source`);
  }
  return out;
}

// ---- the same workload as Debezium change files (the demo's source when no PostgreSQL can be started) ----------

/** The topic of the demo's change files: Debezium names it `<server>.<schema>.<table>`. */
export const DEMO_CHANGE_TOPIC = 'demo.public.orders';

/** One change file the file workload wrote. */
export interface ChangeFileWritten {
  /** Kafka offset of its first record (in its name); the merge's high-water mark reaches it once it is applied. */
  offset: bigint;
  /** When the file was complete in the store (ms since the epoch). */
  writtenAtMs: number;
  changes: number;
}

/** What {@link runOrdersChangeFileWorkload} did, and the table its files describe. */
export interface ChangeFileWorkloadResult {
  files: ChangeFileWritten[];
  changes: number;
  inserts: number;
  updates: number;
  deletes: number;
  elapsedMs: number;
  /** The `orders` table the files describe, by id: what the merged Iceberg table must equal. */
  expected: OrderRow[];
}

/** Options of {@link runOrdersChangeFileWorkload}. */
export interface ChangeFileWorkloadOptions {
  /** Rows of the initial snapshot (op `r`), ids 1…initialRows, in the first file. @default 1000 */
  initialRows?: number;
  /** @default 200 */
  changesPerSecond?: number;
  /** Files written per second, each with its share of the changes. @default 2 */
  filesPerSecond?: number;
  /** @default 15000 */
  durationMs?: number;
  /** @default 1 */
  seed?: number;
  signal?: AbortSignal;
  /** Called after each file is stored (the snapshot file included). */
  onFile?: (file: ChangeFileWritten) => void;
}

const ORDER_CONNECT_FIELDS = [
  { field: 'id', type: 'int64', optional: false },
  { field: 'customer', type: 'string', optional: false },
  { field: 'status', type: 'string', optional: false },
  {
    field: 'amount',
    type: 'bytes',
    optional: true,
    name: 'org.apache.kafka.connect.data.Decimal',
    version: 1,
    parameters: { scale: '2', 'connect.decimal.precision': '12' },
  },
  { field: 'updated_at', type: 'string', optional: false, name: 'io.debezium.time.ZonedTimestamp', version: 1 },
];

const ORDER_ENVELOPE_SCHEMA = {
  type: 'struct',
  name: `${DEMO_CHANGE_TOPIC}.Envelope`,
  optional: false,
  fields: [
    {
      field: 'before',
      type: 'struct',
      optional: true,
      name: `${DEMO_CHANGE_TOPIC}.Value`,
      fields: ORDER_CONNECT_FIELDS,
    },
    {
      field: 'after',
      type: 'struct',
      optional: true,
      name: `${DEMO_CHANGE_TOPIC}.Value`,
      fields: ORDER_CONNECT_FIELDS,
    },
    { field: 'source', type: 'struct', optional: false, name: 'io.debezium.connector.postgresql.Source', fields: [] },
    { field: 'op', type: 'string', optional: false },
    { field: 'ts_ms', type: 'int64', optional: true },
  ],
};

/** Connect's Decimal bytes: the unscaled value, big-endian two's complement, base64. */
function connectDecimal(unscaled: bigint): string {
  const bytes: number[] = [];
  let v = unscaled;
  for (;;) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
    const negative = (bytes[0]! & 0x80) !== 0;
    if ((v === 0n && !negative) || (v === -1n && negative)) break;
  }
  return Buffer.from(bytes).toString('base64');
}

/**
 * The demo workload as Debezium change files, the way the Kafka Connect S3 sink writes them
 * (`<prefix><topic>/partition=0/<topic>+0+<offset>.json`, JSON converter with schemas): first a snapshot file of
 * `initialRows` rows, then a file every `1/filesPerSecond` s with mixed inserts, updates and deletes (the same mix
 * as {@link runOrdersWorkload}). Returns the table the files describe.
 */
export async function runOrdersChangeFileWorkload(
  io: Pick<FileIO, 'write'>,
  prefix: string,
  options: ChangeFileWorkloadOptions = {},
): Promise<ChangeFileWorkloadResult> {
  const initialRows = options.initialRows ?? 1000;
  const changesPerSecond = options.changesPerSecond ?? 200;
  const filesPerSecond = options.filesPerSecond ?? 2;
  const durationMs = options.durationMs ?? 15_000;
  const random = prng(options.seed ?? 1);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const rows = new Map<number, { customer: string; status: string; amountCents: bigint; updatedAtMs: number }>();
  const files: ChangeFileWritten[] = [];
  const totals = { inserts: 0, updates: 0, deletes: 0 };
  let offset = 0n;
  let txId = 1;
  const started = Date.now();

  const image = (id: number) => {
    const r = rows.get(id)!;
    return {
      id,
      customer: r.customer,
      status: r.status,
      amount: connectDecimal(r.amountCents),
      updated_at: `${new Date(r.updatedAtMs).toISOString().slice(0, -1)}000Z`,
    };
  };
  const line = (op: 'r' | 'c' | 'u' | 'd', before: unknown, after: unknown) =>
    JSON.stringify({
      schema: ORDER_ENVELOPE_SCHEMA,
      payload: {
        before,
        after,
        source: { connector: 'postgresql', name: 'demo', db: 'demo', schema: 'public', table: 'orders', txId },
        op,
        ts_ms: Date.now(),
      },
    });
  const writeFile = async (lines: string[], changes: number) => {
    const name = `${DEMO_CHANGE_TOPIC}+0+${offset.toString().padStart(10, '0')}.json`;
    await io.write(`${prefix}${DEMO_CHANGE_TOPIC}/partition=0/${name}`, lines.join('\n') + '\n');
    const file = { offset, writtenAtMs: Date.now(), changes };
    files.push(file);
    offset += BigInt(lines.length);
    options.onFile?.(file);
  };

  const snapshot: string[] = [];
  for (let id = 1; id <= initialRows; id++) {
    rows.set(id, {
      customer: `customer ${id % 97}`,
      status: pick(['new', 'paid', 'shipped']),
      amountCents: BigInt((id * 7) % 100_000),
      updatedAtMs: started - id * 60_000,
    });
    snapshot.push(line('r', null, image(id)));
  }
  await writeFile(snapshot, 0);

  let nextId = initialRows + 1;
  const live = [...rows.keys()];
  const perFile = Math.max(1, Math.round(changesPerSecond / filesPerSecond));
  const intervalMs = 1000 / filesPerSecond;
  for (let k = 1; ; k++) {
    const due = started + k * intervalMs;
    if (due - started > durationMs || options.signal?.aborted) break;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const lines: string[] = [];
    for (let c = 0; c < perFile; c++) {
      txId += 1;
      const roll = random();
      const at = Math.floor(random() * live.length);
      const target = roll < 0.7 && live.length > 0 ? live[at] : undefined;
      if (roll < 0.5 && target !== undefined) {
        const before = image(target);
        const r = rows.get(target)!;
        rows.set(target, {
          ...r,
          status: pick(STATUSES),
          amountCents: BigInt(Math.floor(random() * 10_000_000)),
          updatedAtMs: Date.now(),
        });
        lines.push(line('u', before, image(target)));
        totals.updates++;
      } else if (roll < 0.7 && target !== undefined) {
        const before = image(target);
        rows.delete(target);
        live[at] = live[live.length - 1]!;
        live.pop();
        lines.push(line('d', before, null), 'null'); // the sink writes Kafka's tombstone after a delete
        totals.deletes++;
      } else {
        const id = nextId++;
        rows.set(id, {
          customer: `customer ${Math.floor(random() * 97)}`,
          status: 'new',
          amountCents: BigInt(Math.floor(random() * 10_000_000)),
          updatedAtMs: Date.now(),
        });
        live.push(id);
        lines.push(line('c', null, image(id)));
        totals.inserts++;
      }
    }
    await writeFile(lines, perFile);
  }
  const expected: OrderRow[] = [...rows.entries()]
    .sort(([a], [b]) => a - b)
    .map(([id, r]) => ({
      id: String(id),
      customer: r.customer,
      status: r.status,
      amount: decimalText(r.amountCents, 2),
      updated_at: `${new Date(r.updatedAtMs).toISOString().slice(0, -1)}000Z`,
    }));
  return {
    files,
    changes: totals.inserts + totals.updates + totals.deletes,
    ...totals,
    elapsedMs: Date.now() - started,
    expected,
  };
}
