import type { Command } from 'commander';
import { REPO_ROOT, sluiceEnv } from '../../lib/config.js';
import {
  listAliases,
  parseFilters,
  poolEmbedder,
  rollbackAlias,
  searchCurrentIndex,
} from '../../lib/embedding/index.js';
import { InferencePool } from '../../lib/inference/index.js';
import { resolveWarehouseUri } from '../../lib/stack/warehouse.js';
import { CompositeFileIO } from '../../lib/storage/composite-file-io.js';
import { globals, stackConfig } from '../context.js';

interface RootOption {
  root?: string;
}

/** The index root: `--root`, else `<warehouse>/indexes` of temporal-dev.yml's defaults (as the workers use). */
function indexRoot(opts: RootOption, cmd: Command): string {
  if (opts.root) return opts.root.replace(/\/+$/, '');
  const config = stackConfig(globals(cmd));
  return `${resolveWarehouseUri(config.defaults.warehouse, REPO_ROOT)}/indexes`;
}

function openIo(): CompositeFileIO {
  return new CompositeFileIO({ file: { baseDir: REPO_ROOT }, s3: sluiceEnv.s3 });
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** `sluice index ls | search | rollback`: the versioned ANN indexes that embedding backfills publish. */
export function registerIndex(program: Command): void {
  const index = program.command('index').description('versioned ANN indexes: list, search, roll back');

  index
    .command('ls')
    .description('list indexes with their current version and the versions a rollback can return to')
    .option('--root <uri>', 'index root (default <warehouse>/indexes)')
    .action(async (opts: RootOption, cmd: Command) => {
      const io = openIo();
      try {
        const aliases = await listAliases(io, indexRoot(opts, cmd));
        if (aliases.length === 0) console.log('no indexes');
        for (const a of aliases) {
          console.log(
            `${a.index}@current = ${a.version}  (generation ${a.generation}, ${a.reason} by ${a.by} at ${a.flippedAt})`,
          );
          console.log(`  build: ${a.indexDir}`);
          if (a.previous.length) console.log(`  previous: ${a.previous.map((p) => p.version).join(', ')}`);
        }
      } finally {
        await io.close();
      }
    });

  index
    .command('search')
    .description("search the index's current version with a text query")
    .argument('<index>')
    .requiredOption('--text <query>', 'the query text')
    .option('--filter <col=value>', 'metadata filter (repeatable; all must match)', collect, [])
    .option('-k <n>', 'results', '10')
    .option('--root <uri>', 'index root (default <warehouse>/indexes)')
    .action(async (name: string, opts: RootOption & { text: string; filter: string[]; k: string }, cmd: Command) => {
      const k = Number(opts.k);
      if (!Number.isInteger(k) || k < 1) throw new Error(`-k must be a positive integer, not "${opts.k}"`);
      const io = openIo();
      const pool = new InferencePool({ provider: sluiceEnv.inference.provider, maxWaitMs: 0 });
      try {
        const { alias, hits } = await searchCurrentIndex(io, indexRoot(opts, cmd), name, poolEmbedder(pool), {
          text: opts.text,
          k,
          filter: parseFilters(opts.filter),
        });
        console.log(`${name}@current = ${alias.version} (generation ${alias.generation})`);
        hits.forEach((h, i) => {
          const meta = Object.entries(h.metadata)
            .map(([c, v]) => `${c}=${String(v)}`)
            .join(' ');
          console.log(`${String(i + 1).padStart(3)}. ${h.score.toFixed(4)}  ${h.id}  ${meta}`);
        });
        if (hits.length === 0) console.log('  no match');
      } finally {
        await pool.close();
        await io.close();
      }
    });

  index
    .command('rollback')
    .description('point <index>@current back at its previous version')
    .argument('<index>')
    .option('--root <uri>', 'index root (default <warehouse>/indexes)')
    .action(async (name: string, opts: RootOption, cmd: Command) => {
      const io = openIo();
      try {
        const record = await rollbackAlias(io, indexRoot(opts, cmd), name, { by: 'cli' });
        console.log(`${name}@current = ${record.version} (generation ${record.generation}, rolled back)`);
      } finally {
        await io.close();
      }
    });
}
