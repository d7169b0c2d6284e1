import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  appleIdentifierProblem,
  checkUploadedCertificate,
  EXPIRING_SOON_DAYS,
  GRACE_PERIOD_DAYS,
  pushCertificateState,
  subjectIdOf,
  topicOf,
  type PushCertificateStatus,
} from '../../src/apple/push-certificate/rules.js';
import type { CertificateInfo } from '../../src/pki/certificates.js';
import { DAY } from '../../src/shared/time.js';

const EXPIRY = new Date('2027-01-10T12:00:00.000Z');
const at = (ms: number) => new Date(EXPIRY.getTime() + ms);

describe('push certificate status over time', () => {
  it('walks active → expiringSoon → expiredInGracePeriod → expired at the documented boundaries', () => {
    const cases: [string, Date, PushCertificateStatus, number][] = [
      ['365 days before', at(-365 * DAY), 'active', 365],
      ['31 days before', at(-31 * DAY), 'active', 31],
      ['30 days and 1 ms before', at(-30 * DAY - 1), 'active', 31],
      ['exactly 30 days before', at(-30 * DAY), 'expiringSoon', 30],
      ['1 ms before expiry', at(-1), 'expiringSoon', 1],
      ['at expiry (notAfter is still valid)', at(0), 'expiringSoon', 0],
      ['1 ms after expiry', at(1), 'expiredInGracePeriod', -1],
      ['30 days after expiry (last instant of grace)', at(30 * DAY), 'expiredInGracePeriod', -30],
      ['30 days and 1 ms after', at(30 * DAY + 1), 'expired', -31],
      ['31 days after', at(31 * DAY), 'expired', -31],
    ];
    for (const [name, now, status, days] of cases) {
      const s = pushCertificateState(EXPIRY, now);
      expect({ name, status: s.status, days: s.daysUntilExpiration }).toEqual({ name, status, days });
      expect(s.gracePeriodEndDateTime?.toISOString()).toBe('2027-02-09T12:00:00.000Z');
    }
    expect(pushCertificateState(null, at(0))).toEqual({ status: 'notConfigured', daysUntilExpiration: null, gracePeriodEndDateTime: null });
  });

  it('is monotonic in time and agrees with daysUntilExpiration (property)', () => {
    const order: PushCertificateStatus[] = ['active', 'expiringSoon', 'expiredInGracePeriod', 'expired'];
    const offset = fc.integer({ min: -400 * DAY, max: 400 * DAY });
    fc.assert(
      fc.property(offset, offset, (a, b) => {
        const [early, late] = a <= b ? [a, b] : [b, a];
        const s1 = pushCertificateState(EXPIRY, at(early));
        const s2 = pushCertificateState(EXPIRY, at(late));
        expect(order.indexOf(s1.status)).toBeLessThanOrEqual(order.indexOf(s2.status));
        expect(s1.daysUntilExpiration!).toBeGreaterThanOrEqual(s2.daysUntilExpiration!);
        // expiringSoon exactly when 0..30 days are left; expired only past the grace period.
        const d = s1.daysUntilExpiration!;
        expect(s1.status === 'active').toBe(d > EXPIRING_SOON_DAYS);
        expect(s1.status === 'expiringSoon').toBe(early <= 0 && d <= EXPIRING_SOON_DAYS && early >= -EXPIRING_SOON_DAYS * DAY);
        expect(s1.status === 'expired').toBe(early > GRACE_PERIOD_DAYS * DAY);
      }),
      { numRuns: 1000 },
    );
  });
});

function fakeCert(subject: [string, string][], notAfter = EXPIRY): CertificateInfo {
  const oid: Record<string, string> = { UID: '0.9.2342.19200300.100.1.1', CN: '2.5.4.3', C: '2.5.4.6' };
  const attributes = subject.map(([name, value]) => ({ oid: oid[name]!, name, value }));
  return { subject: { attributes, text: subject.map(([n, v]) => `${n}=${v}`).join(', ') }, notAfter } as CertificateInfo;
}

describe('topic, subject id and Apple ID', () => {
  const uuid = '8f8e1b7e-2b6c-4a3e-9d0e-123456789abc';
  it('reads the topic from UID only when it is an MDM topic', () => {
    expect(topicOf(fakeCert([['UID', `com.apple.mgmt.External.${uuid}`], ['CN', `APSP:${uuid}`]]))).toBe(`com.apple.mgmt.External.${uuid}`);
    expect(topicOf(fakeCert([['UID', 'com.apple.mgmt.']]))).toBeUndefined();
    expect(topicOf(fakeCert([['UID', 'com.example.app']]))).toBeUndefined();
    expect(topicOf(fakeCert([['CN', `com.apple.mgmt.External.${uuid}`]]))).toBeUndefined();
  });

  it('shows the GUID portion as the subject id', () => {
    expect(subjectIdOf(`com.apple.mgmt.External.${uuid}`)).toBe(uuid);
    expect(subjectIdOf('com.apple.mgmt.Test.abc')).toBe('abc');
  });

  it('wants an email address as the Apple ID', () => {
    expect(appleIdentifierProblem('mdm-admins@contoso.com')).toBeUndefined();
    expect(appleIdentifierProblem('  ')).toMatch(/empty/);
    expect(appleIdentifierProblem('not-an-email')).toMatch(/email address/);
    expect(appleIdentifierProblem(`${'a'.repeat(251)}@b.com`)).toMatch(/256/);
  });

  it('refuses non-MDM, expired and other-topic certificates, in that order', () => {
    const now = at(-100 * DAY);
    const mine = `com.apple.mgmt.External.${uuid}`;
    expect(checkUploadedCertificate(fakeCert([['CN', 'x']]), null, now)).toMatchObject({ status: 400, target: 'certificate', message: expect.stringMatching(/no UID starting with 'com.apple.mgmt.'/) });
    expect(checkUploadedCertificate(fakeCert([['UID', mine]], at(-101 * DAY)), null, now)).toMatchObject({ status: 400, message: expect.stringMatching(/expired on/) });
    expect(checkUploadedCertificate(fakeCert([['UID', mine]], now), null, now)).toBeUndefined(); // valid through notAfter
    const other = checkUploadedCertificate(fakeCert([['UID', 'com.apple.mgmt.External.other']]), { topic: mine }, now);
    expect(other).toMatchObject({ status: 409, target: 'certificate' });
    expect(other!.message).toMatch(/every enrolled Apple device is bound/i);
    expect(other!.message).toMatch(/same Apple ID/);
    expect(checkUploadedCertificate(fakeCert([['UID', mine]]), { topic: mine }, now)).toBeUndefined();
  });
});
