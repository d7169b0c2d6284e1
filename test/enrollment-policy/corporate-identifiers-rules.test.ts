import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorporateCsvError, parseIdentifierCsv } from '../../src/enrollment-policy/corporate-identifiers/csv.js';
import {
  CORPORATE_IDENTIFIER_LIMITS,
  deviceContext,
  deviceImeiKey,
  deviceMatchKeys,
  imeiCandidates,
  looksLikeImei,
  luhnCheckDigit,
  luhnValid,
  parseDetails,
  parseIdentifier,
  parseImei,
  parseManufacturerModelSerial,
  parseSerial,
  supportedIdentityTypes,
} from '../../src/enrollment-policy/corporate-identifiers/rules.js';

/** A valid 15-digit IMEI from 14 digits. */
const imei15 = (fourteen: string) => fourteen + String(luhnCheckDigit(fourteen));

const digits = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: n, maxLength: n });
const serialArb = fc.string({ unit: fc.constantFrom(...'ABCDEFGHJKLMNPQRSTUVWXYZabcxyz0123456789-'), minLength: 1, maxLength: 40 }).filter((s) => /[A-Za-z1-9]/.test(s));

describe('IMEI rules (3GPP TS 23.003)', () => {
  it('computes the Luhn check digit of known IMEIs', () => {
    expect(luhnCheckDigit('49015420323751')).toBe(8); // 490154203237518, the standard example
    expect(luhnCheckDigit('35209900176148')).toBe(1);
    expect(luhnValid('490154203237518')).toBe(true);
    expect(luhnValid('490154203237517')).toBe(false);
  });

  it('accepts 14 digits as the seed writes them, and 15 with a valid check digit, keyed by the first 14', () => {
    expect(parseImei('01234567890123')).toEqual({ ok: true, identifier: '01234567890123', key: '01234567890123' });
    expect(parseImei('490154203237518')).toEqual({ ok: true, identifier: '490154203237518', key: '49015420323751' });
    expect(parseImei(' 35 209900 176148 1 ')).toEqual({ ok: true, identifier: '352099001761481', key: '35209900176148' });
  });

  it.each([
    ['490154203237517', /check digit 8/],
    ['0123456789012', /13 digits/],
    ['0123456789012345', /16 digits/],
    ['01234567890123456', /17 digits/],
    ['ABC123', /not an IMEI/],
    ['0123456789012.', /not an IMEI/],
    ['00000000000000', /placeholder/],
    ['', /empty/],
  ])('refuses %j', (v, message) => {
    const r = parseImei(v);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.problem).toMatch(message);
  });

  it('property: every 15-digit number passes exactly when its last digit is the Luhn digit of the first 14', () => {
    fc.assert(
      fc.property(digits(14), fc.integer({ min: 0, max: 9 }), (d14, last) => {
        fc.pre(!/^0+$/.test(d14));
        const r = parseImei(d14 + String(last));
        expect(r.ok).toBe(last === luhnCheckDigit(d14));
        if (r.ok) expect(r.key).toBe(d14);
      }),
    );
  });

  it('property: a single changed digit in a valid IMEI is always detected (Luhn)', () => {
    fc.assert(
      fc.property(digits(14), fc.integer({ min: 0, max: 14 }), fc.integer({ min: 1, max: 9 }), (d14, pos, delta) => {
        const valid = imei15(d14);
        const changed = valid.slice(0, pos) + String((Number(valid[pos]) + delta) % 10) + valid.slice(pos + 1);
        expect(luhnValid(changed)).toBe(false);
      }),
    );
  });

  it('property: the 14- and 15-digit forms, and what a device reports, share a key', () => {
    fc.assert(
      fc.property(digits(14), (d14) => {
        fc.pre(!/^0+$/.test(d14));
        const a = parseImei(d14);
        const b = parseImei(imei15(d14));
        expect(a.ok && b.ok && a.key === b.key).toBe(true);
        for (const form of imeiCandidates(d14)) expect(deviceImeiKey(form)).toBe(d14);
      }),
    );
  });
});

describe('serial number rules', () => {
  it('accepts letters, digits and hyphens, compared without case', () => {
    expect(parseSerial(' c02xk1abjg5h ')).toEqual({ ok: true, identifier: 'c02xk1abjg5h', key: 'C02XK1ABJG5H' });
    expect(parseSerial('0000-0002-5530-8227')).toMatchObject({ ok: true });
  });

  it.each([
    ['C02.XK1', /period/],
    ['.', /period/],
    ['ABC 123', /letters, digits and hyphens/],
    ['ABC_123', /letters, digits and hyphens/],
    ['---', /no letter or digit/],
    ['0', /placeholder/],
    ['To be filled by O.E.M.', /period/],
    ['Default string', /placeholder/],
    ['', /empty/],
  ])('refuses %j', (v, message) => {
    const r = parseSerial(v);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.problem).toMatch(message);
  });

  it('allows 128 characters and refuses 129', () => {
    expect(parseSerial('A'.repeat(128)).ok).toBe(true);
    expect(parseSerial('A'.repeat(129))).toMatchObject({ ok: false, problem: expect.stringMatching(/129 characters; at most 128/) });
  });

  it('property: any value containing a period is refused, naming the period', () => {
    fc.assert(
      fc.property(serialArb, serialArb, (a, b) => {
        const r = parseSerial(`${a}.${b}`);
        expect(r.ok).toBe(false);
        expect(r.ok ? '' : r.problem).toMatch(/period/);
      }),
    );
  });

  it('property: a valid serial and the same serial in another case have one key', () => {
    fc.assert(
      fc.property(serialArb, (s) => {
        const a = parseSerial(s);
        const b = parseSerial(s.toLowerCase());
        if (a.ok) expect(b).toMatchObject({ ok: true, key: a.key });
      }),
    );
  });
});

describe('manufacturer, model, serial', () => {
  it('accepts commas (what clients send) and semicolons (the enum text), stored with commas', () => {
    expect(parseManufacturerModelSerial('Dell,XPS 13,ABC123')).toEqual({ ok: true, identifier: 'Dell,XPS 13,ABC123', key: 'DELL,XPS 13,ABC123' });
    expect(parseManufacturerModelSerial(' Dell Inc. ; XPS  13 ; abc123 ')).toEqual({ ok: true, identifier: 'Dell Inc.,XPS 13,abc123', key: 'DELL INC.,XPS 13,ABC123' });
  });

  it.each([
    ['Dell,XPS', /2 parts/],
    ['Dell,XPS,ABC,1', /4 parts/],
    ['Dell;XPS,ABC', /mixes commas and semicolons/],
    [',XPS,ABC', /manufacturer is empty/],
    ['Dell,,ABC', /model is empty/],
    ['Dell,XPS,AB.C', /period/],
    [`${'M'.repeat(65)},XPS,ABC`, /manufacturer is 65 characters/],
  ])('refuses %j', (v, message) => {
    const r = parseManufacturerModelSerial(v);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.problem).toMatch(message);
  });

  it('matches the device reporting the same manufacturer, model and serial', () => {
    const parsed = parseIdentifier('manufacturerModelSerial', 'Microsoft Corporation,Surface Laptop 5,0F12345');
    const keys = deviceMatchKeys({ manufacturer: 'microsoft corporation ', model: 'Surface Laptop 5', serialNumber: '0f12345' }, ['manufacturerModelSerial']);
    expect(parsed.ok && keys[0]?.key === parsed.key).toBe(true);
  });
});

describe('details', () => {
  it('allows 128 characters and refuses 129 (code points, not UTF-16 units)', () => {
    expect(parseDetails('d'.repeat(128))).toEqual({ ok: true, details: 'd'.repeat(128) });
    expect(parseDetails('😀'.repeat(128))).toMatchObject({ ok: true });
    expect(parseDetails('d'.repeat(129))).toEqual({ ok: false, problem: 'details are 129 characters; at most 128 are allowed' });
    expect(parseDetails('  ')).toEqual({ ok: true, details: null });
    expect(parseDetails(undefined)).toEqual({ ok: true, details: null });
  });
});

describe('platform support (L1028–1042, -E §5.3)', () => {
  it.each([
    [{ platform: 'ios' }, ['imei', 'serialNumber']],
    [{ platform: 'mac' }, ['serialNumber']],
    [{ platform: 'windows' }, ['manufacturerModelSerial']],
    [{ platform: 'android', osVersion: '9' }, ['imei', 'serialNumber']],
    [{ platform: 'android', osVersion: '10' }, []],
    [{ platform: 'androidForWork', osVersion: '11.0' }, ['imei', 'serialNumber']],
    [{ platform: 'androidForWork', osVersion: '12' }, []],
    [{ platform: 'android', method: 'androidWorkProfile', osVersion: '11' }, ['imei', 'serialNumber']],
    [{ platform: 'android', method: 'androidCorporateWorkProfile', osVersion: '9' }, []],
    [{ platform: 'android', method: 'androidFullyManaged' }, []],
    [{ platform: 'android', method: 'androidDedicated' }, []],
    [{ platform: 'windows', method: 'windowsAutopilot' }, ['manufacturerModelSerial']],
    [{ platform: 'linux' }, []],
    [{}, ['imei', 'serialNumber', 'manufacturerModelSerial']],
  ] as const)('%j honours %j', (ctx, types) => {
    expect(supportedIdentityTypes(ctx)).toEqual(types);
  });

  it('reads the context from a device record', () => {
    const row = (over: Partial<Parameters<typeof deviceContext>[0]>) => ({ operating_system: null, device_type: 'unknown', device_enrollment_type: 'unknown', os_version: null, ...over });
    expect(supportedIdentityTypes(deviceContext(row({ operating_system: 'iPadOS', device_type: 'iPad' })))).toEqual(['imei', 'serialNumber']);
    expect(supportedIdentityTypes(deviceContext(row({ operating_system: 'macOS', device_type: 'macMDM' })))).toEqual(['serialNumber']);
    expect(supportedIdentityTypes(deviceContext(row({ operating_system: 'Windows', device_type: 'desktop' })))).toEqual(['manufacturerModelSerial']);
    expect(supportedIdentityTypes(deviceContext(row({ operating_system: 'Android', device_type: 'androidForWork', os_version: '13' })))).toEqual([]);
    expect(supportedIdentityTypes(deviceContext(row({ operating_system: 'Android', device_type: 'androidEnterprise' })))).toEqual([]);
    expect(
      supportedIdentityTypes(deviceContext(row({ operating_system: 'Android', device_type: 'android', device_enrollment_type: 'androidEnterpriseCorporateWorkProfile', os_version: '9' }))),
    ).toEqual([]);
  });

  it('a macOS device matches by serial only, never by IMEI', () => {
    const keys = deviceMatchKeys({ imei: imei15('35209900176148'), serialNumber: 'C02XK1ABJG5H' }, supportedIdentityTypes({ platform: 'mac' }));
    expect(keys).toEqual([{ type: 'serialNumber', key: 'C02XK1ABJG5H' }]);
  });
});

describe('parseIdentifierCsv', () => {
  const rowsOf = (n: number, make: (i: number) => string) => Array.from({ length: n }, (_, i) => make(i)).join('\n');
  const errorOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(CorporateCsvError);
      return (err as Error).message;
    }
    throw new Error('expected a CorporateCsvError');
  };

  it('reads the seed example: two columns, no header', () => {
    const rows = parseIdentifierCsv('01234567890123,device details\n02234567890123,device details\n', 'imei');
    expect(rows).toEqual([
      { row: 1, written: '01234567890123', details: 'device details', identifier: '01234567890123', key: '01234567890123' },
      { row: 2, written: '02234567890123', details: 'device details', identifier: '02234567890123', key: '02234567890123' },
    ]);
  });

  it('accepts 5,000 rows and refuses 5,001 whole', () => {
    expect(parseIdentifierCsv(rowsOf(5000, (i) => `SER${i},d`), 'serialNumber')).toHaveLength(5000);
    expect(errorOf(() => parseIdentifierCsv(rowsOf(5001, (i) => `SER${i},d`), 'serialNumber'))).toMatch(/more than 5,000 rows/);
  });

  it("doesn't count blank rows, but numbers rows as the file does", () => {
    const rows = parseIdentifierCsv('\nSER1,a\n\n , \nSER2\r\n', 'serialNumber');
    expect(rows.map((r) => [r.row, r.identifier, r.details])).toEqual([
      [2, 'SER1', 'a'],
      [5, 'SER2', null],
    ]);
  });

  it.each([
    ['IMEI,Details\n01234567890123,a', 'imei'],
    ['Serial number,Details\nABC,a', 'serialNumber'],
    ['Device,Details\nABC,a', 'serialNumber'],
    ['Manufacturer,Model,Serial,Details\nDell,XPS,ABC,a', 'manufacturerModelSerial'],
  ] as const)('refuses a file with a header row: %j', (text, type) => {
    expect(errorOf(() => parseIdentifierCsv(text, type))).toMatch(/Row 1 looks like a header.*no header row/);
  });

  it('refuses the whole file when a serial contains a period', () => {
    expect(errorOf(() => parseIdentifierCsv('GOOD1,a\nBAD.1,b\nBAD.2,c', 'serialNumber'))).toMatch(/^Row 2: serial number in 'BAD\.1' contains a period.*\(2 rows have one\)/);
    expect(errorOf(() => parseIdentifierCsv('Dell Inc.,XPS,AB.C,d', 'manufacturerModelSerial'))).toMatch(/Row 1: .*period/);
    // A period in the manufacturer or the details is not a serial's.
    expect(parseIdentifierCsv('Dell Inc.,XPS,ABC,v1.2', 'manufacturerModelSerial')[0]).toMatchObject({ identifier: 'Dell Inc.,XPS,ABC', details: 'v1.2' });
  });

  it('reports rows of another identifier type, and wrong column counts, per row', () => {
    const rows = parseIdentifierCsv(`ABC123,a\n${imei15('35209900176148')},b\nDell,XPS,ABC\nA,b,c,d,e\n"X,Y",z`, 'serialNumber');
    expect(rows.map((r) => r.error ?? 'ok')).toEqual([
      'ok',
      expect.stringMatching(/looks like an IMEI.*one identifier type/),
      expect.stringMatching(/3 columns.*looks like manufacturer,model,serial/),
      expect.stringMatching(/5 columns; expected 2/),
      expect.stringMatching(/letters, digits and hyphens/),
    ]);
    const imeis = parseIdentifierCsv('ABC123XYZ,a\n0123456789012,b\nDell;XPS;ABC\n490154203237517,bad check digit\n490154203237518,good', 'imei');
    expect(imeis.map((r) => r.error ?? r.key)).toEqual([
      expect.stringMatching(/looks like a serial number, not an IMEI/),
      expect.stringMatching(/13 digits/),
      expect.stringMatching(/looks like manufacturer;model;serial/),
      expect.stringMatching(/check digit 8 \(Luhn/),
      '49015420323751',
    ]);
    const mms = parseIdentifierCsv('ABC123,a\nDell;XPS;ABC,b\nDell,XPS,ABC\nDell,XPS,ABC,d,e', 'manufacturerModelSerial');
    expect(mms.map((r) => r.error ?? r.identifier)).toEqual([
      expect.stringMatching(/not manufacturer,model,serial; a file holds one identifier type/),
      'Dell,XPS,ABC',
      'Dell,XPS,ABC',
      expect.stringMatching(/5 columns/),
    ]);
  });

  it('refuses details of 129 characters on their row and accepts 128; quoted details may hold commas', () => {
    const rows = parseIdentifierCsv(`A1,${'d'.repeat(128)}\nA2,${'d'.repeat(129)}\nA3,"x, y"`, 'serialNumber');
    expect(rows.map((r) => r.error ?? r.details)).toEqual(['d'.repeat(128), 'details are 129 characters; at most 128 are allowed.', 'x, y']);
  });

  it('refuses a file that is not CSV, empty, or one huge row', () => {
    expect(errorOf(() => parseIdentifierCsv('ABC,"unclosed', 'serialNumber'))).toMatch(/not valid CSV/);
    expect(errorOf(() => parseIdentifierCsv('\n\n', 'serialNumber'))).toMatch(/no identifiers/);
    expect(errorOf(() => parseIdentifierCsv(`A,${'x'.repeat(CORPORATE_IDENTIFIER_LIMITS.maxRecordChars)}`, 'serialNumber'))).toMatch(/more than 4096 characters/);
  });

  it('property: never throws anything but CorporateCsvError, and every row is either valid or has an error', () => {
    const cell = fc.string({ unit: fc.constantFrom('A', '1', '.', ',', '"', ';', ' ', '\n', '-', 'é'), maxLength: 12 });
    fc.assert(
      fc.property(fc.array(cell, { maxLength: 12 }), fc.constantFrom('imei', 'serialNumber', 'manufacturerModelSerial' as const), (cells, type) => {
        try {
          for (const r of parseIdentifierCsv(cells.join(','), type)) {
            expect(r.error !== undefined || (r.identifier !== undefined && r.key !== undefined)).toBe(true);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(CorporateCsvError);
        }
      }),
    );
  });

  it('looksLikeImei only calls 15 digits with a valid check digit an IMEI', () => {
    expect(looksLikeImei(imei15('49015420323751'))).toBe(true);
    expect(looksLikeImei('490154203237517')).toBe(false);
    expect(looksLikeImei('01234567890123')).toBe(false); // the seed's own 14-digit "IMEI or serial"
  });
});
