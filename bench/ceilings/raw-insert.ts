import Database from 'better-sqlite3';
import pg from 'pg';
import type { CeilingResult } from '../lib/report.js';
import type { Deployment } from '../lib/world.js';

/**
 * The store ceiling: `rows` rows shaped exactly like the ADE sync's (copied from dep_devices, new
 * serials and ids) inserted in batches of `batch` rows, one transaction per batch, into a scratch
 * copy of the table with the same indexes, in the same store the server uses. No ORM, no logic.
 */

const INDEXES = [
  ['unique', 'serial', ['tenant_id', 'serial_number']],
  ['', 'token', ['token_id', 'serial_number']],
  ['', 'profile', ['token_id', 'requested_profile_id']],
  ['', 'removed', ['tenant_id', 'removed_from_apple_at']],
] as const;
const TABLE = 'bench_raw_dep_devices';

function templated(template: Record<string, unknown>, i: number): Record<string, unknown> {
  const serial = `RAW${i.toString(36).toUpperCase().padStart(9, '0')}`;
  return { ...template, id: `raw-${i}`, serial_number: serial };
}

export async function rawInsertCeiling(d: Deployment, opts: { rows: number; batch: number }): Promise<CeilingResult> {
  const loc = d.storeLocation;
  let seconds: number;
  if ('sqliteFile' in loc) {
    const db = new Database(loc.sqliteFile);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    try {
      const template = db.prepare('select * from dep_devices limit 1').get() as Record<string, unknown> | undefined;
      if (!template) throw new Error('dep_devices is empty: run the sync ingest first');
      db.exec(`drop table if exists ${TABLE}; create table ${TABLE} as select * from dep_devices where 0`);
      for (const [unique, name, cols] of INDEXES) db.exec(`create ${unique} index ${TABLE}_${name} on ${TABLE} (${cols.join(', ')})`);
      const columns = Object.keys(template);
      const insert = db.prepare(`insert into ${TABLE} (${columns.map((c) => `"${c}"`).join(', ')}) values (${columns.map((c) => `@${c}`).join(', ')})`);
      const writeBatch = db.transaction((rows: Record<string, unknown>[]) => {
        for (const row of rows) insert.run(row);
      });
      const started = performance.now();
      for (let i = 0; i < opts.rows; i += opts.batch) writeBatch(Array.from({ length: Math.min(opts.batch, opts.rows - i) }, (_, k) => templated(template, i + k)));
      seconds = (performance.now() - started) / 1000;
      db.exec(`drop table ${TABLE}`);
    } finally {
      db.close();
    }
  } else {
    const client = new pg.Client({ connectionString: loc.url });
    await client.connect();
    try {
      await client.query(`set search_path to "${loc.schema}"`);
      const template = (await client.query('select * from dep_devices limit 1')).rows[0] as Record<string, unknown> | undefined;
      if (!template) throw new Error('dep_devices is empty: run the sync ingest first');
      await client.query(`drop table if exists ${TABLE}; create table ${TABLE} as select * from dep_devices where false`);
      for (const [unique, name, cols] of INDEXES) await client.query(`create ${unique} index ${TABLE}_${name} on ${TABLE} (${cols.join(', ')})`);
      const columns = Object.keys(template);
      const started = performance.now();
      for (let i = 0; i < opts.rows; i += opts.batch) {
        const rows = Array.from({ length: Math.min(opts.batch, opts.rows - i) }, (_, k) => templated(template, i + k));
        const values: unknown[] = [];
        const tuples = rows.map((row) => `(${columns.map((c) => (values.push(row[c]), `$${values.length}`)).join(', ')})`);
        await client.query('begin');
        await client.query(`insert into ${TABLE} (${columns.map((c) => `"${c}"`).join(', ')}) values ${tuples.join(', ')}`, values);
        await client.query('commit');
      }
      seconds = (performance.now() - started) / 1000;
      await client.query(`drop table ${TABLE}`);
    } finally {
      await client.end();
    }
  }
  return {
    id: 'raw-insert',
    name: `Raw batched INSERT (${opts.batch} rows a transaction)`,
    unit: 'rows/s',
    value: Math.round(opts.rows / seconds),
    details: { rows: opts.rows, batch: opts.batch, seconds: Math.round(seconds * 100) / 100, process: 'bench' },
  };
}
