/**
 * The Iceberg engine benchmarks of issue 3, each engine in its own process, every comparison in one run:
 *
 *   append  1M rows (long id + string, double, timestamptz, int, boolean) into an unpartitioned table:
 *           ours (`appendColumns`) vs pyiceberg `append`; throughput of the append call, data already in memory.
 *   upsert  100k changes (80% updates, 10% inserts, 10% deletes) into a 1M-row `bucket[16](id)` table: ours
 *           (`upsertRows`, position deletes) vs pyiceberg (`upsert` + `delete`) vs Spark `MERGE INTO` (local[2],
 *           merge-on-read); wall time of the whole process, engine start included.
 *   scan    a full scan after 10 rounds of 1% changes on a 1M-row table: ours with position deletes vs ours on
 *           the compacted table (`compactTable`) vs Spark on the same workload written with
 *           equality deletes (bench-only writer); Spark on our position-delete table for context.
 *
 * Every base table is written by our engine (setup-tables.ts), identically for every engine, before any timing.
 * Inputs come from generate_data.py (fixed seed), generated once per row count and reused.
 *
 * Run: `node --import tsx bench/iceberg/run.ts [append|upsert|scan|all] [--rows N] [--repeats N] [--quick]
 * [--work DIR] [--spark-jit c1|c2]`. `--quick` is a smoke run (100k rows, 1 repeat). Writes
 * bench/results/iceberg-<name>.json (figures) and iceberg-<name>-runs.json (every run's raw measurements).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../lib/config.js';
import { median, writeResults, type Figure } from '../lib/results.js';
import { runWorker, type WorkerRun } from './worker-process.js';

type Benchmark = 'append' | 'upsert' | 'scan';

function argValue(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const quick = process.argv.includes('--quick');
const ROWS = Number(argValue('rows') ?? (quick ? 100_000 : 1_000_000));
const REPEATS = Number(argValue('repeats') ?? (quick ? 1 : 3));
const ROUNDS = 10;
const WORK_DIR = path.resolve(argValue('work') ?? path.join(os.tmpdir(), 'sluice-bench-iceberg'));
const SPARK_JIT = argValue('spark-jit') ?? 'c1';
const PYTHON = path.join(REPO_ROOT, '.tools/venv/bin/python');
const HERE = path.join(REPO_ROOT, 'bench/iceberg');
const DATA_DIR = path.join(WORK_DIR, `data-${ROWS}`);
const COMMAND = `node --import tsx bench/iceberg/run.ts ${process.argv.slice(2).join(' ')}`.trim();

/** The catalog and warehouse of one benchmark, recreated on every run. */
function freshBenchDir(name: Benchmark): string[] {
  const dir = path.join(WORK_DIR, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return ['--data', DATA_DIR, '--catalog', path.join(dir, 'catalog.db'), '--warehouse', path.join(dir, 'warehouse')];
}

type Engine = 'ours' | 'pyiceberg' | 'spark' | 'setup';

function workerCommand(engine: Engine): { command: string; args: string[] } {
  switch (engine) {
    case 'ours':
      return { command: process.execPath, args: ['--import', 'tsx', path.join(HERE, 'ours-worker.ts')] };
    case 'setup':
      return { command: process.execPath, args: ['--import', 'tsx', path.join(HERE, 'setup-tables.ts')] };
    case 'pyiceberg':
      return { command: PYTHON, args: [path.join(HERE, 'pyiceberg_worker.py')] };
    case 'spark':
      return { command: PYTHON, args: [path.join(HERE, 'spark_worker.py'), '--jit', SPARK_JIT] };
  }
}

/** One measured run, as kept in the -runs.json file. */
interface RunRecord extends WorkerRun {
  case: string;
  repeat: number;
}

async function measure(engine: Engine, label: string, args: string[], repeat: number): Promise<RunRecord> {
  const { command, args: base } = workerCommand(engine);
  const spawnedAt = Date.now();
  const timed = engine === 'pyiceberg' || engine === 'spark' ? ['--spawned-at', String(spawnedAt)] : [];
  process.stderr.write(`  ${label} (repeat ${repeat}) … `);
  const run = await runWorker(label, command, [...base, ...args, ...timed], { cwd: REPO_ROOT });
  process.stderr.write(`${(run.wallMs / 1000).toFixed(1)} s wall\n`);
  return { case: label, repeat, ...run };
}

function num(run: RunRecord, key: string): number {
  const v = run.result[key];
  if (typeof v !== 'number')
    throw new Error(`${run.case} result has no number "${key}": ${JSON.stringify(run.result)}`);
  return v;
}

/** The median over the runs of one case of a worker result field (or `wallMs` / `treePeakRssMiB`). */
function med(runs: RunRecord[], label: string, key: string): number {
  const picked = runs.filter((r) => r.case === label);
  if (picked.length === 0) throw new Error(`no runs of ${label}`);
  return median(
    picked.map((r) => (key === 'wallMs' ? r.wallMs : key === 'treePeakRssMiB' ? r.treePeakRssMiB : num(r, key))),
  );
}

/** Rotates the case order per repeat, so that no engine always runs first (or right after a heavy one). */
function interleaved<T>(cases: T[], repeat: number): T[] {
  const k = repeat % cases.length;
  return [...cases.slice(k), ...cases.slice(0, k)];
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function saveRuns(name: string, runs: RunRecord[], extra: Record<string, unknown> = {}): void {
  const file = path.join(REPO_ROOT, 'bench/results', `iceberg-${name}-runs.json`);
  writeFileSync(
    file,
    JSON.stringify({ command: COMMAND, rows: ROWS, repeats: REPEATS, ...extra, runs }, null, 2) + '\n',
  );
}

async function ensureData(): Promise<void> {
  const expected = path.join(DATA_DIR, 'expected.json');
  if (existsSync(expected)) {
    const meta = JSON.parse(readFileSync(expected, 'utf8')) as { rows: number; rounds: number };
    if (meta.rows === ROWS && meta.rounds === ROUNDS) return;
  }
  process.stderr.write(`generating ${ROWS} rows into ${DATA_DIR} … `);
  const run = await runWorker(
    'generate_data.py',
    PYTHON,
    [path.join(HERE, 'generate_data.py'), '--out', DATA_DIR, '--rows', String(ROWS), '--rounds', String(ROUNDS)],
    { cwd: REPO_ROOT },
  );
  process.stderr.write(`${(run.wallMs / 1000).toFixed(1)} s\n`);
}

// ---- append ---------------------------------------------------------------------------------------------

async function benchAppend(): Promise<void> {
  process.stderr.write('append\n');
  const dirArgs = freshBenchDir('append');
  const runs: RunRecord[] = [];
  const cases: Engine[] = ['ours', 'pyiceberg'];
  for (let r = 1; r <= REPEATS; r++) {
    for (const engine of interleaved(cases, r)) {
      runs.push(
        await measure(engine, `append_${engine}`, ['append', ...dirArgs, '--table', `append_${engine}_${r}`], r),
      );
    }
  }
  const oursMs = med(runs, 'append_ours', 'appendMs');
  const pyMs = med(runs, 'append_pyiceberg', 'appendMs');
  const oursRate = Math.round((ROWS / oursMs) * 1000);
  const pyRate = Math.round((ROWS / pyMs) * 1000);
  const oursRss = med(runs, 'append_ours', 'peakRssMiB');
  const pyRss = med(runs, 'append_pyiceberg', 'peakRssMiB');
  const oursCpu = med(runs, 'append_ours', 'appendCpuMs');
  const pyCpu = med(runs, 'append_pyiceberg', 'appendCpuMs');
  const figures: Figure[] = [
    {
      name: 'append_throughput',
      value: oursRate,
      unit: 'rows/s',
      peer: { name: 'pyiceberg 0.12 Table.append', value: pyRate },
      ratio: round(oursRate / pyRate),
      ratioMeaning: 'ours ÷ pyiceberg throughput (> 1: ours is faster)',
      goal: "≥ 1.0× pyiceberg's throughput",
    },
    {
      name: 'append_time',
      value: oursMs,
      unit: 'ms',
      peer: { name: 'pyiceberg 0.12 Table.append', value: pyMs },
      ratio: round(oursMs / pyMs),
      ratioMeaning: 'ours ÷ pyiceberg time of the append call (< 1: ours is faster)',
      goal: null,
    },
    {
      name: 'append_cpu_time',
      value: oursCpu,
      unit: 'ms',
      peer: { name: 'pyiceberg 0.12 Table.append', value: pyCpu },
      ratio: round(oursCpu / pyCpu),
      ratioMeaning: 'ours ÷ pyiceberg CPU time (user + system, all threads) of the append call',
      goal: null,
    },
    {
      name: 'append_peak_rss',
      value: oursRss,
      unit: 'MiB',
      peer: { name: 'pyiceberg 0.12 process', value: pyRss },
      ratio: round(oursRss / pyRss),
      ratioMeaning: 'ours ÷ pyiceberg peak RSS of the whole worker process, input data included',
      goal: null,
    },
  ];
  const notes = [
    `${ROWS} rows from base.parquet, read into memory before the timer starts (ours: values.ts JS arrays, ` +
      `median load ${med(runs, 'append_ours', 'loadMs')} ms; pyiceberg: a pyarrow Table, ` +
      `${med(runs, 'append_pyiceberg', 'loadMs')} ms). Timed: the append call, from in-memory rows to the committed snapshot.`,
    'Both engines: SQLite SqlCatalog, file:// warehouse, unpartitioned table, zstd Parquet, one data file.',
    `Medians of ${REPEATS} runs per engine, engines interleaved, a fresh process per run. Peak RSS: ours ` +
      'process.resourceUsage().maxRSS, pyiceberg getrusage(RUSAGE_SELF).ru_maxrss.',
  ];
  const file = writeResults('iceberg-append', COMMAND, figures, notes);
  saveRuns('append', runs);
  process.stderr.write(`wrote ${file}\n`);
}

// ---- upsert ---------------------------------------------------------------------------------------------

async function benchUpsert(): Promise<void> {
  process.stderr.write('upsert\n');
  const dirArgs = freshBenchDir('upsert');
  const engines = ['ours', 'pyiceberg', 'spark'] as const;
  const tables = engines.flatMap((e) => Array.from({ length: REPEATS }, (_, i) => `upsert_${e}_${i + 1}`));
  process.stderr.write(`  writing ${tables.length} base tables with our engine (untimed) … `);
  const setup = await runWorker(
    'setup upsert-bases',
    process.execPath,
    [...workerCommand('setup').args, 'upsert-bases', ...dirArgs, '--tables', tables.join(',')],
    { cwd: REPO_ROOT },
  );
  process.stderr.write(`${(setup.wallMs / 1000).toFixed(1)} s\n`);

  const runs: RunRecord[] = [];
  for (let r = 1; r <= REPEATS; r++) {
    for (const engine of interleaved([...engines], r)) {
      runs.push(
        await measure(engine, `upsert_${engine}`, ['upsert', ...dirArgs, '--table', `upsert_${engine}_${r}`], r),
      );
    }
  }
  process.stderr.write('  verifying every table with our reader … ');
  const verify = await runWorker(
    'setup verify',
    process.execPath,
    [...workerCommand('setup').args, 'verify', ...dirArgs, '--tables', tables.join(','), '--expect', 'afterChanges'],
    { cwd: REPO_ROOT },
  );
  process.stderr.write(verify.result.allOk ? 'all match\n' : 'MISMATCH\n');

  const wall = Object.fromEntries(engines.map((e) => [e, med(runs, `upsert_${e}`, 'wallMs')])) as Record<
    (typeof engines)[number],
    number
  >;
  const rss = Object.fromEntries(engines.map((e) => [e, med(runs, `upsert_${e}`, 'peakRssMiB')])) as typeof wall;
  const cpu = Object.fromEntries(engines.map((e) => [e, med(runs, `upsert_${e}`, 'cpuMs')])) as typeof wall;
  const peerName = {
    pyiceberg: 'pyiceberg 0.12 upsert + delete',
    spark: `Spark 4.1 MERGE INTO (local[2], ${SPARK_JIT})`,
  };
  const figures: Figure[] = [];
  for (const peer of ['pyiceberg', 'spark'] as const) {
    figures.push(
      {
        name: `upsert_wall_time_vs_${peer}`,
        value: wall.ours,
        unit: 'ms',
        peer: { name: peerName[peer], value: wall[peer] },
        ratio: round(wall[peer] / wall.ours),
        ratioMeaning: `${peer} ÷ ours wall time, process start included (speed-up; > 1: ours is faster)`,
        goal:
          peer === 'pyiceberg'
            ? '≥ 5× pyiceberg (wall time including start)'
            : '≥ 2× Spark (wall time including JVM start)',
      },
      {
        name: `upsert_cpu_time_vs_${peer}`,
        value: cpu.ours,
        unit: 'ms',
        peer: { name: peerName[peer], value: cpu[peer] },
        ratio: round(cpu[peer] / cpu.ours),
        ratioMeaning: `${peer} ÷ ours CPU time of the whole process tree (user + system)`,
        goal: null,
      },
      {
        name: `upsert_peak_rss_vs_${peer}`,
        value: rss.ours,
        unit: 'MiB',
        peer: { name: peerName[peer], value: rss[peer] },
        ratio: round(rss.ours / rss[peer]),
        ratioMeaning: `ours ÷ ${peer} peak RSS (< 1: ours uses less)`,
        goal: null,
      },
    );
  }
  const phases = (engine: string, keys: string[]) =>
    keys.map((k) => `${k} ${med(runs, `upsert_${engine}`, k)} ms`).join(', ');
  const notes = [
    `${ROWS / 10} changes (80% updates, 10% inserts, 10% deletes, distinct keys) from changes.parquet into a ${ROWS}-row ` +
      'table partitioned by bucket[16](id) with merge-on-read properties. Every engine upserts into its own copy; ' +
      `all ${tables.length} base tables were written by our engine (appendColumns, 16 data files each) before timing.`,
    'Timed: spawn to exit of the engine process (Node + tsx and imports / the Python interpreter and imports / ' +
      'the Python driver plus the JVM), reading changes.parquet included.',
    `Median phases — ours: ${phases('ours', ['startupMs', 'readMs', 'upsertMs'])}; pyiceberg: ` +
      `${phases('pyiceberg', ['importMs', 'loadTableMs', 'readMs', 'upsertMs', 'deleteMs'])}; Spark: ` +
      `${phases('spark', ['sessionMs', 'mergeMs', 'stopMs'])}.`,
    'pyiceberg 0.12 has no merge-on-read writes: it warns and rewrites the affected data files (copy-on-write) for ' +
      'both the upsert and the delete. Spark and ours write position deletes.',
    'Peak RSS: ours process.resourceUsage().maxRSS; pyiceberg getrusage(RUSAGE_SELF); Spark = Python driver ' +
      'RUSAGE_SELF + JVM RUSAGE_CHILDREN (read after the JVM exited and was reaped), an upper bound. For ' +
      'comparison, the largest sum of /proc/<pid>/statm RSS over each process tree, sampled every 100 ms (it counts ' +
      'shared pages once per process, so a JVM fork for a helper command briefly counts twice): medians ours ' +
      `${med(runs, 'upsert_ours', 'treePeakRssMiB')}, pyiceberg ${med(runs, 'upsert_pyiceberg', 'treePeakRssMiB')}, ` +
      `Spark ${med(runs, 'upsert_spark', 'treePeakRssMiB')} MiB.`,
    `Verified after the runs: our reader scanned every table and compared row count and column sums with the ` +
      `generator's expected state: ${verify.result.allOk ? 'all match' : 'MISMATCH, see the runs file'}.`,
    `Medians of ${REPEATS} runs per engine, engines interleaved (rotated order per repeat).`,
  ];
  const file = writeResults('iceberg-upsert', COMMAND, figures, notes);
  saveRuns('upsert', runs, { setup: setup.result, verify: verify.result });
  process.stderr.write(`wrote ${file}\n`);
}

// ---- scan -----------------------------------------------------------------------------------------------

async function benchScan(): Promise<void> {
  process.stderr.write('scan\n');
  const dirArgs = freshBenchDir('scan');
  process.stderr.write(`  writing the scan tables with our engine, ${ROUNDS} rounds (untimed) … `);
  const setup = await runWorker(
    'setup scan-tables',
    process.execPath,
    [...workerCommand('setup').args, 'scan-tables', ...dirArgs, '--rounds', String(ROUNDS)],
    { cwd: REPO_ROOT },
  );
  process.stderr.write(`${(setup.wallMs / 1000).toFixed(1)} s\n`);
  const tables = setup.result.tables as string[];
  const compacted = tables.includes('scan_compacted');

  const cases: { engine: Engine; table: string }[] = [
    { engine: 'ours', table: 'scan_pos' },
    ...(compacted ? [{ engine: 'ours' as const, table: 'scan_compacted' }] : []),
    { engine: 'ours', table: 'scan_eq' },
    { engine: 'spark', table: 'scan_eq' },
    { engine: 'spark', table: 'scan_pos' },
  ];
  const runs: RunRecord[] = [];
  for (let r = 1; r <= REPEATS; r++) {
    for (const c of interleaved(cases, r)) {
      runs.push(await measure(c.engine, `scan_${c.engine}_${c.table}`, ['scan', ...dirArgs, '--table', c.table], r));
    }
  }
  const expected = (JSON.parse(readFileSync(path.join(DATA_DIR, 'expected.json'), 'utf8')) as Record<string, unknown>)
    .afterRounds;
  const wrong = runs.filter((r) => JSON.stringify(r.result.checksums) !== JSON.stringify(expected));
  if (wrong.length) process.stderr.write(`  MISMATCH in ${wrong.map((r) => r.case).join(', ')}\n`);

  const cold = (label: string) => med(runs, label, 'coldMs');
  const warm = (label: string) => med(runs, label, 'warmMs');
  const figures: Figure[] = [];
  const goal = '≤ 1.5× the compacted scan';
  if (compacted) {
    for (const [kind, get] of [
      ['cold', cold],
      ['warm', warm],
    ] as const) {
      figures.push({
        name: `scan_position_deletes_vs_compacted_${kind}`,
        value: get('scan_ours_scan_pos'),
        unit: 'ms',
        peer: { name: 'ours, same table compacted', value: get('scan_ours_scan_compacted') },
        ratio: round(get('scan_ours_scan_pos') / get('scan_ours_scan_compacted')),
        ratioMeaning: `ours with position deletes ÷ ours on the compacted table, ${kind === 'cold' ? 'first scan in a fresh process' : 'second scan in the same process'} (≤ 1.5 meets the goal)`,
        goal,
      });
    }
    const cpu = (label: string) => med(runs, label, 'warmCpuMs');
    figures.push({
      name: 'scan_position_deletes_vs_compacted_cpu',
      value: cpu('scan_ours_scan_pos'),
      unit: 'ms',
      peer: { name: 'ours, same table compacted', value: cpu('scan_ours_scan_compacted') },
      ratio: round(cpu('scan_ours_scan_pos') / cpu('scan_ours_scan_compacted')),
      ratioMeaning:
        'CPU time (user + system, all threads) of the second scan in the process: ours with position deletes ÷ ' +
        'compacted; less sensitive to other load on the machine than wall time',
      goal,
    });
  } else {
    figures.push({
      name: 'scan_position_deletes_cold',
      value: cold('scan_ours_scan_pos'),
      unit: 'ms',
      peer: null,
      ratio: null,
      goal: `${goal} — not measured: ${String(setup.result.compaction)}`,
    });
  }
  figures.push(
    {
      name: 'scan_ours_position_deletes_vs_spark_equality_deletes',
      value: cold('scan_ours_scan_pos'),
      unit: 'ms',
      peer: {
        name: 'Spark 4.1 on the equality-delete table (in-session, JVM start excluded)',
        value: cold('scan_spark_scan_eq'),
      },
      ratio: round(cold('scan_spark_scan_eq') / cold('scan_ours_scan_pos')),
      ratioMeaning: 'Spark ÷ ours, first scan in each process (> 1: ours is faster)',
      goal: null,
    },
    {
      name: 'scan_spark_position_deletes_vs_equality_deletes',
      value: cold('scan_spark_scan_pos'),
      unit: 'ms',
      peer: { name: 'Spark 4.1 on the equality-delete table', value: cold('scan_spark_scan_eq') },
      ratio: round(cold('scan_spark_scan_pos') / cold('scan_spark_scan_eq')),
      ratioMeaning: 'Spark on our position-delete table ÷ Spark on the equality-delete table (context)',
      goal: null,
    },
    {
      name: 'scan_ours_equality_deletes',
      value: cold('scan_ours_scan_eq'),
      unit: 'ms',
      peer: { name: 'ours on the position-delete table', value: cold('scan_ours_scan_pos') },
      ratio: round(cold('scan_ours_scan_eq') / cold('scan_ours_scan_pos')),
      ratioMeaning: 'ours reading equality deletes ÷ ours reading position deletes (context)',
      goal: null,
    },
  );
  for (const c of cases) {
    const label = `scan_${c.engine}_${c.table}`;
    figures.push({
      name: `${label}_peak_rss`,
      value: med(runs, label, 'peakRssMiB'),
      unit: 'MiB',
      peer: null,
      ratio: null,
      goal: null,
    });
  }
  const roundMs = setup.result.roundMs as Record<string, number[]>;
  const notes = [
    `Tables: ${ROWS} rows (bucket[16](id), written by our engine), then ${ROUNDS} rounds of ${ROWS / 100} changes ` +
      '(80% updates, 10% inserts, 10% deletes): scan_pos with upsertRows (position deletes), scan_eq with the ' +
      'BENCH-ONLY equality-delete writer (bench/iceberg/equality-delete-writer.ts; our engine never writes them)' +
      (compacted ? ', scan_compacted = scan_pos workload then compactTable.' : '.'),
    compacted
      ? `compactTable took ${String(setup.result.compactMs)} ms: ` + JSON.stringify(setup.result.compacted)
      : `Compaction: ${String(setup.result.compaction)}; the compacted figure is left out.`,
    `Setup round times (ms), ours upsertRows: ${roundMs.scan_pos?.join(', ')}; equality writer: ${roundMs.scan_eq?.join(', ')}.`,
    'Timed: the scan inside the process (ours: scanTable over every column, summing id, quantity and updated_at; ' +
      'Spark: spark.table(t).write.format("noop"), every column materialized). Each process scans twice: cold ' +
      '(first) and warm (second). Spark wall time with its JVM start is in the runs file.',
    `Warm medians (ms): ${cases.map((c) => `${c.engine} ${c.table} ${warm(`scan_${c.engine}_${c.table}`)}`).join(', ')}. ` +
      `Spark process wall (JVM start included): eq ${med(runs, 'scan_spark_scan_eq', 'wallMs')}, pos ${med(runs, 'scan_spark_scan_pos', 'wallMs')}.`,
    ...(compacted
      ? [
          'Paired per repeat (same repeat, adjacent processes), position deletes ÷ compacted: cold ' +
            pairedRatios(runs, 'coldMs').join(', ') +
            '; warm ' +
            pairedRatios(runs, 'warmMs').join(', ') +
            '.',
        ]
      : []),
    `Every scan's row count and column sums were compared with the generator's expected state: ${wrong.length ? `MISMATCH in ${wrong.map((r) => `${r.case}#${r.repeat}`).join(', ')}` : 'all match'}.`,
    `Medians of ${REPEATS} runs per case, cases interleaved (rotated order per repeat), a fresh process per run.`,
  ];
  const file = writeResults('iceberg-scan', COMMAND, figures, notes);
  saveRuns('scan', runs, { setup: setup.result });
  process.stderr.write(`wrote ${file}\n`);
}

/** Per repeat, ours with position deletes ÷ ours compacted, for one result field. */
function pairedRatios(runs: RunRecord[], key: string): number[] {
  const out: number[] = [];
  for (let r = 1; r <= REPEATS; r++) {
    const pos = runs.find((x) => x.case === 'scan_ours_scan_pos' && x.repeat === r);
    const cmp = runs.find((x) => x.case === 'scan_ours_scan_compacted' && x.repeat === r);
    if (pos && cmp) out.push(round(num(pos, key) / num(cmp, key)));
  }
  return out;
}

async function run(): Promise<void> {
  const which = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'all';
  const all: Record<Benchmark, () => Promise<void>> = { append: benchAppend, upsert: benchUpsert, scan: benchScan };
  const selected = which === 'all' ? (Object.keys(all) as Benchmark[]) : [which as Benchmark];
  for (const name of selected)
    if (!(name in all)) throw new Error(`unknown benchmark ${name}; use append, upsert, scan or all`);
  mkdirSync(WORK_DIR, { recursive: true });
  await ensureData();
  for (const name of selected) await all[name]();
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
