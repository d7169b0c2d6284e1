import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  apnsExpiration,
  classifyApnsResponse,
  DEFAULT_APNS_RETRY_POLICY,
  deviceTokenHex,
  mdmPushBody,
  parseApnsErrorBody,
  retryAfterMs,
  retryDelayMs,
} from '../../src/apple/apns/rules.js';
import { loadConfig } from '../../src/config.js';

describe('APNs response classification', () => {
  it.each([
    [200, undefined, 'sent'],
    [410, 'Unregistered', 'unregistered'],
    [410, 'ExpiredToken', 'unregistered'],
    [410, undefined, 'unregistered'],
    [400, 'BadDeviceToken', 'unregistered'],
    [400, 'DeviceTokenNotForTopic', 'unregistered'],
    [403, 'BadCertificate', 'certificate'],
    [403, 'BadCertificateEnvironment', 'certificate'],
    [403, 'Forbidden', 'certificate'],
    [403, undefined, 'certificate'],
    [400, 'TopicDisallowed', 'certificate'],
    [429, 'TooManyRequests', 'retry'],
    [500, 'InternalServerError', 'retry'],
    [503, 'ServiceUnavailable', 'retry'],
    [503, 'Shutdown', 'retry'],
    [502, undefined, 'retry'],
    [400, 'BadPriority', 'rejected'],
    [400, 'PayloadEmpty', 'rejected'],
    [404, 'BadPath', 'rejected'],
    [405, 'MethodNotAllowed', 'rejected'],
    [413, 'PayloadTooLarge', 'rejected'],
  ] as const)('%i %s → %s', (status, reason, kind) => {
    expect(classifyApnsResponse(status, reason).kind).toBe(kind);
  });

  it('reads reason and timestamp from error bodies, tolerating garbage', () => {
    expect(parseApnsErrorBody('{"reason":"Unregistered","timestamp":1700000000000}')).toEqual({ reason: 'Unregistered', timestamp: 1700000000000 });
    expect(parseApnsErrorBody('')).toEqual({});
    expect(parseApnsErrorBody('<html>')).toEqual({});
    expect(parseApnsErrorBody('null')).toEqual({});
    expect(parseApnsErrorBody('{"reason":"has spaces"}')).toEqual({});
    expect(parseApnsErrorBody('{"reason":42,"timestamp":"x"}')).toEqual({});
  });
});

describe('APNs retry timing', () => {
  const policy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000 };

  it('backs off exponentially with equal jitter, within the cap, and stops at the attempt limit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (retry, r) => {
        const d = retryDelayMs(policy, retry, undefined, r);
        if (retry >= policy.maxAttempts) return d === undefined;
        const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
        return d !== undefined && d >= Math.floor(exp / 2) && d <= exp && d <= policy.maxDelayMs;
      }),
    );
  });

  it('waits exactly a Retry-After up to the cap, and gives up beyond it', () => {
    expect(retryDelayMs(policy, 1, 1000, 0.9)).toBe(1000);
    expect(retryDelayMs(policy, 1, 1001, 0.9)).toBeUndefined();
    expect(retryDelayMs(policy, 1, 0, 0.9)).toBe(0);
    expect(retryDelayMs(policy, 4, 10, 0.9)).toBeUndefined();
  });

  it('bounds the worst case of the default policy', () => {
    const worst = [1, 2, 3].reduce((sum, retry) => sum + retryDelayMs(DEFAULT_APNS_RETRY_POLICY, retry, undefined, 0.999999)!, 0);
    expect(retryDelayMs(DEFAULT_APNS_RETRY_POLICY, DEFAULT_APNS_RETRY_POLICY.maxAttempts, undefined, 0)).toBeUndefined();
    expect(worst).toBeLessThan(2000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(retryAfterMs('7', now)).toBe(7000);
    expect(retryAfterMs(['3', '9'], now)).toBe(3000);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000);
    expect(retryAfterMs('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('-1', now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});

describe('APNs device tokens and payloads', () => {
  it('takes hex or base64 tokens of 32 to 100 bytes', () => {
    const hex32 = 'Ab'.repeat(32);
    expect(deviceTokenHex(hex32)).toBe('ab'.repeat(32));
    expect(deviceTokenHex(Buffer.alloc(32, 0xab).toString('base64'))).toBe('ab'.repeat(32));
    expect(deviceTokenHex('ab'.repeat(31))).toBeUndefined();
    expect(deviceTokenHex('ab'.repeat(100))).toBe('ab'.repeat(100));
    expect(deviceTokenHex('ab'.repeat(101))).toBeUndefined();
    expect(deviceTokenHex(Buffer.alloc(31).toString('base64'))).toBeUndefined();
    expect(deviceTokenHex(`<${hex32}>`)).toBeUndefined();
    expect(deviceTokenHex('ab '.repeat(32))).toBe('ab'.repeat(32));
    expect(deviceTokenHex('')).toBeUndefined();
    expect(deviceTokenHex(null)).toBeUndefined();
  });

  it('round-trips any token between its bytes, hex and base64', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 100 }), (bytes) => {
        const b = Buffer.from(bytes);
        return deviceTokenHex(b.toString('hex')) === b.toString('hex') && deviceTokenHex(b.toString('base64')) === b.toString('hex');
      }),
    );
  });

  it('puts the PushMagic and nothing else in the body, whatever it contains', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (magic) => {
        expect(JSON.parse(mdmPushBody(magic))).toEqual({ mdm: magic });
      }),
    );
    expect(mdmPushBody('5C8E-"x"')).toBe('{"mdm":"5C8E-\\"x\\""}');
  });

  it('expresses apns-expiration in epoch seconds', () => {
    expect(apnsExpiration(new Date('2026-01-01T00:00:00.999Z'), 60_000)).toBe(String(Date.parse('2026-01-01T00:01:00Z') / 1000));
  });
});

describe('APNs configuration', () => {
  it("defaults to Apple's production host and takes an https URL and a CA file", () => {
    expect(loadConfig({}).apns).toEqual({ url: 'https://api.push.apple.com', caFile: undefined, pushBacklog: 128 });
    expect(loadConfig({ OPENENROLL_APNS_URL: 'https://127.0.0.1:9443/', OPENENROLL_APNS_CA_FILE: '/tmp/ca.pem' }).apns).toEqual({ url: 'https://127.0.0.1:9443', caFile: '/tmp/ca.pem', pushBacklog: 128 });
  });

  it('refuses a non-https APNs URL', () => {
    expect(() => loadConfig({ OPENENROLL_APNS_URL: 'http://api.push.apple.com' })).toThrow(/OPENENROLL_APNS_URL must be an https URL/);
    expect(() => loadConfig({ OPENENROLL_APNS_URL: 'api.push.apple.com' })).toThrow(/OPENENROLL_APNS_URL/);
  });
});
