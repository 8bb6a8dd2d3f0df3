import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProcess, tailLog, type ManagedProcess } from './managed-process.js';
import { freePort } from './ports.js';
import { findJava, findS3ProxyJar } from './tools.js';

export interface S3ServerOptions {
  /** Where objects live; a temp dir when omitted (removed on stop). */
  dataDir?: string;
  /** @default a free port */
  port?: number;
  /** @default test-key */
  accessKeyId?: string;
  /** @default test-secret */
  secretAccessKey?: string;
  logDir: string;
}

export interface S3Server {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * Starts s3proxy (a real S3 server, Apache-2.0) on loopback with the filesystem backend, and waits until it
 * answers S3 requests (its `/healthz` endpoint).
 */
export async function startS3Server(opts: S3ServerOptions): Promise<S3Server> {
  const java = findJava();
  const jar = findS3ProxyJar();
  const port = opts.port ?? (await freePort());
  const ownDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'sluice-s3-'));
  const blobDir = path.join(dataDir, 'blobs');
  mkdirSync(blobDir, { recursive: true });
  const accessKeyId = opts.accessKeyId ?? 'test-key';
  const secretAccessKey = opts.secretAccessKey ?? 'test-secret';
  const endpoint = `http://127.0.0.1:${port}`;
  const propsFile = path.join(dataDir, 's3proxy.conf');
  writeFileSync(
    propsFile,
    [
      `s3proxy.endpoint=${endpoint}`,
      's3proxy.authorization=aws-v2-or-v4',
      `s3proxy.identity=${accessKeyId}`,
      `s3proxy.credential=${secretAccessKey}`,
      'jclouds.provider=filesystem-nio2',
      `jclouds.filesystem.basedir=${blobDir}`,
      '',
    ].join('\n'),
  );
  const proc = startProcess(`s3proxy-${port}`, java, ['-Xmx256m', '-jar', jar, '--properties', propsFile], {
    logDir: opts.logDir,
  });
  const deadline = Date.now() + 60_000;
  let healthy = false;
  while (Date.now() < deadline && proc.child.exitCode === null) {
    try {
      const res = await fetch(`${endpoint}/healthz`);
      if (res.ok) {
        healthy = true;
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!healthy) {
    await proc.stop(1000);
    throw new Error(
      `s3proxy did not start on ${endpoint} (${jar}); its log ${proc.logFile} ends:\n${await tailLog(proc.logFile)}`,
    );
  }
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region: 'us-east-1',
    process: proc,
    async stop() {
      await proc.stop(5000);
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
