import { execFile } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';
import { findPostgresBinDir, isRoot, lookupUser } from './tools.js';

const run = promisify(execFile);

export interface PostgresClusterOptions {
  /** Data directory; a new temp dir when omitted (and removed on stop). */
  dataDir?: string;
  /** @default a free port */
  port?: number;
  /** Extra `postgresql.conf` lines. `wal_level=logical` is always set. */
  settings?: Record<string, string | number>;
}

export interface PostgresCluster {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly dataDir: string;
  /** `postgres://user@127.0.0.1:port/db` */
  url(database?: string): string;
  stop(): Promise<void>;
}

/**
 * Starts a private PostgreSQL cluster: `initdb` in its own directory, a free port, `wal_level=logical`, trust
 * authentication on loopback only. As root, the server runs as the `postgres` user (initdb refuses root).
 */
export async function startPostgresCluster(opts: PostgresClusterOptions = {}): Promise<PostgresCluster> {
  const bin = findPostgresBinDir();
  const ownDir = !opts.dataDir;
  const base = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'sluice-pg-'));
  const dataDir = ownDir ? path.join(base, 'data') : base;
  const port = opts.port ?? (await freePort());
  const asUser = isRoot() ? lookupUser('postgres') : undefined;
  if (isRoot() && !asUser) {
    throw new Error('running as root and there is no "postgres" user to run PostgreSQL as; run `npm run setup`');
  }
  const exec = async (program: string, args: string[]) => {
    try {
      return await run(path.join(bin, program), args, {
        uid: asUser?.uid,
        gid: asUser?.gid,
        cwd: base,
        env: { ...process.env, LC_ALL: 'C' },
      });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${program} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
    }
  };

  mkdirSync(base, { recursive: true });
  try {
    if (asUser) chownSync(base, asUser.uid, asUser.gid);
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      await exec('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
      const settings: Record<string, string | number> = {
        wal_level: 'logical',
        max_replication_slots: 20,
        max_wal_senders: 20,
        listen_addresses: "'127.0.0.1'",
        unix_socket_directories: "''",
        fsync: 'off',
        ...opts.settings,
      };
      appendFileSync(
        path.join(dataDir, 'postgresql.conf'),
        '\n# sluice\n' +
          Object.entries(settings)
            .map(([k, v]) => `${k} = ${v}\n`)
            .join(''),
      );
    }
    await exec('pg_ctl', [
      '-D',
      dataDir,
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${port}`,
      '-l',
      path.join(dataDir, 'server.log'),
      'start',
    ]);
  } catch (err) {
    // A cluster that failed to start leaves nothing behind that the caller did not ask for.
    if (ownDir) rmSync(base, { recursive: true, force: true });
    throw err;
  }

  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    dataDir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async stop() {
      await exec('pg_ctl', ['-D', dataDir, '-w', '-m', 'fast', 'stop']).catch(() => undefined);
      if (ownDir) rmSync(base, { recursive: true, force: true });
    },
  };
}
