import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { expectGraphRefusal, heapBounded, mutate, mutations } from './support.js';

/**
 * JSON bodies of the admin API through the whole server (app.inject): random values, broken JSON,
 * deep nesting, prototype keys, the body limit at and past the edge. Every answer is a 4xx with
 * the Graph error envelope and no internals, never a 500.
 */

// Large enough for 100,000-deep JSON, so the nesting (not the size) is what gets refused.
const BODY_LIMIT = 2 * 1024 * 1024;

describe('admin JSON bodies under fuzzing', () => {
  let t: TestApp;
  let userId: string;
  beforeAll(async () => {
    t = await createTestApp({ env: { OPENENROLL_BODY_LIMIT_BYTES: String(BODY_LIMIT), OPENENROLL_RATE_LIMIT_MAX: '100000' } });
    const res = await t.request({ method: 'POST', url: '/v1.0/users', payload: { displayName: 'Adele Vance', userPrincipalName: 'adele@contoso.com', accountEnabled: true } });
    expect(res.statusCode, res.body).toBe(201);
    userId = res.json<{ id: string }>().id;
  });
  afterAll(() => t.close());

  const send = (method: 'POST' | 'PATCH', url: string, payload: string | Buffer) => t.request({ method, url, payload, headers: { 'content-type': 'application/json' } });
  const targets = () =>
    [
      ['POST', '/v1.0/users'],
      ['PATCH', `/v1.0/users/${userId}`],
      ['POST', '/v1.0/groups'],
      ['POST', '/beta/deviceManagement/deviceEnrollmentConfigurations'],
      ['POST', '/beta/deviceManagement/depOnboardingSettings'],
    ] as const;

  it('random JSON values are refused with the envelope (or accepted), never a 500', async () => {
    const value = fc.jsonValue({ maxDepth: 4 });
    await fc.assert(
      fc.asyncProperty(fc.nat(), value, async (pick, v) => {
        const [method, url] = targets()[pick % targets().length]!;
        const res = await send(method, url, JSON.stringify(v) ?? 'null');
        if (res.statusCode >= 300) expectGraphRefusal(res, `${method} ${url}`);
      }),
      { numRuns: 120 },
    );
  });

  it('mutated JSON text (broken syntax, stray bytes, invalid UTF-8) is a 400 or 415 envelope, never a 500', async () => {
    const valid = Buffer.from(JSON.stringify({ displayName: 'Alex Wilber', userPrincipalName: 'alex@contoso.com', accountEnabled: true, passwordProfile: { password: 'Corr3ct-Horse!' } }));
    await heapBounded(async (sample) => {
      await fc.assert(
        fc.asyncProperty(fc.nat(), mutations, async (pick, ms) => {
          const [method, url] = targets()[pick % targets().length]!;
          const res = await send(method, url, mutate(valid, ms));
          if (res.statusCode >= 300) expectGraphRefusal(res, `${method} ${url}`);
          sample();
        }),
        { numRuns: 150 },
      );
    });
  });

  it('deep nesting (100,000 levels of arrays and objects, with and without prototype keys) is a 400, not a crash', async () => {
    const depth = 100_000;
    const bodies: [string, string][] = [
      ['arrays', '['.repeat(depth) + ']'.repeat(depth)],
      ['arrays in a property', `{"displayName":${'['.repeat(depth)}${']'.repeat(depth)}}`],
      ['objects', '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)],
      // "constructor" in the text makes the JSON parser walk the value looking for prototype keys.
      ['objects with constructor', '{"constructor":'.repeat(depth) + '1' + '}'.repeat(depth)],
      ['arrays with __proto__', `{"displayName":"x","a":${'['.repeat(depth)}{"__proto__":1}${']'.repeat(depth)}}`],
      ['unclosed', '['.repeat(depth)],
    ];
    for (const [name, payload] of bodies) {
      expect(Buffer.byteLength(payload)).toBeLessThan(BODY_LIMIT);
      const res = await send('POST', '/v1.0/users', payload);
      expectGraphRefusal(res, name);
      expect(res.statusCode, name).toBe(400);
    }
  });

  it('prototype keys are refused, and pollute nothing', async () => {
    for (const payload of ['{"__proto__":{"admin":true},"displayName":"x"}', '{"constructor":{"prototype":{"admin":true}}}', '{"displayName":"x","passwordProfile":{"__proto__":{"a":1}}}']) {
      const res = await send('POST', '/v1.0/users', payload);
      expectGraphRefusal(res, payload);
      expect(res.statusCode).toBe(400);
    }
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it(`the body limit: exactly ${BODY_LIMIT} bytes is read, one more is a 413`, async () => {
    const padded = (size: number) => {
      const base = JSON.stringify({ displayName: '', userPrincipalName: 'pad@contoso.com', accountEnabled: true });
      return base.replace('"displayName":""', `"displayName":"${'a'.repeat(size - Buffer.byteLength(base))}"`);
    };
    const exact = padded(BODY_LIMIT);
    expect(Buffer.byteLength(exact)).toBe(BODY_LIMIT);
    const atLimit = await send('POST', '/v1.0/users', exact);
    // Read and validated: displayName is too long for Graph (a 400 naming it), not a 413.
    expectGraphRefusal(atLimit, 'at the limit');
    expect(atLimit.statusCode).toBe(400);
    expect(atLimit.json<{ error: { message: string } }>().error.message).toMatch(/displayName/);
    const over = await send('POST', '/v1.0/users', padded(BODY_LIMIT + 1));
    expectGraphRefusal(over, 'over the limit');
    expect(over.statusCode).toBe(413);
    const huge = await send('POST', '/v1.0/users', Buffer.alloc(4 * BODY_LIMIT, 0x5b));
    expect(huge.statusCode).toBe(413);
  });

  it('CSV uploads: random and hostile files are a 400 envelope or per-row results, never a 500', async () => {
    const csv = fc.array(fc.oneof(fc.constantFrom(',', '"', '\r\n', '\n', 'version:v1.0', '[userPrincipalName]', '\uFEFF', '=cmd|'), fc.string({ maxLength: 15 })), { maxLength: 40 }).map((p) => p.join(''));
    const urls = ['/beta/users/importCsv', '/beta/deviceManagement/importedDeviceIdentities/importCsv?type=imei'];
    await fc.assert(
      fc.asyncProperty(fc.nat(), csv, async (pick, text) => {
        const url = urls[pick % urls.length]!;
        const res = await t.request({ method: 'POST', url, payload: text, headers: { 'content-type': 'text/csv' } });
        if (res.statusCode >= 300) expectGraphRefusal(res, url);
      }),
      { numRuns: 60 },
    );
  });
});
