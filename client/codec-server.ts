import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

/** Largest request body the codec server reads. */
export const MAX_CODEC_REQUEST_BYTES = 4 * 1024 * 1024;

/** Options of {@link startCodecServer}. */
export interface CodecServerOptions {
  /** The codec that workers and clients use; the server runs it for the Web UI and the CLI. */
  codec: PayloadCodec;
  /** TCP port; 0 picks a free one (read it from the returned `url`). */
  port: number;
  /**
   * Address to listen on. The server decrypts anything it is sent, so keep it on loopback unless `authToken` is
   * set and the network is trusted.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * Browser origins allowed to call the server (exact match, no wildcards): the Temporal Web UI's origin.
   * @default ['http://localhost:8233', 'http://127.0.0.1:8233'] (the dev server's UI)
   */
  allowedOrigins?: string[];
  /**
   * When set, `/encode` and `/decode` require `Authorization: Bearer <authToken>`. Configure the same token in the
   * UI (codec server "pass access token") or with the CLI's `--codec-auth`.
   * @default undefined (no authentication)
   */
  authToken?: string;
}

/** A running codec server. */
export interface CodecServer {
  /** Base URL, e.g. `http://127.0.0.1:8888`; give it to `temporal server start-dev --ui-codec-endpoint`. */
  url: string;
  /** Stops accepting connections and resolves once open requests have finished. */
  close(): Promise<void>;
}

/** A client mistake, answered with its status and message instead of a 500. */
class CodecRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts an HTTP codec server for the Temporal Web UI and CLI (`POST /encode`, `POST /decode`, `GET /healthz`),
 * following the contract at docs.temporal.io/production-deployment/data-encryption#codec-server-setup.
 *
 * @returns once the server is listening.
 */
export async function startCodecServer({
  codec,
  port,
  host = '127.0.0.1',
  allowedOrigins = ['http://localhost:8233', 'http://127.0.0.1:8233'],
  authToken,
}: CodecServerOptions): Promise<CodecServer> {
  const origins = new Set(allowedOrigins);
  const tokenDigest = authToken === undefined ? undefined : sha256(`Bearer ${authToken}`);

  const server = createServer((req, res) => {
    handleRequest(req, res).catch((err: unknown) => {
      // handleRequest answers every error itself; this only fires if writing that answer failed.
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    setCorsHeaders(req, res);
    const path = new URL(req.url ?? '/', 'http://codec-server').pathname;
    try {
      if (req.method === 'OPTIONS') {
        res.writeHead(204).end();
        return;
      }
      if (path === '/healthz') {
        requireMethod(req, 'GET');
        sendJson(res, 200, { status: 'ok' });
        return;
      }
      if (path !== '/encode' && path !== '/decode') {
        throw new CodecRequestError(404, `no route ${path}; use POST /encode, POST /decode or GET /healthz`);
      }
      requireMethod(req, 'POST');
      requireAuth(req);
      const payloads = parsePayloadsBody(await readBody(req));
      let result: Payload[];
      if (path === '/encode') {
        result = await codec.encode(payloads);
      } else {
        try {
          result = await codec.decode(payloads);
        } catch (err) {
          throw new CodecRequestError(400, `decode failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      sendJson(res, 200, { payloads: result.map(payloadToJson) });
    } catch (err) {
      if (err instanceof CodecRequestError) {
        if (err.status === 413) {
          // Do not offer a client that sends oversized bodies another request on this connection.
          res.setHeader('Connection', 'close');
        }
        sendJson(res, err.status, { error: err.message });
      } else {
        sendJson(res, 500, { error: `codec server error: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
  }

  function setCorsHeaders(req: IncomingMessage, res: ServerResponse): void {
    // Caches must not hand one origin's answer (with or without CORS headers) to another origin.
    res.setHeader('Vary', 'Origin');
    const origin = req.headers.origin;
    if (origin === undefined || !origins.has(origin)) {
      return;
    }
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Allow-Methods', 'POST, GET, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'X-Namespace, Content-Type, Authorization');
    // The UI's "Include cross-origin credentials" option fails without this.
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    // Chrome's Private Network Access asks before a public UI (e.g. Temporal Cloud) may call a loopback server.
    if (req.headers['access-control-request-private-network'] === 'true') {
      res.setHeader('Access-Control-Allow-Private-Network', 'true');
    }
  }

  function requireAuth(req: IncomingMessage): void {
    if (tokenDigest === undefined) {
      return;
    }
    const given = req.headers.authorization;
    // Comparing fixed-length digests keeps the comparison constant-time whatever the header's length.
    if (given === undefined || !timingSafeEqual(sha256(given), tokenDigest)) {
      throw new CodecRequestError(401, 'missing or wrong Authorization header; send "Authorization: Bearer <token>"');
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${urlHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive sockets (browsers, fetch) would otherwise hold close() open until they time out.
        server.closeIdleConnections();
      }),
  };
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function requireMethod(req: IncomingMessage, method: string): void {
  if (req.method !== method) {
    throw new CodecRequestError(405, `${req.method ?? '?'} is not allowed on ${req.url ?? '/'}; use ${method}`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const tooLarge = new CodecRequestError(
      413,
      `request body is larger than ${MAX_CODEC_REQUEST_BYTES} bytes; send fewer payloads per request`,
    );
    // Keep draining after refusing, so the client finishes sending and can read the 413 instead of a reset.
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_CODEC_REQUEST_BYTES) {
      req.resume();
      reject(tooLarge);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) {
        return;
      }
      // Chunked bodies carry no Content-Length, so count as they arrive.
      received += chunk.length;
      if (received > MAX_CODEC_REQUEST_BYTES) {
        refused = true;
        chunks.length = 0;
        reject(tooLarge);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) {
        resolve(Buffer.concat(chunks).toString('utf8'));
      }
    });
    req.on('error', reject);
  });
}

/** Parses `{"payloads":[{"metadata":{k: base64}, "data": base64}]}` (proto3 JSON of Payloads). */
function parsePayloadsBody(body: string): Payload[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new CodecRequestError(400, `request body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isRecord(parsed) || !Array.isArray(parsed.payloads)) {
    throw new CodecRequestError(400, 'request body must be an object with a "payloads" array');
  }
  return parsed.payloads.map((item: unknown, index: number) => payloadFromJson(item, `payloads[${index}]`));
}

function payloadFromJson(item: unknown, where: string): Payload {
  if (!isRecord(item)) {
    throw new CodecRequestError(400, `${where} must be an object with "metadata" and "data"`);
  }
  const metadata: Record<string, Uint8Array> = {};
  if (item.metadata !== undefined && item.metadata !== null) {
    if (!isRecord(item.metadata)) {
      throw new CodecRequestError(400, `${where}.metadata must be an object of base64 strings`);
    }
    for (const [name, value] of Object.entries(item.metadata)) {
      metadata[name] = base64ToBytes(value, `${where}.metadata.${name}`);
    }
  }
  // proto3 JSON omits fields that hold their default, so a missing "data" is empty data.
  const data =
    item.data === undefined || item.data === null ? new Uint8Array() : base64ToBytes(item.data, `${where}.data`);
  return { metadata, data };
}

function payloadToJson(payload: Payload): { metadata: Record<string, string>; data: string } {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(payload.metadata ?? {})) {
    metadata[name] = Buffer.from(value).toString('base64');
  }
  return { metadata, data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64') };
}

// proto3 JSON accepts the standard and URL-safe alphabets, with or without padding.
const BASE64_PATTERN = /^[A-Za-z0-9+/_-]*={0,2}$/;

function base64ToBytes(value: unknown, where: string): Uint8Array {
  if (typeof value !== 'string' || !BASE64_PATTERN.test(value)) {
    throw new CodecRequestError(400, `${where} must be a base64 string`);
  }
  return new Uint8Array(Buffer.from(value, 'base64'));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
