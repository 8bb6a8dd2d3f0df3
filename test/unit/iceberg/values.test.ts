import { describe, expect, it } from 'vitest';
import { InvalidValueError } from '../../../lib/iceberg/errors.js';
import {
  civilFromDays,
  dateFromIso,
  daysFromCivil,
  decimalToJavaString,
  decimalToMinimalBytes,
  decimalToPlainString,
  floorDiv,
  floorMod,
  humanDate,
  humanTimestamp,
  isoDate,
  javaDoubleToString,
  javaFloatToString,
  parseDecimal,
  timeFromIso,
  timestampFromIso,
  timestamptzFromIso,
  uuidToBytes,
} from '../../../lib/iceberg/values.js';

describe('calendar arithmetic', () => {
  it('agrees with Date.UTC for every day over four centuries around the epoch', () => {
    const msPerDay = 86_400_000;
    for (let days = -80_000; days <= 80_000; days += 1) {
      const date = new Date(days * msPerDay);
      const civil = civilFromDays(days);
      if (
        civil.year !== date.getUTCFullYear() ||
        civil.month !== date.getUTCMonth() + 1 ||
        civil.day !== date.getUTCDate()
      ) {
        expect.fail(`day ${days}: got ${JSON.stringify(civil)}, Date says ${date.toISOString()}`);
      }
      if (daysFromCivil(civil.year, civil.month, civil.day) !== days) expect.fail(`day ${days} does not round-trip`);
    }
  });

  it('handles the proleptic Gregorian leap rules', () => {
    expect(dateFromIso('2000-02-29')).toBe(11016);
    expect(() => dateFromIso('1900-02-29')).toThrow(InvalidValueError);
    expect(dateFromIso('1969-12-31')).toBe(-1);
    expect(dateFromIso('0001-01-01')).toBe(-719162);
  });

  it('floors bigint division and modulo for negatives', () => {
    expect(floorDiv(-1n, 86_400_000_000n)).toBe(-1n);
    expect(floorDiv(-86_400_000_000n, 86_400_000_000n)).toBe(-1n);
    expect(floorDiv(7n, 2n)).toBe(3n);
    expect(floorMod(-1n, 10n)).toBe(9n);
  });
});

describe('ISO parsing', () => {
  it('parses times and timestamps to microseconds', () => {
    expect(timeFromIso('22:31:08')).toBe(81_068_000_000n);
    expect(timeFromIso('00:00:00.000001')).toBe(1n);
    expect(timestampFromIso('1970-01-01T00:00:00.000001')).toBe(1n);
    expect(timestampFromIso('1969-12-31T23:59:59.999999')).toBe(-1n);
  });

  it('applies zone offsets for timestamptz', () => {
    expect(timestamptzFromIso('2017-11-16T14:31:08-08:00')).toBe(timestampFromIso('2017-11-16T22:31:08'));
    expect(timestamptzFromIso('2017-11-16T22:31:08Z')).toBe(timestampFromIso('2017-11-16T22:31:08'));
    expect(timestamptzFromIso('2017-11-17T00:01:08+01:30')).toBe(timestampFromIso('2017-11-16T22:31:08'));
  });

  it('refuses sub-microsecond precision, missing or extra zones, and impossible values', () => {
    expect(() => timeFromIso('22:31:08.0000001')).toThrow(/at most microseconds/);
    expect(() => timestampFromIso('2017-11-16T22:31:08Z')).toThrow(InvalidValueError);
    expect(() => timestamptzFromIso('2017-11-16T22:31:08')).toThrow(/zone/);
    expect(() => timeFromIso('24:00:00')).toThrow(InvalidValueError);
    expect(() => dateFromIso('2017-13-01')).toThrow(InvalidValueError);
  });
});

describe('date and timestamp printing', () => {
  it('prints Java-style dates, including before year 1000 and negative years', () => {
    expect(humanDate(0)).toBe('1970-01-01');
    expect(humanDate(-719162)).toBe('0001-01-01');
    expect(isoDate(daysFromCivil(-5, 1, 1))).toBe('-0005-01-01');
    expect(humanDate(daysFromCivil(-5, 1, 1))).toBe('-005-01-01');
    expect(isoDate(daysFromCivil(10000, 1, 1))).toBe('+10000-01-01');
  });

  it('drops trailing zeros of the fraction like ISO_LOCAL_DATE_TIME', () => {
    expect(humanTimestamp(timestampFromIso('2017-11-16T22:31:08.000001'))).toBe('2017-11-16T22:31:08.000001');
    expect(humanTimestamp(timestampFromIso('2017-11-16T22:31:08.120'))).toBe('2017-11-16T22:31:08.12');
    expect(humanTimestamp(-1n)).toBe('1969-12-31T23:59:59.999999');
  });
});

describe('decimals', () => {
  it('parses the scale from the digits after the point', () => {
    expect(parseDecimal('14.20')).toEqual({ unscaled: 1420n, scale: 2 });
    expect(parseDecimal('-0.05')).toEqual({ unscaled: -5n, scale: 2 });
    expect(parseDecimal('7')).toEqual({ unscaled: 7n, scale: 0 });
    expect(() => parseDecimal('1e5')).toThrow(InvalidValueError);
  });

  it('prints plain and Java BigDecimal forms', () => {
    expect(decimalToPlainString({ unscaled: -5n, scale: 2 })).toBe('-0.05');
    expect(decimalToPlainString({ unscaled: 1420n, scale: 2 })).toBe('14.20');
    expect(decimalToJavaString({ unscaled: -12345n, scale: 9 })).toBe('-0.000012345');
    expect(decimalToJavaString({ unscaled: 1n, scale: 10 })).toBe('1E-10');
    expect(decimalToJavaString({ unscaled: 123n, scale: 10 })).toBe('1.23E-8');
  });

  it('encodes unscaled values as minimal two’s-complement big-endian bytes', () => {
    expect([...decimalToMinimalBytes(0n)]).toEqual([0x00]);
    expect([...decimalToMinimalBytes(127n)]).toEqual([0x7f]);
    expect([...decimalToMinimalBytes(128n)]).toEqual([0x00, 0x80]);
    expect([...decimalToMinimalBytes(-1n)]).toEqual([0xff]);
    expect([...decimalToMinimalBytes(-128n)]).toEqual([0x80]);
    expect([...decimalToMinimalBytes(-129n)]).toEqual([0xff, 0x7f]);
    expect([...decimalToMinimalBytes(1420n)]).toEqual([0x05, 0x8c]);
  });
});

describe('other conversions', () => {
  it('encodes UUIDs big-endian (spec Appendix B note 4)', () => {
    expect(Buffer.from(uuidToBytes('f79c3e09-677c-4bbd-a479-3f349cb785e7')).toString('hex')).toBe(
      'f79c3e09677c4bbda4793f349cb785e7',
    );
  });

  it('prints doubles and floats like Java (checked against Java 17)', () => {
    expect(javaDoubleToString(1)).toBe('1.0');
    expect(javaDoubleToString(1e7)).toBe('1.0E7');
    expect(javaDoubleToString(1e-3)).toBe('0.001');
    expect(javaDoubleToString(1e-4)).toBe('1.0E-4');
    expect(javaDoubleToString(123456789.123)).toBe('1.23456789123E8');
    expect(javaDoubleToString(-0)).toBe('-0.0');
    expect(javaDoubleToString(Number.NaN)).toBe('NaN');
    expect(javaDoubleToString(-Infinity)).toBe('-Infinity');
    expect(javaDoubleToString(-12.5)).toBe('-12.5');
    expect(javaFloatToString(Math.fround(0.1))).toBe('0.1');
    expect(javaFloatToString(1e10)).toBe('1.0E10');
  });
});
