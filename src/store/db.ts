import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { migrations } from './migrations/index.js';

export type Dialect = 'sqlite' | 'postgres';
export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;
/** Anything that can run a query: the root handle or an open transaction. */
export type Executor = Db | Trx;

export interface StoreOptions {
  /** PostgreSQL URL; when absent, SQLite at `sqliteFile`. */
  databaseUrl?: string | undefined;
  pgSchema?: string | undefined;
  /** SQLite file path, or ':memory:'. */
  sqliteFile?: string;
  poolSize?: number;
}

export interface Store {
  readonly db: Db;
  readonly dialect: Dialect;
  /** Runs `fn` in one transaction: every change that touches more than one row goes through here. */
  transaction<T>(fn: (trx: Trx) => Promise<T>): Promise<T>;
  /** Resolves when the store answers a trivial query within `timeoutMs`. */
  ping(timeoutMs?: number): Promise<boolean>;
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function createStore(opts: StoreOptions): Store {
  if (opts.databaseUrl) return createPostgresStore(opts);
  return createSqliteStore(opts.sqliteFile ?? ':memory:');
}

function createSqliteStore(file: string): Store {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  return wrap(db, 'sqlite', async () => {
    await db.destroy();
  });
}

function createPostgresStore(opts: StoreOptions): Store {
  const schema = opts.pgSchema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name "${schema}"`);
  const pool = new pg.Pool({
    connectionString: opts.databaseUrl,
    max: opts.poolSize ?? 10,
    // Fail fast when the server is unreachable instead of queuing forever.
    connectionTimeoutMillis: 5000,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
    types: {
      getTypeParser: ((oid: number, format?: string) => {
        if (oid === INT8_OID || oid === NUMERIC_OID) return (v: string) => Number(v);
        return pg.types.getTypeParser(oid, format as 'text');
      }) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const store = wrap(db, 'postgres', async () => {
    await db.destroy();
  });
  if (!schema) return store;
  return {
    ...store,
    async migrate() {
      await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
      return store.migrate();
    },
  };
}

function wrap(db: Db, dialect: Dialect, close: () => Promise<void>): Store {
  let closed = false;
  return {
    db,
    dialect,
    transaction: (fn) => db.transaction().execute(fn),
    async ping(timeoutMs = 2000) {
      if (closed) return false;
      let timer: NodeJS.Timeout | undefined;
      try {
        const timeout = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
        });
        const query = sql`select 1 as ok`.execute(db).then(() => true);
        return await Promise.race([query, timeout]);
      } catch {
        return false;
      } finally {
        clearTimeout(timer);
      }
    },
    async migrate() {
      const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
      const { error, results } = await migrator.migrateToLatest();
      if (error) throw error instanceof Error ? error : new Error(String(error));
      return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    },
    async close() {
      if (closed) return;
      closed = true;
      await close();
    },
  };
}

/** True when `err` is a unique/primary-key violation in either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const code = (err as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** True when the error means the database could not be reached (used to answer 503). */
export function isStoreUnavailable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const code = String((err as { code?: unknown }).code ?? '');
  const message = String((err as { message?: unknown }).message ?? '');
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08006', '08001', '08003', 'SQLITE_BUSY'].includes(code) ||
    /Connection terminated|timeout exceeded when trying to connect|driver has already been destroyed/i.test(message)
  );
}
