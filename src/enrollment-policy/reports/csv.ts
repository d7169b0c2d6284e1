/*
 * CSV for report exports (RFC 4180), pure. Every field is quoted, so commas, quotes and line
 * breaks in values survive; lines end in CRLF; the file starts with a UTF-8 byte order mark so
 * spreadsheet programs read non-ASCII names correctly.
 *
 * Formula injection: a spreadsheet runs a text cell starting with = + - @ (or a tab or carriage
 * return) as a formula. Text values that start so get a leading apostrophe, which spreadsheets
 * show as text. Numbers and dates are never text values here, so negative numbers stay as they are.
 */

export const CSV_BOM = '\uFEFF';

const FORMULA_START = /^[=+\-@\t\r]/;

/** Pure: a text value made safe to open in a spreadsheet. */
export function guardFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

export type CsvValue = string | number | boolean | null | undefined;

/** Pure: one field, quoted. `text` marks values that came from users or admins (guarded). */
export function csvField(value: CsvValue, text: boolean): string {
  if (value === null || value === undefined) return '""';
  const s = typeof value === 'string' ? (text ? guardFormula(value) : value) : String(value);
  return `"${s.replace(/"/g, '""')}"`;
}

/** Pure: one record line, CRLF-terminated. */
export function csvLine(values: readonly CsvValue[], textColumns: readonly boolean[]): string {
  return `${values.map((v, i) => csvField(v, textColumns[i] ?? true)).join(',')}\r\n`;
}
