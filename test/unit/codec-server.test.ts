import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import { AesGcmPayloadCodec } from '../../client/codec.js';
import { MAX_CODEC_REQUEST_BYTES, startCodecServer } from '../../client/codec-server.js';
import type { CodecServer } from '../../client/codec-server.js';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const b64 = (s: string | Uint8Array) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

// Written out independently of the server's own conversion, the way the Web UI sends payloads.
function toJsonPayload(payload: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
    data: b64(payload.data ?? new Uint8Array()),
  };
}

function fromJsonPayload(json: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(json.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]),
    ),
    data: new Uint8Array(Buffer.from(json.data ?? '', 'base64')),
  };
}

const codec = new AesGcmPayloadCodec({ keys: new Map([['k1', randomBytes(32)]]), encryptKeyId: 'k1' });

async function post(server: CodecServer, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('codec server', () => {
  let server: CodecServer;

  beforeAll(async () => {
    server = await startCodecServer({ codec, port: 0 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('listens on loopback at the reported url', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('encodes then decodes back to the original payloads', async () => {
    const payloads: JsonPayload[] = [
      { metadata: { encoding: b64('json/plain') }, data: b64('{"secret":"round-trip-marker"}') },
      { metadata: { encoding: b64('binary/plain'), extra: b64('meta') }, data: b64(randomBytes(64)) },
      { metadata: { encoding: b64('binary/null') } },
    ];
    const encodeRes = await post(server, '/encode', { payloads });
    expect(encodeRes.status).toBe(200);
    expect(encodeRes.headers.get('content-type')).toBe('application/json');
    const encoded = (await encodeRes.json()) as { payloads: JsonPayload[] };
    expect(encoded.payloads).toHaveLength(3);
    for (const payload of encoded.payloads) {
      expect(unb64(payload.metadata?.encoding)).toBe('binary/encrypted');
      expect(unb64(payload.metadata?.['encryption-key-id'])).toBe('k1');
      expect(unb64(payload.data)).not.toContain('round-trip-marker');
    }

    const decodeRes = await post(server, '/decode', encoded);
    expect(decodeRes.status).toBe(200);
    const decoded = (await decodeRes.json()) as { payloads: JsonPayload[] };
    // A missing "data" comes back as empty data, which is its proto3 meaning.
    expect(decoded.payloads).toEqual([payloads[0], payloads[1], { ...payloads[2], data: '' }]);
  });

  it('decodes what a worker encoded from a default-converter payload, and the converter reads it back', async () => {
    const original = defaultPayloadConverter.toPayload({ secret: 'x' });
    // Both directions through the server: the UI path (worker-encoded history, decoded over HTTP) ...
    const [workerEncoded] = await codec.encode([original]);
    const decodeRes = await post(server, '/decode', { payloads: [toJsonPayload(workerEncoded!)] });
    expect(decodeRes.status).toBe(200);
    const [decoded] = ((await decodeRes.json()) as { payloads: JsonPayload[] }).payloads;
    expect(defaultPayloadConverter.fromPayload(fromJsonPayload(decoded!))).toEqual({ secret: 'x' });

    // ... and the CLI path (encoded over HTTP, then decoded over HTTP).
    const encodeRes = await post(server, '/encode', { payloads: [toJsonPayload(original)] });
    const encoded = (await encodeRes.json()) as { payloads: JsonPayload[] };
    expect(unb64(encoded.payloads[0]?.data)).not.toContain('secret');
    const roundTrip = await post(server, '/decode', encoded);
    const [again] = ((await roundTrip.json()) as { payloads: JsonPayload[] }).payloads;
    expect(defaultPayloadConverter.fromPayload(fromJsonPayload(again!))).toEqual({ secret: 'x' });
  });

  it('passes unencrypted payloads through decode', async () => {
    const plain = toJsonPayload(defaultPayloadConverter.toPayload('plain'));
    const res = await post(server, '/decode', { payloads: [plain] });
    expect(await res.json()).toEqual({ payloads: [plain] });
  });

  it('answers a CORS preflight from the dev UI with 204 and the CORS headers', async () => {
    const res = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://localhost:8233',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'x-namespace, content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
    expect(res.headers.get('access-control-allow-methods')).toBe('POST, GET, OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).toBe('X-Namespace, Content-Type, Authorization');
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('vary')).toBe('Origin');
  });

  it('adds CORS headers to the actual request from an allowed origin', async () => {
    const res = await post(server, '/encode', { payloads: [] }, { Origin: 'http://127.0.0.1:8233' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');
    expect(await res.json()).toEqual({ payloads: [] });
  });

  it('gives a disallowed origin no CORS headers', async () => {
    const preflight = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
    const res = await post(server, '/encode', { payloads: [] }, { Origin: 'http://evil.example' });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it.each([
    ['not JSON', '{"payloads": [', /not JSON/],
    ['no payloads array', { payload: [] }, /"payloads" array/],
    ['a payload that is not an object', { payloads: ['x'] }, /payloads\[0\] must be an object/],
    [
      'metadata that is not base64',
      { payloads: [{ metadata: { encoding: 'not base64!' } }] },
      /payloads\[0\]\.metadata\.encoding must be a base64 string/,
    ],
    ['data that is not a string', { payloads: [{ data: 42 }] }, /payloads\[0\]\.data must be a base64 string/],
  ])('rejects a body with %s with 400 naming the problem', async (_name, body, message) => {
    const res = await post(server, '/decode', body);
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: string };
    expect(error).toMatch(message);
  });

  it('answers a decode failure (tampered data, unknown key) with 400 and the reason', async () => {
    const [encoded] = await codec.encode([defaultPayloadConverter.toPayload({ secret: 'x' })]);
    const tampered = Buffer.from(encoded!.data!);
    tampered[15] = tampered[15]! ^ 0xff;
    const res = await post(server, '/decode', { payloads: [{ ...toJsonPayload(encoded!), data: b64(tampered) }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/failed authentication/);

    const other = new AesGcmPayloadCodec({ keys: new Map([['k9', randomBytes(32)]]), encryptKeyId: 'k9' });
    const [foreign] = await other.encode([defaultPayloadConverter.toPayload('x')]);
    const unknown = await post(server, '/decode', { payloads: [toJsonPayload(foreign!)] });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: string }).error).toMatch(/key "k9".*SLUICE_CODEC_KEYS/);
  });

  it('refuses bodies over 4 MiB with 413', async () => {
    const big = JSON.stringify({ payloads: [{ data: 'A'.repeat(MAX_CODEC_REQUEST_BYTES) }] });
    const res = await post(server, '/encode', big);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/larger than 4194304 bytes/);
  });

  it('refuses a chunked body (no Content-Length) once it passes 4 MiB', async () => {
    const chunk = new Uint8Array(1024 * 1024).fill('A'.charCodeAt(0));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 6) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await fetch(`${server.url}/encode`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
  });

  it('answers unknown paths with 404, wrong methods with 405, and /healthz with 200', async () => {
    expect((await post(server, '/nope', { payloads: [] })).status).toBe(404);
    expect((await fetch(`${server.url}/decode`)).status).toBe(405);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
  });
});

describe('codec server with an auth token', () => {
  let server: CodecServer;

  beforeAll(async () => {
    server = await startCodecServer({ codec, port: 0, authToken: 's3cret-token' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('requires the bearer token on encode and decode', async () => {
    const body = { payloads: [toJsonPayload(defaultPayloadConverter.toPayload('x'))] };
    expect((await post(server, '/encode', body)).status).toBe(401);
    expect((await post(server, '/decode', body, { Authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await post(server, '/decode', body, { Authorization: 's3cret-token' })).status).toBe(401);
    const ok = await post(server, '/encode', body, { Authorization: 'Bearer s3cret-token' });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { payloads: JsonPayload[] }).payloads).toHaveLength(1);
  });

  it('lets the preflight and /healthz through without a token, and keeps CORS headers on a 401', async () => {
    const preflight = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://localhost:8233', 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const denied = await post(server, '/decode', { payloads: [] }, { Origin: 'http://localhost:8233' });
    expect(denied.status).toBe(401);
    // Without CORS headers the browser hides the 401 and the UI shows a generic network error instead.
    expect(denied.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
  });
});

describe('startCodecServer', () => {
  it('rejects when the port is taken', async () => {
    const first = await startCodecServer({ codec, port: 0 });
    try {
      const port = Number(new URL(first.url).port);
      await expect(startCodecServer({ codec, port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
