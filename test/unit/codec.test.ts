import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import {
  AesGcmPayloadCodec,
  createCodecFromEnv,
  dataConverterFor,
  generateCodecKey,
  parseCodecKeys,
} from '../../client/codec.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => new TextDecoder().decode(b ?? new Uint8Array());

function codecWith(keys: Record<string, Buffer>, encryptKeyId: string): AesGcmPayloadCodec {
  return new AesGcmPayloadCodec({ keys: new Map(Object.entries(keys)), encryptKeyId });
}

const keyA = randomBytes(32);
const keyB = randomBytes(32);

const samplePayloads: Payload[] = [
  { metadata: { encoding: bytes('json/plain') }, data: bytes('{"secret":"hunter2-plaintext-marker"}') },
  { metadata: { encoding: bytes('binary/plain'), 'x-extra': bytes('extra-metadata-marker') }, data: randomBytes(300) },
  { metadata: {}, data: bytes('no-metadata-marker') },
  { metadata: { encoding: bytes('binary/null') }, data: new Uint8Array() },
];

describe('AesGcmPayloadCodec', () => {
  it('round-trips payloads with and without metadata and with empty data', async () => {
    const codec = codecWith({ a: keyA }, 'a');
    const decoded = await codec.decode(await codec.encode(samplePayloads));
    expect(decoded).toHaveLength(samplePayloads.length);
    decoded.forEach((payload, i) => {
      const original = samplePayloads[i]!;
      expect(Buffer.from(payload.data!)).toEqual(Buffer.from(original.data!));
      expect(Object.keys(payload.metadata!)).toEqual(Object.keys(original.metadata!));
      for (const [name, value] of Object.entries(original.metadata!)) {
        expect(text(payload.metadata![name])).toBe(text(value));
      }
    });
  });

  it('round-trips a payload made by the default payload converter', async () => {
    const codec = codecWith({ a: keyA }, 'a');
    const [encoded] = await codec.encode([defaultPayloadConverter.toPayload({ secret: 'x', n: [1, 2] })]);
    const [decoded] = await codec.decode([encoded!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ secret: 'x', n: [1, 2] });
  });

  it('hides plaintext data and metadata and marks the encoding and key id', async () => {
    const codec = codecWith({ a: keyA }, 'a');
    const encoded = await codec.encode(samplePayloads);
    for (const payload of encoded) {
      expect(text(payload.metadata!.encoding)).toBe('binary/encrypted');
      expect(text(payload.metadata!['encryption-key-id'])).toBe('a');
      expect(Object.keys(payload.metadata!)).toEqual(['encoding', 'encryption-key-id']);
      const data = Buffer.from(payload.data!);
      for (const marker of ['hunter2-plaintext-marker', 'extra-metadata-marker', 'no-metadata-marker', 'json/plain']) {
        expect(data.includes(marker)).toBe(false);
      }
    }
    // The random 300-byte payload must not appear either (it has no text marker to search for).
    expect(Buffer.from(encoded[1]!.data!).includes(Buffer.from(samplePayloads[1]!.data!))).toBe(false);
  });

  it('uses a fresh IV, so equal payloads encrypt differently', async () => {
    const codec = codecWith({ a: keyA }, 'a');
    const [first, second] = await codec.encode([samplePayloads[0]!, samplePayloads[0]!]);
    expect(Buffer.from(first!.data!).subarray(0, 12)).not.toEqual(Buffer.from(second!.data!).subarray(0, 12));
    expect(Buffer.from(first!.data!)).not.toEqual(Buffer.from(second!.data!));
  });

  it('passes payloads that are not encrypted through unchanged', async () => {
    const codec = codecWith({ a: keyA }, 'a');
    const plain: Payload[] = [samplePayloads[0]!, { data: bytes('no metadata at all') }];
    const decoded = await codec.decode(plain);
    expect(decoded[0]).toBe(plain[0]);
    expect(decoded[1]).toBe(plain[1]);
  });

  it('decodes payloads of a retired key after rotation', async () => {
    const [encodedWithA] = await codecWith({ a: keyA }, 'a').encode([samplePayloads[0]!]);
    const rotated = codecWith({ a: keyA, b: keyB }, 'b');
    const [decoded] = await rotated.decode([encodedWithA!]);
    expect(text(decoded!.data)).toBe(text(samplePayloads[0]!.data));
    const [encodedWithB] = await rotated.encode([samplePayloads[0]!]);
    expect(text(encodedWithB!.metadata!['encryption-key-id'])).toBe('b');
  });

  it('names an unknown key id and says where to add it', async () => {
    const [encodedWithB] = await codecWith({ b: keyB }, 'b').encode([samplePayloads[0]!]);
    await expect(codecWith({ a: keyA }, 'a').decode([encodedWithB!])).rejects.toThrow(/key "b".*SLUICE_CODEC_KEYS/);
  });

  it('rejects tampered ciphertext, tag or IV, and truncated data', async () => {
    const codec = codecWith({ a: keyA }, 'a');
    const [encoded] = await codec.encode([samplePayloads[0]!]);
    const original = Buffer.from(encoded!.data!);
    for (const index of [0, 20, original.length - 1]) {
      const data = Buffer.from(original);
      data[index] = data[index]! ^ 0x01;
      await expect(codec.decode([{ ...encoded!, data }])).rejects.toThrow(/failed authentication/);
    }
    await expect(codec.decode([{ ...encoded!, data: original.subarray(0, 20) }])).rejects.toThrow(/truncated/);
  });

  it('rejects a payload whose key id was swapped to another held key', async () => {
    const codec = codecWith({ a: keyA, b: keyB }, 'a');
    const [encoded] = await codec.encode([samplePayloads[0]!]);
    const swapped = { ...encoded!, metadata: { ...encoded!.metadata, 'encryption-key-id': bytes('b') } };
    await expect(codec.decode([swapped])).rejects.toThrow(/key "b" failed authentication/);
  });

  it('refuses an encrypt key id that is not among the keys', () => {
    expect(() => codecWith({ a: keyA }, 'missing')).toThrow(/"missing" is not among the codec keys \(a\)/);
  });
});

describe('parseCodecKeys', () => {
  const a64 = keyA.toString('base64');
  const b64 = keyB.toString('base64');

  it('parses several keys, ignoring whitespace', () => {
    const keys = parseCodecKeys(` a:${a64} , b:${b64}`);
    expect([...keys.keys()]).toEqual(['a', 'b']);
    expect(keys.get('a')).toEqual(keyA);
    expect(keys.get('b')).toEqual(keyB);
  });

  it.each([
    ['an empty spec', '', /SLUICE_CODEC_KEYS is empty/],
    ['an entry without a colon', `a:${a64},${b64}`, /entry 2 has no ':'/],
    ['an empty entry', `a:${a64},,b:${b64}`, /entry 2 is empty/],
    ['an empty id', `:${a64}`, /entry 1 has an empty key id/],
    ['a key that is not base64', 'a:not*base64!', /key "a" .* is not base64/],
    ['a short key', `short:${randomBytes(16).toString('base64')}`, /key "short" .* is 16 bytes; AES-256 needs 32/],
    ['a duplicate id', `a:${a64},a:${b64}`, /key id "a" appears more than once/],
  ])('rejects %s', (_name, spec, message) => {
    expect(() => parseCodecKeys(spec)).toThrow(message);
  });

  it('never echoes key material in errors', () => {
    const shortKey = randomBytes(16).toString('base64');
    expect(() => parseCodecKeys(`k:${shortKey}`)).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining(shortKey) }),
    );
    expect(() => parseCodecKeys(a64)).toThrow(expect.objectContaining({ message: expect.not.stringContaining(a64) }));
  });

  it('accepts keys from generateCodecKey', () => {
    const generated = generateCodecKey();
    expect(parseCodecKeys(`g:${generated}`).get('g')).toEqual(Buffer.from(generated, 'base64'));
    expect(generateCodecKey()).not.toBe(generated);
  });
});

describe('createCodecFromEnv and dataConverterFor', () => {
  const keys = `old:${keyA.toString('base64')},new:${keyB.toString('base64')}`;

  it('is off when no key id is set, even with keys', () => {
    expect(createCodecFromEnv({})).toBeUndefined();
    expect(createCodecFromEnv({ codecKeys: keys })).toBeUndefined();
    expect(createCodecFromEnv({ codecKeys: keys, codecKeyId: undefined })).toBeUndefined();
    expect(dataConverterFor(undefined)).toEqual({});
  });

  it('is on with the chosen encrypt key when the key id is set', async () => {
    const codec = createCodecFromEnv({ codecKeys: keys, codecKeyId: 'new' });
    expect(codec).toBeInstanceOf(AesGcmPayloadCodec);
    expect(codec!.encryptKeyId).toBe('new');
    expect(codec!.keyIds).toEqual(['old', 'new']);
    const [encoded] = await codec!.encode([samplePayloads[0]!]);
    expect(text(encoded!.metadata!['encryption-key-id'])).toBe('new');
    expect(dataConverterFor(codec)).toEqual({ payloadCodecs: [codec] });
  });

  it('fails when the key id is set but keys are missing', () => {
    expect(() => createCodecFromEnv({ codecKeyId: 'new' })).toThrow(
      /SLUICE_CODEC_KEY_ID="new" .* SLUICE_CODEC_KEYS is not set/,
    );
  });

  it('fails when the key id is not among the keys, or a key is bad', () => {
    expect(() => createCodecFromEnv({ codecKeys: keys, codecKeyId: 'other' })).toThrow(/"other" is not among/);
    expect(() => createCodecFromEnv({ codecKeys: 'new:AAAA', codecKeyId: 'new' })).toThrow(/key "new" .* 3 bytes/);
  });
});
