import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import pg from 'pg';
import { createStore, type Store } from '../../src/store/db.js';
import type { Deployment } from '../cli/helpers.js';
import { pgUrl } from '../helpers/store.js';

/** Pieces the fault tests share: polling, and looking into a spawned server's store from outside. */

export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The deployment's store, opened by the test (another process than the server). */
export function openDeploymentStore(d: Deployment): Store {
  return d.dialect === 'sqlite'
    ? createStore({ sqliteFile: path.join(d.env.OPENENROLL_DATA_DIR!, 'openenroll.db') })
    : createStore({ databaseUrl: pgUrl(), pgSchema: d.pgSchema, poolSize: 2 });
}

/**
 * Whether another process holds an open write transaction on `table` right now: on SQLite the
 * database's write lock (one writer at a time), on PostgreSQL a row-exclusive lock on the table.
 * Only open transactions hold these; committed rows are seen with ordinary queries.
 */
export interface WriteProbe {
  writing(): Promise<boolean>;
  close(): Promise<void>;
}

export async function writeProbe(d: Deployment, table: string): Promise<WriteProbe> {
  if (d.dialect === 'sqlite') {
    const db = new SqliteDatabase(path.join(d.env.OPENENROLL_DATA_DIR!, 'openenroll.db'));
    db.pragma('busy_timeout = 0');
    return {
      async writing() {
        try {
          db.exec('BEGIN IMMEDIATE');
          db.exec('ROLLBACK');
          return false;
        } catch (err) {
          if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) return true;
          throw err;
        }
      },
      async close() {
        db.close();
      },
    };
  }
  const client = new pg.Client({ connectionString: pgUrl() });
  await client.connect();
  return {
    async writing() {
      const res = await client.query(
        `select 1 from pg_locks l join pg_class c on c.oid = l.relation join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = $1 and c.relname = $2 and l.mode = 'RowExclusiveLock' and l.pid <> pg_backend_pid() limit 1`,
        [d.pgSchema, table],
      );
      return res.rowCount === 1;
    },
    async close() {
      await client.end();
    },
  };
}

/** Counts the queries a store runs, by kind (a Kysely plugin on the store the app is given). */
export interface QueryCounts {
  reads: number;
  writes: number;
  /** Raw SQL (sql`…`): could be either. */
  raw: number;
}

class QueryCounter implements KyselyPlugin {
  constructor(private readonly counts: QueryCounts) {}
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const kind = args.node.kind;
    if (kind === 'SelectQueryNode') this.counts.reads++;
    else if (kind === 'RawNode') this.counts.raw++;
    else this.counts.writes++;
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

/** The store, with every query the app runs through it counted. */
export function countingStore(store: Store): { store: Store; counts: QueryCounts } {
  const counts: QueryCounts = { reads: 0, writes: 0, raw: 0 };
  const db = store.db.withPlugin(new QueryCounter(counts));
  return { store: { ...store, db, transaction: (fn) => db.transaction().execute(fn) }, counts };
}

/**
 * The TLS front of a spawned server (as a load balancer would be): devices need https and a URL
 * that survives restarts, the server speaks plain HTTP on a port that changes. It can hold a
 * request (matched on its body) until the test lets it through.
 */
export interface TlsFront {
  url: string;
  /** The port of the server requests go to now. */
  setTarget(port: number): void;
  /** Requests forwarded and not yet answered. */
  inFlight(): number;
  hold(match: (body: Buffer) => boolean): { arrived: Promise<void>; release(): void };
  close(): Promise<void>;
}

export async function startTlsFront(tls: { certFile: string; keyFile: string }): Promise<TlsFront> {
  let target = 0;
  let inFlight = 0;
  const holds: { match: (body: Buffer) => boolean; arrive: () => void; released: Promise<void> }[] = [];
  const server = https.createServer({ cert: fs.readFileSync(tls.certFile), key: fs.readFileSync(tls.keyFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const i = holds.findIndex((h) => h.match(body));
      const held = i >= 0 ? holds.splice(i, 1)[0]! : undefined;
      held?.arrive();
      void (held?.released ?? Promise.resolve()).then(() => {
        inFlight++;
        const out = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          answer.on('end', () => inFlight--);
          answer.on('error', () => {
            inFlight--;
            res.destroy();
          });
        });
        // The server died or isn't listening: the device sees the connection drop.
        out.on('error', () => {
          inFlight--;
          res.destroy();
        });
        out.end(body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    setTarget(port) {
      target = port;
    },
    inFlight: () => inFlight,
    hold(match) {
      let arrive!: () => void;
      let release!: () => void;
      const arrived = new Promise<void>((r) => (arrive = r));
      const released = new Promise<void>((r) => (release = r));
      holds.push({ match, arrive, released });
      return { arrived, release };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
