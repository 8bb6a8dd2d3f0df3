import { describe, expect, it } from 'vitest';
import { CDC_ERROR_KINDS, InvalidCdcOptionError, ReplicationError } from '../../../lib/cdc/errors.js';
import { serverRowLimit } from '../../../lib/cdc/pgoutput-reader.js';
import { translateReplicationError, validatePublicationName, validateSlotName } from '../../../lib/cdc/slot.js';
import { ERROR_TYPES } from '../../../schemas/error-types.js';

const pgError = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('slot errors', () => {
  it('maps PostgreSQL errors to typed, classified errors that say what to do', () => {
    const names = { slot: 'orders_slot', publication: 'orders_pub' };
    const cases: [Error, string, string, RegExp][] = [
      [pgError('replication slot "orders_slot" does not exist', '42704'), 'slot-not-found', 'NotFound', /onboard/],
      [pgError('publication "orders_pub" does not exist', '42704'), 'publication-not-found', 'NotFound', /onboard/],
      [
        pgError('replication slot "orders_slot" is active for PID 4242', '55006'),
        'slot-busy',
        'ServiceUnavailable',
        /one merge may read a slot at a time/,
      ],
      [
        pgError('can no longer get changes from replication slot "orders_slot"', '55000'),
        'slot-invalidated',
        'Corrupt',
        /onboard the table again/,
      ],
      [
        pgError('logical decoding requires wal_level >= logical', '55000'),
        'source-config',
        'InvalidConfig',
        /wal_level = logical/,
      ],
      [
        pgError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
        'source-unavailable',
        'ServiceUnavailable',
        /unavailable/,
      ],
    ];
    for (const [err, kind, failureType, hint] of cases) {
      const typed = translateReplicationError(err, names);
      expect(typed, err.message).toBeInstanceOf(ReplicationError);
      expect(typed).toMatchObject({ kind, failureType });
      expect((typed as Error).message).toMatch(hint);
      expect((typed as Error).cause).toBe(err);
    }
    const other = pgError('division by zero', '22012');
    expect(translateReplicationError(other, names)).toBe(other);
  });

  it('classifies every error kind with a shared failure type', () => {
    for (const type of Object.values(CDC_ERROR_KINDS)) expect(ERROR_TYPES[type]).toBeDefined();
    expect(ERROR_TYPES[CDC_ERROR_KINDS['slot-busy']].retryable).toBe(true);
    expect(ERROR_TYPES[CDC_ERROR_KINDS['no-primary-key']].retryable).toBe(false);
  });

  it('accepts only names that need no quoting', () => {
    expect(() => validateSlotName('sluice_orders_1')).not.toThrow();
    for (const bad of ['Orders', 'a-b', '', 'x'.repeat(64), '1abc; DROP']) {
      expect(() => validateSlotName(bad), bad).toThrow(InvalidCdcOptionError);
      expect(() => validatePublicationName(bad), bad).toThrow(InvalidCdcOptionError);
    }
  });

  it('gives the server room for BEGIN and COMMIT messages in its row limit', () => {
    expect(serverRowLimit(10)).toBe(46);
    expect(serverRowLimit(2_000_000_000)).toBe(2_147_483_647);
  });
});
