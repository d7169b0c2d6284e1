import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  sql,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Driver,
  type SqliteDialectConfig,
  type DatabaseMetadata,
  type SchemaMetadata,
  type TableMetadata,
  type Transaction,
} from 'kysely';
import pg from 'pg';
import { RecentCache } from '../shared/recent-cache.js';
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
  // First, so that even switching to WAL waits for another process (a cluster worker, the CLI)
  // holding a lock on the file instead of failing at once with SQLITE_BUSY.
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new ImmediateTransactionSqliteDialect({ database: withStatementCache(sqlite) }) });
  return wrap(db, 'sqlite', async () => {
    await db.destroy();
  });
}

/**
 * Transactions start with BEGIN IMMEDIATE: they take the write lock up front, waiting for it with the
 * busy timeout. A plain (deferred) BEGIN reads first and upgrades at its first write; when another
 * process (cluster workers, the CLI next to a server) committed in between, SQLite refuses the upgrade
 * at once with SQLITE_BUSY_SNAPSHOT, which the busy timeout does not wait out. Holding the one write
 * lock for the whole transaction is also what stands in, across processes, for the row locks (FOR
 * UPDATE) the services take on PostgreSQL only. In one process Kysely already runs one transaction
 * at a time on the one connection, so nothing changes there.
 */
class ImmediateTransactionSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateTransactionSqliteDialect extends SqliteDialect {
  constructor(private readonly driverConfig: SqliteDialectConfig) {
    super(driverConfig);
  }

  override createDriver(): Driver {
    return new ImmediateTransactionSqliteDriver(this.driverConfig);
  }
}

/** Prepared statements kept per SQL text: preparing showed near the top of every profile. */
const STATEMENT_CACHE_SIZE = 500;

/**
 * The database as Kysely's SQLite driver uses it, with prepared statements reused (least recently
 * used out). The driver runs one query at a time on its one connection and reads each result whole,
 * so a statement is never reused while it is still executing; SQLite re-prepares one itself after a
 * schema change.
 */
function withStatementCache(sqlite: SqliteDatabase.Database): { prepare(sql: string): SqliteDatabase.Statement; close(): void } {
  const statements = new RecentCache<SqliteDatabase.Statement>(STATEMENT_CACHE_SIZE);
  return {
    prepare: (text) => statements.getOrCreate(text, () => sqlite.prepare(text)),
    close: () => sqlite.close(),
  };
}

/**
 * What the migrator asks about tables, answered for our own schema only. Kysely's PostgreSQL
 * introspector reads every schema's columns (with pg_get_serial_sequence), so a schema another
 * deployment or test run drops at that moment failed our start with "schema … does not exist".
 */
class CurrentSchemaIntrospector implements DatabaseIntrospector {
  constructor(private readonly db: Kysely<unknown>) {}

  async getSchemas(): Promise<SchemaMetadata[]> {
    const { rows } = await sql<{ name: string }>`select nspname as name from pg_catalog.pg_namespace`.execute(this.db);
    return rows;
  }

  async getTables(): Promise<TableMetadata[]> {
    const { rows } = await sql<{ name: string; schema: string; is_view: boolean }>`
      select table_name as name, table_schema as schema, table_type = 'VIEW' as is_view
      from information_schema.tables where table_schema = current_schema()`.execute(this.db);
    return rows.map((r) => ({ name: r.name, schema: r.schema, isView: r.is_view, columns: [] }));
  }

  async getMetadata(): Promise<DatabaseMetadata> {
    return { tables: await this.getTables() };
  }
}

class SchemaScopedPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new CurrentSchemaIntrospector(db);
  }
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
  // A client losing its connection (server restart, failover) must not crash the process. The pool
  // handles idle clients; one in use also emits 'error' with nobody listening, an uncaught exception.
  // Its query fails with the same error (the request answers 503) and the pool drops it on release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = new Kysely<Database>({ dialect: new SchemaScopedPostgresDialect({ pool }) });
  const store = wrap(db, 'postgres', async () => {
    await db.destroy();
  });
  return {
    ...store,
    async migrate() {
      if (schema) await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
      // Kysely looks for its migration tables in every schema unless told which one: another
      // schema's tables (another deployment or test run in the same database) would pass for ours.
      const current = schema ?? (await sql<{ name: string }>`select current_schema() as name`.execute(db)).rows[0]?.name;
      return migrateToLatest(db, current ? { migrationTableSchema: current } : {});
    },
  };
}

async function migrateToLatest(db: Db, opts: { migrationTableSchema?: string } = {}): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, ...opts });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
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
    migrate: () => migrateToLatest(db),
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

/** Error codes of a store that can't be reached: sockets, and PostgreSQL's connection and shutdown classes. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down)
  '57P01',
  '57P02',
  '57P03',
  // connection_exception and its subclasses
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  'SQLITE_BUSY',
]);
/** What node-postgres and Kysely say (without a code) when a connection is lost or never made. */
const UNAVAILABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|not queryable|Client was closed|driver has already been destroyed/i;

/**
 * True when the error means the database could not be reached (the routes answer 503 and the
 * client retries), as opposed to a query that failed. Looks through `cause` and AggregateError,
 * so a wrapped connection failure still counts.
 */
export function isStoreUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 5) return false;
  const code = String((err as { code?: unknown }).code ?? '');
  const message = String((err as { message?: unknown }).message ?? '');
  if (UNAVAILABLE_CODES.has(code) || UNAVAILABLE_MESSAGE.test(message)) return true;
  if (err instanceof AggregateError && err.errors.some((e) => isStoreUnavailable(e, depth + 1))) return true;
  return isStoreUnavailable((err as { cause?: unknown }).cause, depth + 1);
}
