import { describe, expect, it } from 'vitest';
import { toGraphError } from '../../src/graph/error-handler.js';
import { isStoreUnavailable } from '../../src/store/db.js';

/** Which failures mean "the store can't be reached" (503, retry) rather than "this query failed" (500). */

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isStoreUnavailable', () => {
  it('recognises socket errors and PostgreSQL connection and shutdown classes', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006', 'SQLITE_BUSY']) {
      expect(isStoreUnavailable(withCode(code)), code).toBe(true);
    }
  });

  it("recognises node-postgres's messages for lost connections", () => {
    for (const message of ['Connection terminated unexpectedly', 'Connection terminated due to connection timeout', 'timeout exceeded when trying to connect', 'Client has encountered a connection error and is not queryable']) {
      expect(isStoreUnavailable(new Error(message)), message).toBe(true);
    }
  });

  it('looks through cause and AggregateError', () => {
    expect(isStoreUnavailable(new Error('query failed', { cause: withCode('57P01') }))).toBe(true);
    expect(isStoreUnavailable(new AggregateError([new Error('a'), withCode('ECONNREFUSED')], 'connect'))).toBe(true);
  });

  it('is false for failed queries and anything else', () => {
    for (const err of [withCode('23505', 'duplicate key'), withCode('42P01', 'relation does not exist'), withCode('SQLITE_CONSTRAINT_UNIQUE'), new TypeError('x'), undefined, null, 'ECONNREFUSED', {}]) {
      expect(isStoreUnavailable(err)).toBe(false);
    }
    // A cycle of causes ends.
    const a: Error & { cause?: unknown } = new Error('a');
    a.cause = a;
    expect(isStoreUnavailable(a)).toBe(false);
  });

  it('becomes a 503 ServiceUnavailable with Retry-After in the Graph error handler, without the detail', () => {
    const ge = toGraphError(withCode('57P01', 'terminating connection due to administrator command'), 1024);
    expect([ge.statusCode, ge.code, ge.options.retryAfterSeconds]).toEqual([503, 'ServiceUnavailable', 5]);
    expect(ge.message).not.toMatch(/terminating|57P01/);
    expect(toGraphError(withCode('23505'), 1024).statusCode).toBe(500);
  });
});
