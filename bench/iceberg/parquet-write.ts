/**
 * Micro-benchmark of the Parquet data-file writer: 1M rows of a long id plus five mixed columns (string, double,
 * timestamptz, int, boolean) in the `values.ts` representation (plain JS arrays, ~10% nulls in the string column),
 * written with zstd and full metrics. Prints one line per run and the process's peak RSS.
 *
 * Run: `node --import tsx bench/iceberg/parquet-write.ts [--rows 1000000] [--parallelism 2] [--runs 4]
 * [--typed] [--delta]` (`--typed` passes the numeric columns as typed arrays, the fast path for columns without
 * nulls; `--delta` writes the long and timestamp columns with DELTA_BINARY_PACKED).
 * Peak RSS is per process, so compare parallelism settings in separate runs.
 */
import { writeParquetDataFile, closeEncodePool, type ColumnValues } from '../../lib/iceberg/parquet/index.js';
import type { Schema } from '../../lib/iceberg/types.js';

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const ROWS = arg('rows', 1_000_000);
const PARALLELISM = arg('parallelism', 2);
const RUNS = arg('runs', 4);
const TYPED = process.argv.includes('--typed');
const DELTA = process.argv.includes('--delta');

const schema: Pick<Schema, 'fields'> = {
  fields: [
    { id: 1, name: 'id', required: true, type: { kind: 'long' } },
    { id: 2, name: 'name', required: false, type: { kind: 'string' } },
    { id: 3, name: 'amount', required: false, type: { kind: 'double' } },
    { id: 4, name: 'updated_at', required: false, type: { kind: 'timestamptz' } },
    { id: 5, name: 'quantity', required: false, type: { kind: 'int' } },
    { id: 6, name: 'active', required: false, type: { kind: 'boolean' } },
  ],
};

function makeColumns(): Map<number, ColumnValues> {
  const ids: bigint[] = new Array<bigint>(ROWS);
  const names: (string | null)[] = new Array<string | null>(ROWS);
  const amounts: number[] = new Array<number>(ROWS);
  const times: bigint[] = new Array<bigint>(ROWS);
  const quantities: number[] = new Array<number>(ROWS);
  const flags: boolean[] = new Array<boolean>(ROWS);
  let seed = 42;
  const random = (): number => {
    // A fixed LCG, so that every run writes the same data.
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let i = 0; i < ROWS; i += 1) {
    ids[i] = BigInt(i);
    names[i] = i % 10 === 0 ? null : `customer-${(i * 7919) % 50_000}-${i % 7 === 0 ? 'gold' : 'std'}`;
    amounts[i] = Math.round(random() * 1e6) / 100;
    times[i] = 1_700_000_000_000_000n + BigInt(i) * 1_000n;
    quantities[i] = i % 1000;
    flags[i] = i % 3 === 0;
  }
  if (TYPED) {
    return new Map<number, ColumnValues>([
      [1, BigInt64Array.from(ids)],
      [2, names],
      [3, Float64Array.from(amounts)],
      [4, BigInt64Array.from(times)],
      [5, Int32Array.from(quantities)],
      [6, flags],
    ]);
  }
  return new Map<number, ColumnValues>([
    [1, ids],
    [2, names],
    [3, amounts],
    [4, times],
    [5, quantities],
    [6, flags],
  ]);
}

async function run(): Promise<void> {
  const columns = makeColumns();
  const inputRss = process.memoryUsage().rss;
  for (let r = 0; r < RUNS; r += 1) {
    const started = performance.now();
    // Process CPU time counts the encoding worker threads too: a load-independent cost to compare.
    const cpuBefore = process.cpuUsage();
    const result = await writeParquetDataFile({
      schema,
      columns,
      parallelism: PARALLELISM,
      integerEncoding: DELTA ? 'delta' : 'plain',
    });
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    console.log(
      `run ${r + 1}${r === 0 ? ' (cold)' : ''}: ${seconds.toFixed(3)} s wall, ${cpuSeconds.toFixed(3)} s CPU, ` +
        `${(ROWS / seconds / 1e6).toFixed(2)} M rows/s, ` +
        `${(result.bytes.length / 2 ** 20).toFixed(1)} MiB, ${result.splitOffsets.length} row group(s)`,
    );
  }
  // maxRSS is in KiB on Linux.
  console.log(
    `rows ${ROWS}, parallelism ${PARALLELISM}, ${TYPED ? 'typed arrays' : 'JS arrays'}` +
      `${DELTA ? ', delta integers' : ''}; ` +
      `peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB ` +
      `(${(inputRss / 2 ** 20).toFixed(0)} MiB with only the input built)`,
  );
  await closeEncodePool();
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
