import { WorkflowNotFoundError } from '@temporalio/client';
import type { Command } from 'commander';
import { REPO_ROOT, sluiceEnv } from '../../lib/config.js';
import { listQuarantine, type QuarantineEntry, type QuarantineFilter } from '../../lib/cdc/quarantine-store.js';
import { resolveWarehouseUri } from '../../lib/stack/warehouse.js';
import { CompositeFileIO } from '../../lib/storage/index.js';
import { cdcFileMergeWorkflowId, cdcMergeWorkflowId } from '../../schemas/cdc.js';
import { SchemaResolution } from '../../schemas/cdc-operations.js';
import {
  cdcMergeAddTableUpdate,
  cdcMergeForgetUpdate,
  cdcMergeReplayUpdate,
  cdcMergeResolveSchemaUpdate,
} from '../../workflows/cdc-merge-operations.js';
import { clientFor, globals, stackConfig, type GlobalOptions } from '../context.js';

/**
 * `sluice cdc …`: the operator's commands for a running CDC merge. `forget`, `resolve` and `quarantine replay` are
 * updates on the source's merge workflow (`cdc/<source>`), which runs them between batches and answers with what it
 * did; `quarantine ls` reads the quarantine files in the warehouse directly, so it works while no merge runs.
 */

/** The source of a table given as `<source>.<schema>.<table>` (the default Iceberg name), unless `--source` says. */
export function sourceOfTable(table: string, source: string | undefined): string {
  if (source) return source;
  const parts = table.split('.');
  if (parts.length === 3) return parts[0]!;
  throw new Error(
    `cannot tell the source of table "${table}"; pass --source, or name the Iceberg table as <source>.<schema>.<table>`,
  );
}

/** One line per record: id (short), when, error kind, table, commit LSN, replay mark and the message. */
export function formatQuarantineEntries(entries: readonly QuarantineEntry[]): string[] {
  return entries.map((e) => {
    const status = e.mark ? `${e.mark.outcome} ${e.mark.at}` : 'pending';
    const day = /(\d{4}-\d{2}-\d{2})\.jsonl$/.exec(e.file)?.[1] ?? '';
    return (
      `${e.id.slice(0, 12)}  ${day}  ${e.record.errorKind.padEnd(28)} ${(e.record.table ?? '-').padEnd(24)} ` +
      `${(e.record.commitLsn ?? '-').padEnd(12)} ${status.padEnd(10)} ${e.record.message}` +
      (e.mark?.reason ? ` [not applied: ${e.mark.reason}]` : '')
    );
  });
}

/** The warehouse URI and a FileIO over it: `--warehouse`, else temporal-dev.yml's `defaults.warehouse`. */
function warehouseFor(g: GlobalOptions, override: string | undefined) {
  const warehouse = resolveWarehouseUri(override ?? stackConfig(g).defaults.warehouse, REPO_ROOT);
  const io = new CompositeFileIO({
    file: { baseDir: REPO_ROOT },
    ...(warehouse.startsWith('s3://') ? { s3: sluiceEnv.s3 } : {}),
  });
  return { warehouse, io };
}

async function withMerge<T>(
  cmd: Command,
  sourceName: string,
  work: (handle: ReturnType<Awaited<ReturnType<typeof clientFor>>['client']['workflow']['getHandle']>) => Promise<T>,
  /** Also a change-file source's merge (only `quarantine replay` works on both). */
  orFileMerge = false,
): Promise<T> {
  const g = globals(cmd);
  const { client, connection } = await clientFor(g, stackConfig(g));
  try {
    // A PostgreSQL source's merge, else (when asked) a change-file source's.
    const ids = [cdcMergeWorkflowId(sourceName), ...(orFileMerge ? [cdcFileMergeWorkflowId(sourceName)] : [])];
    for (const id of ids) {
      const handle = client.workflow.getHandle(id);
      const status = await handle.describe().then(
        (d) => d.status.name,
        (err: unknown) => {
          if (err instanceof WorkflowNotFoundError) return undefined;
          throw err;
        },
      );
      if (status === 'RUNNING') return await work(handle);
    }
    throw new Error(`no running merge for source "${sourceName}" (${ids.join(' and ')}: not running)`);
  } finally {
    await connection.close();
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerCdc(program: Command): void {
  const cdc = program.command('cdc').description('operate CDC merges: forget keys, resolve schema changes, quarantine');

  cdc
    .command('forget')
    .description('delete a key now and purge it from every snapshot and file after the retention window')
    .requiredOption('--table <table>', 'source schema.table, or the Iceberg table <source>.<schema>.<table>')
    .requiredOption(
      '--key <value>',
      'a key value as PostgreSQL text; repeat for each column of a composite key',
      collect,
    )
    .option('--source <name>', 'the source (default: the first part of a <source>.<schema>.<table> name)')
    .option('--purge-now', "purge the table's history at once instead of after the merge's forgetRetentionMs")
    .action(async (opts: { table: string; key: string[]; source?: string; purgeNow?: boolean }, cmd: Command) => {
      const sourceName = sourceOfTable(opts.table, opts.source);
      const request = { table: opts.table, key: opts.key, ...(opts.purgeNow ? { retentionMs: 0 } : {}) };
      const result = await withMerge(cmd, sourceName, (h) =>
        h.executeUpdate(cdcMergeForgetUpdate, { args: [request] }),
      );
      console.log(
        `forgot key (${opts.key.join(', ')}) of ${result.icebergTable}: ${result.deleted} row(s) deleted` +
          (result.snapshotId ? ` in snapshot ${result.snapshotId}` : '') +
          `, ${result.quarantineRecordsRemoved} quarantine record(s) removed; purge of old files due ${result.purgeDueAt}`,
      );
    });

  cdc
    .command('add-table')
    .description("add a source table to a running source's merge (the same slot and publication)")
    .requiredOption('--source <name>', 'the source')
    .requiredOption('--table <table>', 'source schema.table')
    .option('--key <column>', 'a key column, for a table without a primary key; repeat for each', collect)
    .option('--buckets <n>', 'buckets of bucket(N, key)', (v) => Number(v))
    .option('--iceberg-table <name>', 'the Iceberg table (default <source>.<schema>.<table>)')
    .action(
      async (
        opts: { source: string; table: string; key?: string[]; buckets?: number; icebergTable?: string },
        cmd: Command,
      ) => {
        const request = {
          table: opts.table,
          ...(opts.key ? { key: opts.key } : {}),
          ...(opts.buckets !== undefined ? { buckets: opts.buckets } : {}),
          ...(opts.icebergTable ? { icebergTable: opts.icebergTable } : {}),
        };
        const result = await withMerge(cmd, opts.source, (h) =>
          h.executeUpdate(cdcMergeAddTableUpdate, { args: [request] }),
        );
        console.log(
          result.alreadyOnboarded
            ? `${opts.table} → ${result.icebergTable} was already added (watermark ${result.watermark})`
            : `added ${opts.table} → ${result.icebergTable}: ${result.rowsCopied} row(s) copied, watermark ` +
                `${result.watermark}, ${result.quarantined} quarantined`,
        );
      },
    );

  cdc
    .command('resolve')
    .description('resolve a table blocked by an incompatible source schema change')
    .requiredOption('--table <table>', 'the blocked table (source schema.table or Iceberg name)')
    .requiredOption('--action <action>', 'apply | skip | re-bootstrap')
    .option('--source <name>', 'the source (default: from a <source>.<schema>.<table> name)')
    .action(async (opts: { table: string; action: string; source?: string }, cmd: Command) => {
      const action = SchemaResolution.parse(opts.action);
      const sourceName = sourceOfTable(opts.table, opts.source);
      const result = await withMerge(cmd, sourceName, (h) =>
        h.executeUpdate(cdcMergeResolveSchemaUpdate, { args: [{ table: opts.table, action }] }),
      );
      console.log(JSON.stringify(result, null, 2));
    });

  const quarantine = cdc.command('quarantine').description('inspect and replay quarantined changes');
  quarantine
    .command('ls')
    .description("list a source's quarantined changes")
    .requiredOption('--source <name>', 'the source')
    .option('--table <table>', 'only this source table (schema.table)')
    .option('--error <kind>', 'only this error kind, e.g. value-conversion')
    .option('--type <failure>', 'only this failure type, e.g. InvalidInput')
    .option('--status <status>', 'pending | done | all', 'pending')
    .option('--warehouse <uri>', 'the warehouse (default: temporal-dev.yml defaults.warehouse)')
    .option('--json', 'one JSON object per record, with the raw event')
    .action(
      async (
        opts: {
          source: string;
          table?: string;
          error?: string;
          type?: string;
          status: string;
          warehouse?: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        if (!['pending', 'done', 'all'].includes(opts.status)) {
          throw new Error(`--status must be pending, done or all, not "${opts.status}"`);
        }
        const { warehouse, io } = warehouseFor(globals(cmd), opts.warehouse);
        try {
          const filter: QuarantineFilter = {
            status: opts.status as QuarantineFilter['status'],
            ...(opts.table ? { table: opts.table } : {}),
            ...(opts.error ? { errorKind: opts.error } : {}),
            ...(opts.type ? { failureType: opts.type } : {}),
          };
          const entries = await listQuarantine(io, warehouse, opts.source, filter);
          if (opts.json) for (const e of entries) console.log(JSON.stringify(e));
          else {
            for (const line of formatQuarantineEntries(entries)) console.log(line);
            console.log(`${entries.length} record(s)`);
          }
        } finally {
          await io.close();
        }
      },
    );
  quarantine
    .command('replay')
    .description('re-apply quarantined changes through the merge (after fixing their cause) and mark them replayed')
    .requiredOption('--source <name>', 'the source')
    .option('--table <table>', 'only this source table')
    .option('--error <kind>', 'only this error kind')
    .option('--id <id>', 'only this record id (full, from ls --json); repeatable', collect)
    .action(async (opts: { source: string; table?: string; error?: string; id?: string[] }, cmd: Command) => {
      const result = await withMerge(
        cmd,
        opts.source,
        (h) =>
          h.executeUpdate(cdcMergeReplayUpdate, {
            args: [
              {
                ...(opts.table ? { table: opts.table } : {}),
                ...(opts.error ? { errorKind: opts.error } : {}),
                ...(opts.id ? { ids: opts.id } : {}),
              },
            ],
          }),
        true,
      );
      console.log(
        `selected ${result.selected}, replayed ${result.replayed}, still failing ${result.stillFailing}` +
          (result.skippedUnknownTable ? `, ${result.skippedUnknownTable} of tables this merge does not write` : '') +
          (result.skippedNewer ? `, ${result.skippedNewer} superseded by a newer change of their key` : ''),
      );
    });
}
