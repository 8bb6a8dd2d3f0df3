import { describe, expect, it } from 'vitest';
import { debeziumJsonToIceberg } from '../../../lib/cdc/debezium-values.js';
import { ValueConversionError } from '../../../lib/cdc/errors.js';
import { Types, type IcebergType } from '../../../lib/iceberg/types.js';

const convert = debeziumJsonToIceberg;
const list = (element: IcebergType): IcebergType => ({ kind: 'list', elementId: 0, elementRequired: false, element });

describe('Debezium JSON → Iceberg values', () => {
  it('converts numbers, keeping 64-bit integers exact as bigints', () => {
    expect(convert(Types.int, 42)).toBe(42);
    expect(convert(Types.long, 9007199254740993n)).toBe(9007199254740993n);
    expect(convert(Types.long, 12)).toBe(12n);
    expect(convert(Types.double, 'NaN')).toBeNaN();
    expect(convert(Types.float, 1.1)).toBe(Math.fround(1.1));
    expect(() => convert(Types.int, 'x')).toThrow(ValueConversionError);
    expect(() => convert(Types.long, 1.5)).toThrow(/integer/);
  });

  it('reads temporal numbers in the unit the Connect schema names, microseconds without one', () => {
    expect(convert(Types.date, 19753)).toBe(19753);
    expect(convert(Types.date, '2024-01-31')).toBe(19753);
    expect(convert(Types.timestamp, 1706708700000001)).toBe(1706708700000001n);
    expect(
      convert(Types.timestamp, 1706708700000, { field: 'ts', type: 'int64', name: 'io.debezium.time.Timestamp' }),
    ).toBe(1706708700000000n);
    expect(
      convert(Types.timestamp, 1706708700000001999n, {
        field: 'ts',
        type: 'int64',
        name: 'io.debezium.time.NanoTimestamp',
      }),
    ).toBe(1706708700000001n);
    expect(convert(Types.time, 3_600_000, { field: 't', type: 'int32', name: 'io.debezium.time.Time' })).toBe(
      3_600_000_000n,
    );
    expect(convert(Types.time, 3_600_000_001)).toBe(3_600_000_001n);
    expect(() => convert(Types.time, 86_400_000_000)).toThrow(/24:00:00/);
  });

  it('reads ISO strings: ZonedTimestamp with offsets, isostring timestamps', () => {
    expect(convert(Types.timestamptz, '2024-01-31T13:45:00.000001Z')).toBe(1706708700000001n);
    expect(convert(Types.timestamptz, '2024-01-31T19:15:00+05:30')).toBe(1706708700000000n);
    expect(convert(Types.timestamp, '2024-01-31T13:45:00')).toBe(1706708700000000n);
    expect(convert(Types.timestamp, '1969-12-31T23:59:59.999999')).toBe(-1n);
    expect(convert(Types.time, '13:45:00.5')).toBe(49_500_500_000n);
    expect(() => convert(Types.timestamp, '2024-01-31T13:45:00+01:00')).toThrow(/offset/);
    expect(() => convert(Types.timestamptz, '2024-01-31T13:45:00.000000001Z')).toThrow(/nanoseconds/);
  });

  it('converts decimals from strings, doubles, VariableScaleDecimal and Connect Decimal bytes', () => {
    const d = Types.decimal(10, 2);
    expect(convert(d, '12.30')).toEqual({ unscaled: 1230n, scale: 2 });
    expect(convert(d, 12.3)).toEqual({ unscaled: 1230n, scale: 2 });
    // 1230 = 0x04CE, scale 2 → 12.30; -1 = 0xFF.
    expect(convert(d, { scale: 2, value: Buffer.from([0x04, 0xce]).toString('base64') })).toEqual({
      unscaled: 1230n,
      scale: 2,
    });
    expect(
      convert(d, Buffer.from([0xff]).toString('base64'), {
        field: 'amount',
        type: 'bytes',
        name: 'org.apache.kafka.connect.data.Decimal',
        parameters: { scale: '1' },
      }),
    ).toEqual({ unscaled: -10n, scale: 2 });
    expect(() => convert(d, '1.234')).toThrow(/rounding/);
    expect(() => convert(d, 1e-7)).toThrow(/exponent/);
  });

  it('converts bytes, uuids, strings and arrays', () => {
    expect(convert(Types.binary, 'AP8Q')).toEqual(new Uint8Array([0, 255, 16]));
    expect(() => convert(Types.binary, 'not base64!')).toThrow(/base64/);
    expect(convert(Types.uuid, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(convert(Types.string, '{"a":1}')).toBe('{"a":1}');
    expect(() => convert(Types.string, 5)).toThrow(/string/);
    expect(convert(list(Types.int), [1, null, 3])).toEqual([1, null, 3]);
    expect(() => convert(list(Types.int), '{1,2}')).toThrow(/array/);
    expect(convert(Types.boolean, null)).toBeNull();
  });
});
