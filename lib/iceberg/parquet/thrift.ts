/**
 * A schema-less Thrift compact-protocol codec, enough to read a Parquet footer (`FileMetaData`) and page index,
 * change a few fields, and write it back without losing the fields this code does not know about. Values keep
 * their wire type, so a decoded struct re-encodes to the same bytes.
 */

/** Compact-protocol wire types. */
export const ThriftType = {
  BOOL_TRUE: 1,
  BOOL_FALSE: 2,
  BYTE: 3,
  I16: 4,
  I32: 5,
  I64: 6,
  DOUBLE: 7,
  BINARY: 8,
  LIST: 9,
  SET: 10,
  MAP: 11,
  STRUCT: 12,
} as const;

export type ThriftValue = boolean | number | bigint | Uint8Array | ThriftStruct | ThriftList | ThriftMap;

/** A field's value with its wire type (booleans use `BOOL_TRUE`). */
export interface ThriftField {
  type: number;
  value: ThriftValue;
}

/** A struct: fields by id, in the order they were read or set. */
export class ThriftStruct {
  readonly fields = new Map<number, ThriftField>();

  get(id: number): ThriftValue | undefined {
    return this.fields.get(id)?.value;
  }

  set(id: number, type: number, value: ThriftValue): this {
    this.fields.set(id, { type, value });
    return this;
  }

  /** An i8/i16/i32 field as a number, or `undefined`. */
  int(id: number): number | undefined {
    const v = this.get(id);
    return typeof v === 'number' ? v : undefined;
  }

  /** An i64 field as a bigint, or `undefined`. */
  long(id: number): bigint | undefined {
    const v = this.get(id);
    return typeof v === 'bigint' ? v : undefined;
  }

  /** A binary field decoded as UTF-8, or `undefined`. */
  string(id: number): string | undefined {
    const v = this.get(id);
    return v instanceof Uint8Array ? textDecoder.decode(v) : undefined;
  }

  struct(id: number): ThriftStruct | undefined {
    const v = this.get(id);
    return v instanceof ThriftStruct ? v : undefined;
  }

  list(id: number): ThriftList | undefined {
    const v = this.get(id);
    return v instanceof ThriftList ? v : undefined;
  }
}

export class ThriftList {
  constructor(
    readonly elementType: number,
    readonly items: ThriftValue[],
    /** `SET` when read from a set. */
    readonly wireType: number = ThriftType.LIST,
  ) {}
}

export class ThriftMap {
  constructor(
    readonly keyType: number,
    readonly valueType: number,
    readonly entries: [ThriftValue, ThriftValue][],
  ) {}
}

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

/** UTF-8 bytes for a string field. */
export function thriftString(text: string): Uint8Array {
  return textEncoder.encode(text);
}

/** Thrown on bytes that are not valid compact-protocol Thrift; callers wrap it with the file's name. */
export class ThriftDecodeError extends Error {
  override readonly name = 'ThriftDecodeError';
}

/** Reads one struct starting at `offset`; returns it and the offset just after it. */
export function decodeStruct(bytes: Uint8Array, offset = 0): { value: ThriftStruct; end: number } {
  const reader = new Reader(bytes, offset);
  const value = reader.readStruct(0);
  return { value, end: reader.pos };
}

/** Encodes a struct. */
export function encodeStruct(struct: ThriftStruct): Uint8Array {
  const writer = new Writer();
  writer.writeStruct(struct);
  return writer.finish();
}

// Footers nest a few levels deep; anything past this is garbage, not a footer.
const MAX_DEPTH = 64;

class Reader {
  constructor(
    private readonly bytes: Uint8Array,
    public pos: number,
  ) {}

  private byte(): number {
    if (this.pos >= this.bytes.length) throw new ThriftDecodeError(`unexpected end of data at byte ${this.pos}`);
    return this.bytes[this.pos++] as number;
  }

  private varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new ThriftDecodeError(`varint too long at byte ${this.pos}`);
    }
  }

  private smallVarint(): number {
    // Lengths, sizes, i16 and i32 fit in 35 bits; numbers stay exact and avoid bigint work.
    let result = 0;
    let mul = 1;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
      if (mul > 2 ** 35) throw new ThriftDecodeError(`varint too long for a 32-bit value at byte ${this.pos}`);
    }
  }

  private zigzag32(): number {
    const n = this.smallVarint();
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  private zigzag64(): bigint {
    const n = this.varint();
    return (n >> 1n) ^ -(n & 1n);
  }

  readStruct(depth: number): ThriftStruct {
    if (depth > MAX_DEPTH) throw new ThriftDecodeError('structs nested too deeply');
    const struct = new ThriftStruct();
    let lastId = 0;
    for (;;) {
      const header = this.byte();
      if (header === 0) return struct;
      const type = header & 0x0f;
      const delta = header >> 4;
      const id = delta === 0 ? this.zigzag32() : lastId + delta;
      lastId = id;
      if (type === ThriftType.BOOL_TRUE || type === ThriftType.BOOL_FALSE) {
        struct.set(id, ThriftType.BOOL_TRUE, type === ThriftType.BOOL_TRUE);
      } else {
        struct.set(id, type, this.readValue(type, depth + 1));
      }
    }
  }

  private readValue(type: number, depth: number): ThriftValue {
    switch (type) {
      case ThriftType.BOOL_TRUE:
      case ThriftType.BOOL_FALSE:
        // Inside containers a boolean is a byte of its own: 1 is true (writers use 2 or 0 for false).
        return this.byte() === 1;
      case ThriftType.BYTE: {
        const b = this.byte();
        return b > 127 ? b - 256 : b;
      }
      case ThriftType.I16:
      case ThriftType.I32:
        return this.zigzag32();
      case ThriftType.I64:
        return this.zigzag64();
      case ThriftType.DOUBLE: {
        if (this.pos + 8 > this.bytes.length) throw new ThriftDecodeError('unexpected end of data in a double');
        const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 8).getFloat64(0, true);
        this.pos += 8;
        return v;
      }
      case ThriftType.BINARY: {
        const length = this.smallVarint();
        if (this.pos + length > this.bytes.length) throw new ThriftDecodeError('binary runs past the end of data');
        const v = this.bytes.slice(this.pos, this.pos + length);
        this.pos += length;
        return v;
      }
      case ThriftType.LIST:
      case ThriftType.SET: {
        const header = this.byte();
        const elementType = header & 0x0f;
        const size = header >> 4 === 15 ? this.smallVarint() : header >> 4;
        const items: ThriftValue[] = [];
        for (let i = 0; i < size; i += 1) items.push(this.readValue(elementType, depth + 1));
        return new ThriftList(elementType, items, type);
      }
      case ThriftType.MAP: {
        const size = this.smallVarint();
        if (size === 0) return new ThriftMap(0, 0, []);
        const kv = this.byte();
        const entries: [ThriftValue, ThriftValue][] = [];
        for (let i = 0; i < size; i += 1) {
          entries.push([this.readValue(kv >> 4, depth + 1), this.readValue(kv & 0x0f, depth + 1)]);
        }
        return new ThriftMap(kv >> 4, kv & 0x0f, entries);
      }
      case ThriftType.STRUCT:
        return this.readStruct(depth);
      default:
        throw new ThriftDecodeError(`unknown compact type ${type} at byte ${this.pos}`);
    }
  }
}

class Writer {
  private buf = new Uint8Array(4096);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b & 0xff;
  }

  private varint(n: bigint): void {
    let v = n;
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  private smallVarint(n: number): void {
    let v = n;
    while (v >= 0x80) {
      this.byte((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.byte(v);
  }

  private zigzag32(n: number): void {
    this.smallVarint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  private zigzag64(n: bigint): void {
    this.varint(BigInt.asUintN(64, (n << 1n) ^ (n >> 63n)));
  }

  writeStruct(struct: ThriftStruct): void {
    let lastId = 0;
    // Compact protocol needs ascending ids for delta headers; sorting keeps any insertion order valid.
    const ids = [...struct.fields.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const field = struct.fields.get(id) as ThriftField;
      const wireType =
        field.type === ThriftType.BOOL_TRUE || field.type === ThriftType.BOOL_FALSE
          ? field.value
            ? ThriftType.BOOL_TRUE
            : ThriftType.BOOL_FALSE
          : field.type;
      const delta = id - lastId;
      if (delta > 0 && delta <= 15) {
        this.byte((delta << 4) | wireType);
      } else {
        this.byte(wireType);
        this.zigzag32(id);
      }
      lastId = id;
      if (wireType !== ThriftType.BOOL_TRUE && wireType !== ThriftType.BOOL_FALSE) {
        this.writeValue(field.type, field.value);
      }
    }
    this.byte(0);
  }

  private writeValue(type: number, value: ThriftValue): void {
    switch (type) {
      case ThriftType.BOOL_TRUE:
      case ThriftType.BOOL_FALSE:
        this.byte(value ? 1 : 2);
        return;
      case ThriftType.BYTE:
        this.byte(value as number);
        return;
      case ThriftType.I16:
      case ThriftType.I32:
        this.zigzag32(value as number);
        return;
      case ThriftType.I64:
        this.zigzag64(value as bigint);
        return;
      case ThriftType.DOUBLE: {
        this.ensure(8);
        new DataView(this.buf.buffer, this.pos, 8).setFloat64(0, value as number, true);
        this.pos += 8;
        return;
      }
      case ThriftType.BINARY: {
        const bytes = value as Uint8Array;
        this.smallVarint(bytes.length);
        this.ensure(bytes.length);
        this.buf.set(bytes, this.pos);
        this.pos += bytes.length;
        return;
      }
      case ThriftType.LIST:
      case ThriftType.SET: {
        const list = value as ThriftList;
        const size = list.items.length;
        if (size < 15) {
          this.byte((size << 4) | list.elementType);
        } else {
          this.byte(0xf0 | list.elementType);
          this.smallVarint(size);
        }
        for (const item of list.items) this.writeValue(list.elementType, item);
        return;
      }
      case ThriftType.MAP: {
        const map = value as ThriftMap;
        this.smallVarint(map.entries.length);
        if (map.entries.length === 0) return;
        this.byte((map.keyType << 4) | map.valueType);
        for (const [k, v] of map.entries) {
          this.writeValue(map.keyType, k);
          this.writeValue(map.valueType, v);
        }
        return;
      }
      case ThriftType.STRUCT:
        this.writeStruct(value as ThriftStruct);
        return;
      default:
        throw new Error(`cannot encode compact type ${type}`);
    }
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}
