import { describe, expect, it } from 'vitest';
import { CSV_LIMITS, CsvImportError, parseUserCsv } from '../../src/directory/csv-users.js';
import { TEMPLATE_HEADER } from './helpers.js';


function refused(csv: string): string {
  try {
    parseUserCsv(csv);
  } catch (err) {
    if (err instanceof CsvImportError) return err.message;
    throw err;
  }
  throw new Error('expected the file to be refused');
}

describe('CSV user files', () => {
  it("reads Entra's bulk-create template, with its version line and Excel's padding", () => {
    const rows = parseUserCsv(
      [
        'version:v1.0,,,,,,,,,,,,,,,,',
        TEMPLATE_HEADER,
        'Chris Green,chris@contoso.com,Passw0rd!,No,Chris,Green,Engineer,IT,us,,,,Building 4,,,,+1 555 0100',
        'Blocked User,blocked@contoso.com,Passw0rd!,Yes,,,,,,,,,,,,,',
      ].join('\r\n'),
    );
    expect(rows).toEqual([
      {
        row: 3,
        userPrincipalName: 'chris@contoso.com',
        input: {
          displayName: 'Chris Green',
          userPrincipalName: 'chris@contoso.com',
          accountEnabled: true,
          givenName: 'Chris',
          surname: 'Green',
          jobTitle: 'Engineer',
          department: 'IT',
          usageLocation: 'us',
          officeLocation: 'Building 4',
          mobilePhone: '+1 555 0100',
          passwordProfile: { password: 'Passw0rd!' },
        },
      },
      {
        row: 4,
        userPrincipalName: 'blocked@contoso.com',
        input: { displayName: 'Blocked User', userPrincipalName: 'blocked@contoso.com', accountEnabled: false, passwordProfile: { password: 'Passw0rd!' } },
      },
    ]);
  });

  it('reads plain property-name headers in any order and case, with a BOM', () => {
    const rows = parseUserCsv(
      '\uFEFFdisplayname,USERPRINCIPALNAME,password,accountEnabled,forceChangePasswordNextSignIn,userType,employeeId,mail,mailNickname\n' +
        'Ann,ann@contoso.com,Passw0rd!,false,false,guest,E1,ann@mail.contoso.com,ann.x\n' +
        'Bob,bob@contoso.com,,,,,,,\n',
    );
    expect(rows[0]).toEqual({
      row: 2,
      userPrincipalName: 'ann@contoso.com',
      input: {
        displayName: 'Ann',
        userPrincipalName: 'ann@contoso.com',
        accountEnabled: false,
        userType: 'Guest',
        employeeId: 'E1',
        mail: 'ann@mail.contoso.com',
        mailNickname: 'ann.x',
        passwordProfile: { password: 'Passw0rd!', forceChangePasswordNextSignIn: false },
      },
    });
    expect(rows[1]).toEqual({ row: 3, userPrincipalName: 'bob@contoso.com', input: { displayName: 'Bob', userPrincipalName: 'bob@contoso.com' } });
  });

  it('numbers rows as a spreadsheet does: blank rows count, quoted line breaks do not', () => {
    const rows = parseUserCsv('userPrincipalName,displayName\n\n"a@contoso.com","Line\nBreak"\n,\nb@contoso.com,B\n');
    expect(rows.map((r) => r.row)).toEqual([3, 5]);
    expect(rows[0]!.input?.displayName).toBe('Line\nBreak');
  });

  it('fails a bad row alone, naming the column as written', () => {
    const rows = parseUserCsv(
      [
        TEMPLATE_HEADER,
        'Ok,ok@contoso.com,Passw0rd!,No,,,,,,,,,,,,,',
        'No UPN,,Passw0rd!,No,,,,,,,,,,,,,',
        ',noname@contoso.com,Passw0rd!,No,,,,,,,,,,,,,',
        'Bad UPN,bad-upn,Passw0rd!,No,,,,,,,,,,,,,',
        'Weak,weak@contoso.com,password,No,,,,,,,,,,,,,',
        'Block?,maybe@contoso.com,Passw0rd!,Maybe,,,,,,,,,,,,,',
        'Street,street@contoso.com,Passw0rd!,No,,,,,,1 Main St,,,,,,,',
        'Loc,loc@contoso.com,Passw0rd!,No,,,,,USA,,,,,,,,',
        'Extra,extra@contoso.com,Passw0rd!,No,,,,,,,,,,,,,,surplus',
      ].join('\n'),
    );
    expect(rows.map((r) => [r.row, r.error ?? 'ok'])).toEqual([
      [2, 'ok'],
      [3, "Column 'User name [userPrincipalName] Required' is required."],
      [4, "Column 'Name [displayName] Required' is required."],
      [5, "Column 'User name [userPrincipalName] Required': must have the form alias@domain, with exactly one '@'."],
      [6, "Column 'Initial password [passwordProfile] Required': must contain at least three of: lower-case letters, upper-case letters, digits, symbols."],
      [7, "Column 'Block sign in (Yes/No) [accountEnabled] Required': 'Maybe' is not Yes or No."],
      [8, "Column 'Street address [streetAddress]' is not stored by OpenEnroll; leave it empty or remove the column."],
      [9, "Column 'Usage location [usageLocation]': must be a two-letter country code (ISO 3166-1 alpha-2) such as US."],
      [10, 'The row has 18 fields but the header has 17 columns.'],
    ]);
    expect(rows[3]!.userPrincipalName).toBe('bad-upn');
  });

  it('keeps passwords exactly as written and trims the rest', () => {
    const [row] = parseUserCsv('userPrincipalName,displayName,password\n  a@contoso.com  , Ann , Passw0rd! \n');
    expect(row!.input).toEqual({ userPrincipalName: 'a@contoso.com', displayName: 'Ann', passwordProfile: { password: ' Passw0rd! ' } });
  });

  it('refuses files it cannot read as a whole', () => {
    expect(refused('')).toMatch(/no header row/);
    expect(refused('version:v1.0\n')).toMatch(/no header row/);
    expect(refused('\n\n,,\n')).toMatch(/no header row/);
    expect(refused('version:v2.0\nuserPrincipalName,displayName\n')).toMatch(/version 'v2.0'/);
    expect(refused('alice@contoso.com,Alice\n')).toMatch(/Column 'alice@contoso.com' in the header row \(row 1\) is not a known user property/);
    expect(refused('userPrincipalName,displayName,favouriteColour\n')).toMatch(/'favouriteColour'/);
    expect(refused('userPrincipalName\n')).toMatch(/no 'displayName' column/);
    expect(refused('displayName\n')).toMatch(/no 'userPrincipalName' column/);
    expect(refused('userPrincipalName,displayName,User name [userPrincipalName]\n')).toMatch(/same property/);
    expect(refused('userPrincipalName,displayName\n"a@contoso.com,A\n')).toMatch(/not valid CSV \(row 2\).*Quote Not Closed/);
    expect(refused(`${Array.from({ length: CSV_LIMITS.maxColumns + 1 }, (_, i) => `c${i}`).join(',')}\n`)).toMatch(/more than 64 columns/);
  });

  it(`accepts a row of ${CSV_LIMITS.maxRecordChars} characters and refuses a longer one`, () => {
    const header = 'userPrincipalName,displayName\n';
    const record = (chars: number) => `a@contoso.com,${'x'.repeat(chars - 'a@contoso.com'.length)}\n`;
    expect(parseUserCsv(header + record(CSV_LIMITS.maxRecordChars))).toHaveLength(1);
    expect(refused(header + record(CSV_LIMITS.maxRecordChars + 1))).toBe('Row 2 has more than 32768 characters.');
    // An unclosed quote stops at the backstop rather than swallowing the file.
    expect(refused(`${header}a@contoso.com,"${'x'.repeat(3 * CSV_LIMITS.maxRecordChars)}\n`)).toMatch(/not valid CSV \(row 2\).*Max Record Size/);
  });

  it(`reads ${CSV_LIMITS.maxDataRows} data rows and refuses ${CSV_LIMITS.maxDataRows + 1}`, () => {
    const file = (n: number, version: boolean) => {
      const lines = version ? ['version:v1.0', 'userPrincipalName,displayName'] : ['userPrincipalName,displayName'];
      for (let i = 0; i < n; i++) lines.push(`u${i}@contoso.com,U ${i}`);
      return lines.join('\n');
    };
    // The version line, the header and blank rows don't count towards the limit.
    expect(parseUserCsv(`${file(CSV_LIMITS.maxDataRows, true)}\n\n\n,\n`)).toHaveLength(CSV_LIMITS.maxDataRows);
    expect(refused(file(CSV_LIMITS.maxDataRows + 1, false))).toMatch(/more than 50000 data rows/);
    expect(refused(file(CSV_LIMITS.maxDataRows + 1, true))).toMatch(/more than 50000 data rows/);
  });
});
