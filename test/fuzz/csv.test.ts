import fc from 'fast-check';
import { expect, it } from 'vitest';
import { CONFIGURATOR_LIMITS, ConfiguratorCsvError, parseConfiguratorCsv } from '../../src/apple/enrollment/configurator-rules.js';
import { CSV_LIMITS, CsvImportError, parseUserCsv } from '../../src/directory/csv-users.js';
import { CorporateCsvError, parseIdentifierCsv } from '../../src/enrollment-policy/corporate-identifiers/csv.js';
import { CORPORATE_IDENTIFIER_LIMITS, IDENTITY_TYPES } from '../../src/enrollment-policy/corporate-identifiers/rules.js';
import { maxBlankRows, readCsvRecords } from '../../src/shared/csv.js';
import { heapBounded, mutate, mutations, pureDescribe, refuses, sharedFixture, typedOnly } from './support.js';

/**
 * The CSV readers behind every upload (users, corporate identifiers, Apple Configurator serials):
 * random and mutated files, quoting tricks, row-length and row-count limits at and past the edge.
 */

class Refused extends Error {}
const limits = { maxRecordChars: 1000, maxRows: 50, rowTooLong: (r: number) => `row ${r} too long`, tooManyRows: () => 'too many rows', fail: (m: string) => new Refused(m) };

const SAMPLES = {
  users: 'version:v1.0\nName [displayName] Required,User name [userPrincipalName] Required,Initial password [passwordProfile] Required,Block sign in (Yes/No) [accountEnabled] Required\nAdele Vance,adele@contoso.com,Corr3ct-Horse!,No\n"Vance, Alex",alex@contoso.com,Corr3ct-Horse!,Yes\n',
  identifiers: '490154203237518,Sales phone\n35345678901234,"Details, quoted"\n',
  serials: 'F2LXK0N8HG7F,Front desk\nC02MT66KFLHH,\n"DMPXK0N8HG7G","Lab, shelf 2"\n',
  autopilot: sharedFixture('windows-android/autopilot-device-import.template.csv')?.toString('utf8') ?? 'Device Serial Number,Windows Product ID,Hardware Hash\nR9-ZNP67,,T0Hu\n',
};

/** Every parser with its whole-file error; a row problem is reported in the row, never thrown. */
function parseAll(text: string): void {
  typedOnly([Refused], () => readCsvRecords(text, limits));
  typedOnly([CsvImportError], () => parseUserCsv(text));
  for (const type of IDENTITY_TYPES) typedOnly([CorporateCsvError], () => parseIdentifierCsv(text, type));
  typedOnly([ConfiguratorCsvError], () => parseConfiguratorCsv(text));
}

pureDescribe('CSV uploads under fuzzing', () => {
  it('the samples parse', () => {
    expect(parseUserCsv(SAMPLES.users).filter((r) => !r.error)).toHaveLength(2);
    expect(parseIdentifierCsv(SAMPLES.identifiers, 'imei').filter((r) => !r.error)).toHaveLength(2);
    expect(parseConfiguratorCsv(SAMPLES.serials).filter((r) => !r.error)).toHaveLength(3);
  });

  it('random text and CSV-shaped text give records or the parser’s own error', async () => {
    const piece = fc.constantFrom(',', '"', '""', '\r', '\n', '\r\n', '\uFEFF', ' ', 'version:v1.0', '[userPrincipalName]', 'serial', 'imei', '=cmd|', '\u0000', 'é', '353456789012345', 'F2LXK0N8HG7F');
    const csvText = fc.array(fc.oneof({ weight: 3, arbitrary: piece }, { weight: 1, arbitrary: fc.string({ maxLength: 20 }) }), { maxLength: 60 }).map((p) => p.join(''));
    await heapBounded((sample) => {
      fc.assert(
        fc.property(csvText, (t) => {
          parseAll(t);
          sample();
        }),
        { numRuns: 300 },
      );
      fc.assert(fc.property(fc.uint8Array({ maxLength: 1000 }), (b) => parseAll(Buffer.from(b).toString('utf8'))), { numRuns: 150 });
    });
  });

  it('mutated sample files give records or the parser’s own error', () => {
    const all = Object.values(SAMPLES).map((s) => Buffer.from(s));
    fc.assert(fc.property(fc.nat(), mutations, (pick, ms) => parseAll(mutate(all[pick % all.length]!, ms).toString('utf8'))), { numRuns: 300 });
  });

  it('row length: exactly the limit is read, one character more refuses the file', () => {
    const row = (chars: number) => `${'a'.repeat(chars - 1)},b`; // cells' characters, without the comma
    expect(readCsvRecords(`${row(limits.maxRecordChars)}\n`, limits)).toHaveLength(1);
    refuses([Refused], () => readCsvRecords(`${row(limits.maxRecordChars + 1)}\n`, limits));
    // An unclosed quote swallowing the rest of a large file is stopped by the reader's backstop, not read whole.
    refuses([Refused], () => readCsvRecords(`"${'x'.repeat(5 * limits.maxRecordChars)}`, limits));
    refuses([CsvImportError], () => parseUserCsv(`a,b\n"${'x'.repeat(CSV_LIMITS.maxBytes - 10)}`));
    refuses([ConfiguratorCsvError], () => parseConfiguratorCsv(`F2LXK0N8HG7F,${'x'.repeat(CONFIGURATOR_LIMITS.csvRecordChars)}`));
    refuses([CorporateCsvError], () => parseIdentifierCsv(`"${'1'.repeat(CORPORATE_IDENTIFIER_LIMITS.maxBytes - 10)}`, 'imei'));
  });

  it('row count: exactly the limit is read, one more row refuses the file', () => {
    const rows = (n: number) => Array.from({ length: n }, (_, i) => `r${i}`).join('\n');
    expect(readCsvRecords(rows(limits.maxRows), limits)).toHaveLength(limits.maxRows);
    refuses([Refused], () => readCsvRecords(rows(limits.maxRows + 1), limits));
    // Blank rows don't count.
    expect(readCsvRecords(`${rows(limits.maxRows)}\n\n\n,,\n`, limits)).toHaveLength(limits.maxRows);
    const serials = (n: number) => Array.from({ length: n }, (_, i) => `C02X${String(i).padStart(8, '0')}`).join('\r\n');
    expect(parseConfiguratorCsv(serials(CONFIGURATOR_LIMITS.serialsPerImport))).toHaveLength(CONFIGURATOR_LIMITS.serialsPerImport);
    refuses([ConfiguratorCsvError], () => parseConfiguratorCsv(serials(CONFIGURATOR_LIMITS.serialsPerImport + 1)));
    const header = 'Name [displayName] Required,User name [userPrincipalName] Required,Initial password [passwordProfile] Required,Block sign in (Yes/No) [accountEnabled] Required';
    const users = (n: number) => [header, ...Array.from({ length: n }, (_, i) => `U${i},u${i}@contoso.com,Corr3ct-Horse!,No`)].join('\n');
    expect(parseUserCsv(users(CSV_LIMITS.maxDataRows))).toHaveLength(CSV_LIMITS.maxDataRows);
    refuses([CsvImportError], () => parseUserCsv(users(CSV_LIMITS.maxDataRows + 1)));
  });

  it('blank rows: exactly the tolerated number is read, one more refuses the file before reading it all', () => {
    const blanks = maxBlankRows(limits.maxRows);
    expect(readCsvRecords(`r0\n${'\n'.repeat(blanks)}r1\n`, limits)).toEqual([
      { row: 1, cells: ['r0'] },
      { row: blanks + 2, cells: ['r1'] },
    ]);
    refuses([Refused], () => readCsvRecords(`r0\n${'\n'.repeat(blanks + 1)}r1\n`, limits));
    // A 5 MiB upload of nothing but line breaks stops after the tolerated blanks instead of being read to its end.
    refuses([CsvImportError], () => parseUserCsv('\n'.repeat(CSV_LIMITS.maxBytes)));
  });

  it('a file of only separators, quotes or line breaks is refused or read, never hangs', () => {
    // Linear but not free: a blank line costs the CSV reader about a microsecond, so 64 KiB keeps this quick.
    for (const unit of [',', '"', '\n', '\r', '""', '\uFEFF']) {
      const text = unit.repeat(Math.floor((64 * 1024) / unit.length));
      parseAll(text);
    }
  });
});
