import { CsvError, parse } from 'csv-parse/sync';

/**
 * Reading an uploaded CSV file into records, the part every CSV import shares: a BOM is dropped,
 * CR, LF and CRLF end rows, rows may have any number of cells, blank rows are skipped (but still
 * counted, so row numbers are the spreadsheet's), a row longer than `maxRecordChars` or a file
 * with more than `maxRows` rows is refused whole, and reading stops at the first refusal. Pure.
 */

export interface CsvRecord {
  /** The row as a spreadsheet counts it (1-based, blank rows included). */
  row: number;
  cells: string[];
}

export interface CsvReadOptions {
  /** Characters in all cells of one row together. */
  maxRecordChars: number;
  /** Non-blank rows allowed, not counting the leading rows `leadingRows` names. */
  maxRows: number;
  /** How many of the first non-blank records aren't data (a header), judged from the first one. */
  leadingRows?: (first: string[]) => number;
  /** The messages of the two limits. */
  rowTooLong: (row: number) => string;
  tooManyRows: () => string;
  /** Makes the caller's "the file as a whole is refused" error. */
  fail: (message: string) => Error;
}

/** Blank rows tolerated in a file: far more than any spreadsheet export has between its data rows. */
export const maxBlankRows = (maxRows: number) => Math.max(10 * maxRows, 10_000);

export const isBlankRecord = (cells: readonly string[]) => cells.every((c) => c.trim() === '');

/** Trailing empty cells (spreadsheets add them) don't count as columns. */
export function withoutTrailingEmptyCells(cells: readonly string[]): string[] {
  const out = [...cells];
  while (out.length > 1 && out[out.length - 1]!.trim() === '') out.pop();
  return out;
}

/** The non-blank records of a file; throws `opts.fail(…)` when the file is refused. */
export function readCsvRecords(text: string, opts: CsvReadOptions): CsvRecord[] {
  const records: CsvRecord[] = [];
  let ordinal = 0;
  let leading: number | undefined;
  // Thrown from inside the parser and recognised when it comes out again.
  const refusals = new WeakSet<Error>();
  const refuse = (message: string) => {
    const err = opts.fail(message);
    refusals.add(err);
    return err;
  };
  try {
    parse(text, {
      bom: true,
      relax_column_count: true,
      record_delimiter: ['\r\n', '\n', '\r'],
      // A backstop while reading (an unclosed quote); the exact limit is checked per record below.
      max_record_size: 2 * opts.maxRecordChars,
      on_record: (cells: string[]) => {
        ordinal++;
        if (cells.reduce((n, f) => n + f.length, 0) > opts.maxRecordChars) throw refuse(opts.rowTooLong(ordinal));
        if (isBlankRecord(cells)) {
          // Blank rows cost parsing time too: a file of nothing else would otherwise be read to its end.
          if (ordinal - records.length > maxBlankRows(opts.maxRows)) throw refuse(`The file has more than ${maxBlankRows(opts.maxRows)} blank rows.`);
          return null;
        }
        records.push({ row: ordinal, cells });
        leading ??= opts.leadingRows?.(cells) ?? 0;
        // Stop reading as soon as the file passes the limit: it is refused whole.
        if (records.length - leading > opts.maxRows) throw refuse(opts.tooManyRows());
        return null;
      },
    });
  } catch (err) {
    if (err instanceof Error && refusals.has(err)) throw err;
    if (err instanceof CsvError) throw refuse(`The file is not valid CSV (row ${ordinal + 1}): ${err.message.replace(/\.$/, '')}.`);
    throw err;
  }
  return records;
}
