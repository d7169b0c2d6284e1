import { readCsvRecords } from '../shared/csv.js';
import { USER_TYPES, userFieldsProblem, type UserFields, type UserType } from './directory-rules.js';

/**
 * Reads a bulk user-creation CSV into validated rows. Pure: no I/O.
 * Two header styles are accepted:
 * - Entra's bulk-create template: optional first line `version:v1.0`, then cells such as
 *   `User name [userPrincipalName] Required` (the property is the part in brackets);
 * - plain property names: userPrincipalName,displayName,password,accountEnabled,…
 * Row numbers are the spreadsheet's: the version line and the header count, blank rows count.
 */

export const CSV_LIMITS = {
  maxDataRows: 50_000,
  maxBytes: 5 * 1024 * 1024,
  /** Characters in all fields of one row together. */
  maxRecordChars: 32 * 1024,
  maxColumns: 64,
} as const;

/** The whole file is unusable (400); row problems are reported per row instead. */
export class CsvImportError extends Error {}

type Target =
  | { kind: 'field'; property: StringColumn }
  | { kind: 'password' }
  | { kind: 'accountEnabled'; inverted: boolean }
  | { kind: 'forceChangePassword' }
  | { kind: 'userType' }
  | { kind: 'unsupported' };

type StringColumn =
  | 'userPrincipalName'
  | 'displayName'
  | 'givenName'
  | 'surname'
  | 'mail'
  | 'mailNickname'
  | 'jobTitle'
  | 'department'
  | 'officeLocation'
  | 'mobilePhone'
  | 'usageLocation'
  | 'employeeId';

const STRING_COLUMNS: Record<string, StringColumn> = {
  userprincipalname: 'userPrincipalName',
  displayname: 'displayName',
  givenname: 'givenName',
  surname: 'surname',
  mail: 'mail',
  mailnickname: 'mailNickname',
  jobtitle: 'jobTitle',
  department: 'department',
  officelocation: 'officeLocation',
  physicaldeliveryofficename: 'officeLocation', // Entra template's "Office" column
  mobilephone: 'mobilePhone',
  mobile: 'mobilePhone', // Entra template's "Mobile phone" column
  usagelocation: 'usageLocation',
  employeeid: 'employeeId',
};

// Entra template columns for properties OpenEnroll doesn't keep: accepted when empty.
const UNSUPPORTED = new Set(['streetaddress', 'state', 'country', 'city', 'postalcode', 'telephonenumber', 'businessphones', 'faxnumber', 'companyname']);

function targetOf(cell: string): { target: Target; key: string } | undefined {
  const bracket = /\[([A-Za-z]+)\]/.exec(cell);
  const name = (bracket ? bracket[1]! : cell.trim()).toLowerCase();
  const s = STRING_COLUMNS[name];
  if (s) return { target: { kind: 'field', property: s }, key: s };
  switch (name) {
    case 'password':
    case 'passwordprofile':
      return { target: { kind: 'password' }, key: 'password' };
    case 'accountenabled':
      // The template's column is "Block sign in (Yes/No) [accountEnabled]": Yes means disabled.
      return { target: { kind: 'accountEnabled', inverted: /block\s+sign\s*in/i.test(cell) }, key: 'accountEnabled' };
    case 'forcechangepasswordnextsignin':
      return { target: { kind: 'forceChangePassword' }, key: 'forceChangePasswordNextSignIn' };
    case 'usertype':
      return { target: { kind: 'userType' }, key: 'userType' };
    default:
      return UNSUPPORTED.has(name) ? { target: { kind: 'unsupported' }, key: name } : undefined;
  }
}

export interface CsvColumn {
  /** The header cell as written, used in messages. */
  header: string;
  target: Target;
}

export interface CsvUserRow {
  row: number;
  /** As written in the row, for the result (null when the cell is empty). */
  userPrincipalName: string | null;
  input?: UserFields & { userPrincipalName: string; displayName: string };
  error?: string;
}

function parseBoolean(v: string, yesNo: boolean): boolean | undefined {
  const l = v.toLowerCase();
  if (l === 'yes' || (!yesNo && l === 'true')) return true;
  if (l === 'no' || (!yesNo && l === 'false')) return false;
  if (yesNo && (l === 'true' || l === 'false')) return l === 'true';
  return undefined;
}

function readHeader(record: string[], row: number): CsvColumn[] {
  if (record.length > CSV_LIMITS.maxColumns) throw new CsvImportError(`The header row (row ${row}) has more than ${CSV_LIMITS.maxColumns} columns.`);
  const seen = new Map<string, string>();
  const columns: CsvColumn[] = [];
  for (const raw of record) {
    const header = raw.trim();
    if (header === '') {
      columns.push({ header: '(empty)', target: { kind: 'unsupported' } });
      continue;
    }
    const t = targetOf(header);
    if (!t) {
      throw new CsvImportError(
        `Column '${header}' in the header row (row ${row}) is not a known user property. The file must start with a header row ` +
          `such as 'userPrincipalName,displayName,password,accountEnabled' or Entra's bulk-create template headers.`,
      );
    }
    const previous = seen.get(t.key);
    if (previous !== undefined) throw new CsvImportError(`Columns '${previous}' and '${header}' in the header row (row ${row}) are the same property.`);
    seen.set(t.key, header);
    columns.push({ header, target: t.target });
  }
  for (const required of ['userPrincipalName', 'displayName']) {
    if (!seen.has(required)) throw new CsvImportError(`The header row (row ${row}) has no '${required}' column; it is required.`);
  }
  return columns;
}

function readRow(columns: CsvColumn[], record: string[], row: number): CsvUserRow {
  const fields: Record<string, unknown> = {};
  const headerOf: Record<string, string> = {};
  let upnCell: string | null = null;
  const fail = (error: string): CsvUserRow => ({ row, userPrincipalName: upnCell, error });

  for (let i = columns.length; i < record.length; i++) {
    if (record[i]!.trim() !== '') return fail(`The row has ${record.length} fields but the header has ${columns.length} columns.`);
  }
  let password: string | undefined;
  let forceChange: boolean | undefined;
  for (let i = 0; i < columns.length; i++) {
    const col = columns[i]!;
    const raw = record[i] ?? '';
    const v = raw.trim();
    const t = col.target;
    if (t.kind === 'password') {
      // Passwords are kept exactly as written: spaces may be part of them.
      if (raw !== '') password = raw;
      continue;
    }
    if (v === '') continue;
    switch (t.kind) {
      case 'field':
        fields[t.property] = v;
        headerOf[t.property] = col.header;
        if (t.property === 'userPrincipalName') upnCell = v;
        break;
      case 'accountEnabled': {
        const b = parseBoolean(v, t.inverted);
        if (b === undefined) return fail(`Column '${col.header}': '${v}' is not ${t.inverted ? 'Yes or No' : 'true or false'}.`);
        fields.accountEnabled = t.inverted ? !b : b;
        headerOf.accountEnabled = col.header;
        break;
      }
      case 'forceChangePassword': {
        const b = parseBoolean(v, false);
        if (b === undefined) return fail(`Column '${col.header}': '${v}' is not true or false.`);
        forceChange = b;
        headerOf.forceChangePasswordNextSignIn = col.header;
        break;
      }
      case 'userType': {
        const match = USER_TYPES.find((u) => u.toLowerCase() === v.toLowerCase());
        if (!match) return fail(`Column '${col.header}': '${v}' is not one of ${USER_TYPES.join(', ')}.`);
        fields.userType = match as UserType;
        headerOf.userType = col.header;
        break;
      }
      case 'unsupported':
        return fail(`Column '${col.header}' is not stored by OpenEnroll; leave it empty or remove the column.`);
    }
  }
  headerOf['passwordProfile.password'] = columns.find((c) => c.target.kind === 'password')?.header ?? 'password';
  if (fields.userPrincipalName === undefined) return fail(`Column '${columnHeader(columns, 'userPrincipalName')}' is required.`);
  if (fields.displayName === undefined) return fail(`Column '${columnHeader(columns, 'displayName')}' is required.`);
  if (forceChange !== undefined && password === undefined) {
    return fail(`Column '${headerOf.forceChangePasswordNextSignIn}' needs a password in column '${headerOf['passwordProfile.password']}'.`);
  }
  const input = {
    ...(fields as unknown as UserFields & { userPrincipalName: string; displayName: string }),
    ...(password !== undefined ? { passwordProfile: { password, ...(forceChange !== undefined ? { forceChangePasswordNextSignIn: forceChange } : {}) } } : {}),
  };
  const problem = userFieldsProblem(input);
  if (problem) return fail(`Column '${headerOf[problem.property] ?? problem.property}': ${problem.problem}.`);
  return { row, userPrincipalName: upnCell, input };
}

function columnHeader(columns: CsvColumn[], property: string): string {
  return columns.find((c) => c.target.kind === 'field' && c.target.property === property)?.header ?? property;
}

/** Parses and validates the file; throws CsvImportError when the file as a whole is unusable. */
export function parseUserCsv(text: string): CsvUserRow[] {
  const records = readCsvRecords(text, {
    maxRecordChars: CSV_LIMITS.maxRecordChars,
    maxRows: CSV_LIMITS.maxDataRows,
    // The data rows come after the optional version line and the header.
    leadingRows: (first) => (isVersionLine(first) ? 2 : 1),
    rowTooLong: (row) => `Row ${row} has more than ${CSV_LIMITS.maxRecordChars} characters.`,
    tooManyRows: () => `The file has more than ${CSV_LIMITS.maxDataRows} data rows (the limit per file); split it into smaller files.`,
    fail: (message) => new CsvImportError(message),
  }).map(({ row, cells }) => ({ row, record: cells }));

  let i = 0;
  const first = records[0];
  if (first && isVersionLine(first.record)) {
    const version = first.record[0]!.trim().slice('version:'.length).trim();
    if (version.toLowerCase() !== 'v1.0') throw new CsvImportError(`Template version '${version}' on row ${first.row} is not supported; use version:v1.0.`);
    i = 1;
  }
  const header = records[i];
  if (!header) throw new CsvImportError('The file has no header row.');
  const columns = readHeader(header.record, header.row);
  return records.slice(i + 1).map(({ row, record }) => readRow(columns, record, row));
}

function isVersionLine(record: string[]): boolean {
  return /^\s*version\s*:/i.test(record[0] ?? '') && record.slice(1).every((c) => c.trim() === '');
}
