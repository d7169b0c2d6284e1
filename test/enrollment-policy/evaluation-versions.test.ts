import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareVersions, formatVersion, majorVersion, parseDeviceVersion, parseRestrictionVersion } from '../../src/enrollment-policy/evaluation/versions.js';

const bound = (text: string, platform: Parameters<typeof parseRestrictionVersion>[1]) => {
  const r = parseRestrictionVersion(text, platform);
  return 'version' in r ? formatVersion(r.version) : r.error;
};

describe('OS versions (-E §6.2)', () => {
  it('restriction bounds: digits, at most the format\'s parts (iOS 3, Android 4, Windows 4)', () => {
    expect(bound('15.0.0', 'ios')).toBe('15.0.0');
    expect(bound(' 15.0 ', 'ios')).toBe('15.0');
    expect(bound('15.00.01', 'ios')).toBe('15.0.1');
    expect(bound('15.0.0.1', 'ios')).toBe("'15.0.0.1' is not a ios version; use major.minor.rev (digits, at most 3 parts)");
    expect(bound('10.0.19041.1', 'windows')).toBe('10.0.19041.1');
    expect(bound('10.0.19041.1.2', 'windows')).toContain('major.minor.build.rev');
    expect(bound('13.0.0.1', 'android')).toBe('13.0.0.1');
    expect(bound('13.0.0.1', 'androidForWork')).toBe('13.0.0.1');
    for (const bad of ['', '.', '15.', '.15', '15..0', '15.x', '-1', '15 .0', '1e3', '1234567890']) expect(bound(bad, 'ios')).toContain('is not a ios version');
    expect(bound('14.0', 'mac')).toBe("OS version ranges can't be set for the mac platform");
    expect(bound('1.0', 'linux')).toContain("can't be set");
  });

  it('device versions: up to 4 numeric parts, a non-numeric suffix is dropped, anything else is unreadable', () => {
    const dev = (t: string | null | undefined) => {
      const v = parseDeviceVersion(t);
      return v && formatVersion(v);
    };
    expect(dev('17')).toBe('17');
    expect(dev('14.1.2a')).toBe('14.1.2');
    expect(dev('10.15.3 (19D2064)')).toBe('10.15.3');
    expect(dev(' 10.0.22631.2428')).toBe('10.0.22631.2428');
    expect(dev('007.01')).toBe('7.1');
    for (const bad of [null, undefined, '', 'v17', 'Android', '1.2.3.4.5', '17.', '.5', '1234567890.1']) expect(dev(bad)).toBeUndefined();
    expect(majorVersion('11.0.1')).toBe(11);
    expect(majorVersion('x')).toBeUndefined();
  });

  it('compares part by part as numbers, missing parts are 0', () => {
    const v = (t: string) => parseDeviceVersion(t)!;
    expect(compareVersions(v('15'), v('15.0.0'))).toBe(0);
    expect(compareVersions(v('15.10'), v('15.9'))).toBe(1);
    expect(compareVersions(v('10.0.19041.0'), v('10.0.19041.1'))).toBe(-1);
    expect(compareVersions(v('100000000'), v('99999999.9'))).toBe(1);
  });

  it('compare agrees with numeric comparison, is antisymmetric and ignores trailing zeros', () => {
    const parts = fc.array(fc.integer({ min: 0, max: 999_999 }), { minLength: 1, maxLength: 4 });
    const numeric = (a: number[], b: number[]) => {
      for (let i = 0; i < 4; i++) {
        const d = (a[i] ?? 0) - (b[i] ?? 0);
        if (d !== 0) return Math.sign(d);
      }
      return 0;
    };
    fc.assert(
      fc.property(parts, parts, (a, b) => {
        const va = parseDeviceVersion(a.join('.'))!;
        const vb = parseDeviceVersion(b.join('.'))!;
        expect(compareVersions(va, vb)).toBe(numeric(a, b));
        expect(compareVersions(vb, va)).toBe(-numeric(a, b) || 0);
        if (a.length < 4) expect(compareVersions(va, parseDeviceVersion([...a, 0].join('.'))!)).toBe(0);
      }),
    );
  });
});
