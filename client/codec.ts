import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
// @temporalio/proto is CommonJS and Node's ESM loader cannot see its named exports, so take the default export.
import proto from '@temporalio/proto';

const PayloadMessage = proto.temporal.api.common.v1.Payload;

/** `encoding` metadata value of payloads this codec produced. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata key naming the key that encrypted a payload. */
export const ENCRYPTION_KEY_ID_METADATA = 'encryption-key-id';

// Same names, layout (iv ‖ ciphertext ‖ tag) and no additional authenticated data as the Temporal encryption
// samples in Go, Python and TypeScript, so their codec servers and ours can read each other's payloads.
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

const KEYS_VAR = 'SLUICE_CODEC_KEYS';
const KEY_ID_VAR = 'SLUICE_CODEC_KEY_ID';
const KEY_ID_PATTERN = /^[^\s,:]+$/;
// Standard or URL-safe alphabet, padding optional. Buffer.from(…, 'base64') silently skips other characters,
// which would turn a typo into a wrong-length key with a confusing message.
const BASE64_PATTERN = /^[A-Za-z0-9+/_-]+={0,2}$/;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * Parses `id1:base64key,id2:base64key` (the format of `SLUICE_CODEC_KEYS`) into key id → 32-byte AES key.
 * Whitespace around entries is ignored. Errors name the entry or key id but never echo key material.
 *
 * @throws Error when an entry is not `id:base64key`, a key is not base64 or not 32 bytes, or an id repeats.
 */
export function parseCodecKeys(spec: string): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  const entries = spec.split(',').map((entry) => entry.trim());
  if (entries.length === 1 && entries[0] === '') {
    throw new Error(`${KEYS_VAR} is empty; set it to id:base64key[,id:base64key…] (32-byte keys, base64)`);
  }
  entries.forEach((entry, index) => {
    const position = `${KEYS_VAR} entry ${index + 1}`;
    if (entry === '') {
      throw new Error(`${position} is empty; separate keys with single commas: id1:base64key,id2:base64key`);
    }
    const colon = entry.indexOf(':');
    if (colon === -1) {
      throw new Error(`${position} has no ':'; write each key as id:base64key`);
    }
    const id = entry.slice(0, colon).trim();
    const encodedKey = entry.slice(colon + 1).trim();
    if (!KEY_ID_PATTERN.test(id)) {
      throw new Error(`${position} has an empty key id or one with whitespace; write each key as id:base64key`);
    }
    if (!BASE64_PATTERN.test(encodedKey)) {
      throw new Error(`key "${id}" in ${KEYS_VAR} is not base64; generate one with \`openssl rand -base64 32\``);
    }
    const key = Buffer.from(encodedKey, 'base64');
    if (key.length !== KEY_BYTES) {
      throw new Error(
        `key "${id}" in ${KEYS_VAR} is ${key.length} bytes; AES-256 needs ${KEY_BYTES} ` +
          `(generate one with \`openssl rand -base64 32\`)`,
      );
    }
    if (keys.has(id)) {
      throw new Error(`key id "${id}" appears more than once in ${KEYS_VAR}; give each key its own id`);
    }
    keys.set(id, key);
  });
  return keys;
}

/** Options of {@link AesGcmPayloadCodec}. */
export interface AesGcmPayloadCodecOptions {
  /** Every key that may have encrypted a stored payload, by id. Keep retired keys here to read old histories. */
  keys: Map<string, Buffer>;
  /** Id of the key in `keys` that encrypts new payloads. */
  encryptKeyId: string;
}

/**
 * Encrypts whole payloads (metadata included) with AES-256-GCM. Each output payload names its key id, so keys
 * can be rotated: switch `encryptKeyId` to a new key and keep the old one in `keys` for as long as histories
 * encrypted with it are read.
 */
export class AesGcmPayloadCodec implements PayloadCodec {
  readonly encryptKeyId: string;
  readonly #keys: Map<string, Buffer>;
  readonly #encryptKey: Buffer;

  /** @throws Error when a key is not 32 bytes or `encryptKeyId` is not among `keys`. */
  constructor({ keys, encryptKeyId }: AesGcmPayloadCodecOptions) {
    for (const [id, key] of keys) {
      if (key.length !== KEY_BYTES) {
        throw new Error(`codec key "${id}" is ${key.length} bytes; AES-256 needs ${KEY_BYTES}`);
      }
    }
    const encryptKey = keys.get(encryptKeyId);
    if (encryptKey === undefined) {
      throw new Error(
        `encrypt key id "${encryptKeyId}" is not among the codec keys (${[...keys.keys()].join(', ') || 'none'}); ` +
          `add it to ${KEYS_VAR} or set ${KEY_ID_VAR} to one of them`,
      );
    }
    // Copy so that a caller mutating its map cannot change the keys under a running worker.
    this.#keys = new Map(keys);
    this.encryptKeyId = encryptKeyId;
    this.#encryptKey = encryptKey;
  }

  /** Ids of all keys this codec can decrypt with. */
  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.#encrypt(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.#decrypt(payload));
  }

  #encrypt(payload: Payload): Payload {
    const plaintext = PayloadMessage.encode(payload).finish();
    // A fresh random IV per payload: GCM loses confidentiality and integrity if an IV repeats under one key.
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.#encryptKey, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      metadata: {
        encoding: textEncoder.encode(ENCRYPTED_ENCODING),
        [ENCRYPTION_KEY_ID_METADATA]: textEncoder.encode(this.encryptKeyId),
      },
      data: new Uint8Array(Buffer.concat([iv, ciphertext, cipher.getAuthTag()])),
    };
  }

  #decrypt(payload: Payload): Payload {
    const encoding = payload.metadata?.encoding;
    if (encoding === undefined || encoding === null || textDecoder.decode(encoding) !== ENCRYPTED_ENCODING) {
      return payload;
    }
    const keyIdBytes = payload.metadata?.[ENCRYPTION_KEY_ID_METADATA];
    if (keyIdBytes === undefined || keyIdBytes === null) {
      throw new Error(
        `encrypted payload has no "${ENCRYPTION_KEY_ID_METADATA}" metadata; it was not written by Sluice`,
      );
    }
    const keyId = textDecoder.decode(keyIdBytes);
    const key = this.#keys.get(keyId);
    if (key === undefined) {
      throw new Error(
        `payload was encrypted with key "${keyId}", which this codec does not hold ` +
          `(it has ${this.keyIds.join(', ')}); add "${keyId}:<base64 key>" to ${KEYS_VAR}`,
      );
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) {
      throw new Error(
        `payload encrypted with key "${keyId}" is ${data.length} bytes, shorter than IV plus tag ` +
          `(${IV_BYTES + TAG_BYTES}); it is truncated or corrupt`,
      );
    }
    const iv = data.subarray(0, IV_BYTES);
    const tag = data.subarray(data.length - TAG_BYTES);
    const ciphertext = data.subarray(IV_BYTES, data.length - TAG_BYTES);
    const decipher = createDecipheriv(ALGORITHM, key, iv);
    decipher.setAuthTag(tag);
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch (cause) {
      throw new Error(
        `payload encrypted with key "${keyId}" failed authentication: it was altered, or the key stored under ` +
          `"${keyId}" in ${KEYS_VAR} is not the one that encrypted it`,
        { cause },
      );
    }
    return toPlainPayload(PayloadMessage.decode(plaintext));
  }
}

/**
 * protobufjs returns a message whose byte fields are Buffer views into the decrypted buffer and whose absent
 * `data` lives on the prototype; hand back an ordinary object with its own copies instead.
 */
function toPlainPayload(message: proto.temporal.api.common.v1.Payload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [name, value] of Object.entries(message.metadata)) {
    metadata[name] = new Uint8Array(value);
  }
  const payload: Payload = { metadata, data: new Uint8Array(message.data ?? []) };
  if (message.externalPayloads.length > 0) {
    payload.externalPayloads = message.externalPayloads;
  }
  return payload;
}

/** The Sluice settings that configure the codec (see `lib/config.ts`). */
export interface CodecEnv {
  /** `SLUICE_CODEC_KEYS`: `id:base64key[,id:base64key…]`. */
  codecKeys?: string | undefined;
  /** `SLUICE_CODEC_KEY_ID`: the key that encrypts new payloads. Setting it turns the codec on. */
  codecKeyId?: string | undefined;
}

/**
 * Builds the codec from the Sluice environment.
 *
 * @returns `undefined` when `codecKeyId` is not set, so payloads travel unencrypted; keys alone do not turn the
 *   codec on.
 * @throws Error when `codecKeyId` is set but `codecKeys` is missing or does not hold that id, or a key is invalid.
 */
export function createCodecFromEnv(env: CodecEnv): AesGcmPayloadCodec | undefined {
  if (env.codecKeyId === undefined || env.codecKeyId.trim() === '') {
    return undefined;
  }
  const encryptKeyId = env.codecKeyId.trim();
  if (env.codecKeys === undefined || env.codecKeys.trim() === '') {
    throw new Error(
      `${KEY_ID_VAR}="${encryptKeyId}" turns the payload codec on, but ${KEYS_VAR} is not set; ` +
        `set ${KEYS_VAR}=${encryptKeyId}:<base64 key> (generate one with \`openssl rand -base64 32\`)`,
    );
  }
  return new AesGcmPayloadCodec({ keys: parseCodecKeys(env.codecKeys), encryptKeyId });
}

/**
 * The `dataConverter` option for `new Client()` and `Worker.create()`. Clients and workers of one namespace must
 * use the same codec, or they cannot read each other's payloads.
 *
 * @returns `{ payloadCodecs: [codec] }`, or `{}` when `codec` is undefined.
 */
export function dataConverterFor(codec: PayloadCodec | undefined): DataConverter {
  return codec === undefined ? {} : { payloadCodecs: [codec] };
}

/** A fresh random 32-byte AES key in base64, for a `SLUICE_CODEC_KEYS` entry. */
export function generateCodecKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}
