import { describe, expect, it } from 'vitest';
import { SourceSecretError } from '../../../lib/cdc/errors.js';
import { isSourceReference, resolveSourceConnection } from '../../../lib/cdc/source-secret.js';
import { CdcSource, connectionStringHasPassword } from '../../../schemas/cdc.js';

const url = 'postgres://sluice:s3cret@db.internal:5432/shop';
const sources = {
  env: { SHOP_DB: url, EMPTY: ' ' },
  readFile: (path: string) => {
    if (path === '/run/secrets/shop') return `${url}\nsecond line ignored\n`;
    if (path === '/run/secrets/other') return 'mysql://x\n';
    throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
  },
};

describe('source connection references', () => {
  it('accepts references and literal strings without a password, refuses a literal password', () => {
    for (const ok of [
      'env:SHOP_DB',
      'file:/run/secrets/shop',
      'file:///run/secrets/shop',
      'postgres://postgres@127.0.0.1:5432/shop',
      'postgresql://127.0.0.1/shop?sslmode=require',
      'postgres://user:@host/db',
    ]) {
      expect(CdcSource.safeParse({ connectionString: ok }).success, ok).toBe(true);
    }
    for (const bad of [
      url,
      'postgres://u:p@h/db',
      'postgres://h/db?user=u&password=p',
      'env:1BAD',
      'env:',
      'file:relative/path',
      'file://host/path',
      'mysql://u@h/db',
    ]) {
      expect(CdcSource.safeParse({ connectionString: bad }).success, bad).toBe(false);
    }
    const refused = CdcSource.safeParse({ connectionString: url });
    expect(refused.error?.issues[0]?.message).toMatch(/env:NAME or file:\/path/);
    expect(connectionStringHasPassword('postgres://a@b:5432/c')).toBe(false);
    expect(connectionStringHasPassword('postgres://a:b@c/d')).toBe(true);
    expect(isSourceReference('env:X')).toBe(true);
    expect(isSourceReference(url)).toBe(false);
  });

  it('resolves env and file references on the worker; literal strings are themselves', () => {
    expect(resolveSourceConnection('env:SHOP_DB', sources)).toBe(url);
    expect(resolveSourceConnection('file:/run/secrets/shop', sources)).toBe(url);
    expect(resolveSourceConnection('file:///run/secrets/shop', sources)).toBe(url);
    expect(resolveSourceConnection('postgres://p@h/db', sources)).toBe('postgres://p@h/db');
  });

  it('fails retryably, naming the reference and never the value, when a reference does not resolve', () => {
    const failures = [
      ['env:MISSING', /variable MISSING is not set/],
      ['env:EMPTY', /variable EMPTY is not set/],
      ['file:/run/secrets/none', /cannot read \/run\/secrets\/none \(ENOENT\)/],
      ['file:/run/secrets/other', /not a postgres:\/\/ connection string/],
    ] as const;
    for (const [reference, message] of failures) {
      let thrown: unknown;
      try {
        resolveSourceConnection(reference, sources);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, reference).toBeInstanceOf(SourceSecretError);
      const err = thrown as SourceSecretError;
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain('mysql');
      expect(err.kind).toBe('source-secret');
      expect(err.failureType).toBe('ServiceUnavailable');
    }
  });
});
