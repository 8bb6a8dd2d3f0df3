import type pg from 'pg';

/**
 * The catch-up benchmark's backlog on the demo `orders` table (ids 1..`rows`): transactions of 10,000 changes on
 * distinct keys, 6,000 updates, 2,500 inserts of new ids above `rows` and 1,500 deletes, until at least `changes`
 * are written. Shared by `run.ts catchup` and `profile-catchup.ts`, so that both measure the same backlog.
 * Returns the number of changes written (a multiple of 10,000).
 */
export async function writeOrdersBacklog(db: pg.ClientBase, rows: number, changes: number): Promise<number> {
  let written = 0;
  let next = rows + 1;
  for (let k = 0; written < changes; k++) {
    const lo = (k * 10_000) % rows;
    await db.query('BEGIN');
    await db.query(
      `UPDATE orders SET status = 'paid', amount = amount + 1, updated_at = now() WHERE id > $1 AND id <= $1 + 6000`,
      [lo],
    );
    await db.query(
      `INSERT INTO orders SELECT g, 'late ' || g, 'new', g % 1000, now() FROM generate_series($1::bigint, $1 + 2499) g`,
      [next],
    );
    await db.query('DELETE FROM orders WHERE id > $1 + 6000 AND id <= $1 + 7500', [lo]);
    await db.query('COMMIT');
    next += 2500;
    written += 10_000;
  }
  return written;
}
