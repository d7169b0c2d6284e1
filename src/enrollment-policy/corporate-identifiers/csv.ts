import { readCsvRecords, withoutTrailingEmptyCells } from '../../shared/csv.js';
import {
  CORPORATE_IDENTIFIER_LIMITS as LIMITS,
  looksLikeImei,
  parseDetails,
  parseIdentifier,
  parseSerial,
  serialHasPeriod,
  type IdentityType,
} from './rules.js';

/*
 * Reads a corporate identifier CSV (requirements-004-A §8, L1046–1057): no header, one identifier type
 * per file, each row `identifier,details` (details optional); for manufacturerModelSerial the row is
 * `manufacturer,model,serial,details` (or one `manufacturer;model;serial` cell). Pure: no I/O.
 * Row numbers are the file's lines as a spreadsheet counts them: blank rows count but are skipped.
 */

/** The whole file is unusable (400); row problems are reported per row instead. */
export class CorporateCsvError extends Error {}

export interface CsvIdentifierRow {
  row: number;
  /** The identifier as written (manufacturer,model,serial joined by commas), for the result. */
  written: string | null;
  details: string | null;
  identifier?: string;
  key?: string;
  error?: string;
}

const HEADER_CELLS = new Set([
  'imei',
  'imeinumber',
  'imeinumbers',
  'imeis',
  'serial',
  'serials',
  'serialnumber',
  'serialnumbers',
  'serialno',
  'identifier',
  'identifiers',
  'deviceidentifier',
  'corporateidentifier',
  'corporateidentifiers',
  'manufacturer',
  'id',
]);
const DETAILS_CELLS = new Set(['details', 'detail', 'description', 'descriptions']);
const headerWord = (cell: string | undefined) => (cell ?? '').toLowerCase().replace(/[^a-z]/g, '');

const TYPE_LABEL: Record<IdentityType, string> = { imei: 'IMEI', serialNumber: 'serial number', manufacturerModelSerial: 'manufacturer,model,serial' };

interface Shape {
  written: string;
  details: string | undefined;
  error?: string;
}

/** Splits a record into the identifier as written and the details, or says why it can't. */
function shapeOf(type: IdentityType, cells: string[]): Shape {
  const n = cells.length;
  if (type === 'manufacturerModelSerial') {
    if (n === 3 || n === 4) return { written: cells.slice(0, 3).map((c) => c.trim()).join(','), details: cells[3] };
    const first = cells[0]!.trim();
    if (n <= 2 && first.includes(';')) return { written: first, details: cells[1] };
    if (n <= 2) {
      const kind = looksLikeImei(first) ? 'an IMEI' : 'a single identifier';
      return { written: first, details: cells[1], error: `'${first}' is ${kind}, not manufacturer,model,serial; a file holds one identifier type` };
    }
    return { written: first, details: undefined, error: `the row has ${n} columns; expected manufacturer,model,serial and optional details (quote details that contain commas)` };
  }
  const first = cells[0]!.trim();
  if (n <= 2) return { written: first, details: cells[1] };
  const hint = n === 3 || n === 4 ? ' It looks like manufacturer,model,serial, which needs a file of its own type.' : '';
  return { written: first, details: undefined, error: `the row has ${n} columns; expected 2 (identifier, details). Quote details that contain commas.${hint}` };
}

/** A row of another identifier type in a file that must hold one type. */
function otherTypeProblem(type: IdentityType, written: string): string | undefined {
  if (written.split(';').length === 3 && type !== 'manufacturerModelSerial') return `'${written}' looks like manufacturer;model;serial; a file holds one identifier type`;
  if (type === 'serialNumber' && looksLikeImei(written)) {
    return `'${written}' looks like an IMEI (15 digits with a valid check digit); a file holds one identifier type, so upload IMEIs as type imei`;
  }
  if (type === 'imei' && /[A-Za-z]/.test(written) && parseSerial(written).ok) {
    return `'${written}' looks like a serial number, not an IMEI; a file holds one identifier type`;
  }
  return undefined;
}

function readRow(type: IdentityType, record: string[], row: number): CsvIdentifierRow {
  const shape = shapeOf(type, withoutTrailingEmptyCells(record));
  const base = { row, written: shape.written === '' ? null : shape.written, details: shape.details?.trim() || null };
  if (shape.error) return { ...base, error: shape.error };
  const other = otherTypeProblem(type, shape.written);
  if (other) return { ...base, error: other };
  const parsed = parseIdentifier(type, shape.written);
  if (!parsed.ok) return { ...base, error: `${parsed.problem}.` };
  const details = parseDetails(shape.details);
  if (!details.ok) return { ...base, identifier: parsed.identifier, error: `${details.problem}.` };
  return { ...base, details: details.details, identifier: parsed.identifier, key: parsed.key };
}

function isHeader(type: IdentityType, record: string[]): boolean {
  const cells = withoutTrailingEmptyCells(record);
  if (HEADER_CELLS.has(headerWord(cells[0]))) return true;
  // "Device,Details": a details-like label next to a first cell that isn't an identifier or has no
  // digit (real serial numbers and IMEIs have digits).
  const detailsCell = type === 'manufacturerModelSerial' ? cells[3] : cells[1];
  const written = shapeOf(type, cells).written;
  return DETAILS_CELLS.has(headerWord(detailsCell)) && (!/\d/.test(written) || !parseIdentifier(type, written).ok);
}

/** Parses and validates the file; throws CorporateCsvError when the file as a whole is refused. */
export function parseIdentifierCsv(text: string, type: IdentityType): CsvIdentifierRow[] {
  const records = readCsvRecords(text, {
    maxRecordChars: LIMITS.maxRecordChars,
    maxRows: LIMITS.maxRows,
    rowTooLong: (row) => `Row ${row} has more than ${LIMITS.maxRecordChars} characters; a row is identifier,details.`,
    tooManyRows: () => `The file has more than ${LIMITS.maxRows.toLocaleString('en-US')} rows (the limit per file); split it into smaller files.`,
    fail: (message) => new CorporateCsvError(message),
  }).map(({ row, cells }) => ({ row, record: cells }));
  const first = records[0];
  if (!first) throw new CorporateCsvError('The file has no identifiers.');
  if (isHeader(type, first.record)) {
    throw new CorporateCsvError(
      `Row ${first.row} looks like a header ('${withoutTrailingEmptyCells(first.record).join(',')}'). Corporate identifier files have no header row: ` +
        `every row is ${type === 'manufacturerModelSerial' ? 'manufacturer,model,serial,details' : `${TYPE_LABEL[type]},details`}.`,
    );
  }
  const rows = records.map(({ row, record }) => readRow(type, record, row));
  // "Attempting to upload a file with serial numbers containing dots (.) will cause the upload to fail" (L1063).
  const dotted = rows.filter((r) => r.written !== null && serialHasPeriod(type, r.written) && !r.error?.includes('one identifier type'));
  if (dotted.length > 0) {
    const d = dotted[0]!;
    throw new CorporateCsvError(
      `Row ${d.row}: serial number in '${d.written}' contains a period (.). Serial numbers with periods aren't supported, so the file was not imported` +
        `${dotted.length > 1 ? ` (${dotted.length} rows have one)` : ''}.`,
    );
  }
  return rows;
}
