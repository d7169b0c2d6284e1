import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { loadKeyring } from '../secrets/keyring.js';
import { createStore, isUniqueViolation, type Store } from '../store/db.js';
import { ensureDefaultTenant } from '../tenancy/service.js';
import type { App } from './app.js';

export const SQLITE_FILE = 'openenroll.db';
/**
 * Connections the kernel queues before they are accepted (capped by net.core.somaxconn). A command
 * pushed to a fleet wakes every device at once; Node's default of 511 dropped some of 10,000.
 */
const LISTEN_BACKLOG = 4096;

/** The embedded data dir holds the store and the master key: create it private to the service's user. */
function ensureDataDir(config: Config): void {
  if (!config.databaseUrl) fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
}

/**
 * Opens the configured store (embedded SQLite in the data dir unless DATABASE_URL is set) and
 * migrates it, unless told the migrations already ran (cluster workers: their primary ran them).
 */
export async function openStore(config: Config, opts: { migrate?: boolean } = {}): Promise<Store> {
  ensureDataDir(config);
  const store = createStore({
    databaseUrl: config.databaseUrl,
    pgSchema: config.pgSchema,
    poolSize: config.pgPoolSize,
    sqliteFile: path.join(config.dataDir, SQLITE_FILE),
  });
  if (opts.migrate === false) return store;
  try {
    try {
      await store.migrate();
    } catch (err) {
      // Nodes starting together can race on CREATE SCHEMA IF NOT EXISTS (a unique violation); the loser retries.
      if (!isUniqueViolation(err)) throw err;
      await store.migrate();
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

export function openKeyring(config: Config) {
  ensureDataDir(config);
  return loadKeyring({
    masterKey: config.masterKey,
    masterKeyFile: config.masterKeyFile,
    dataDir: config.dataDir,
    embedded: !config.databaseUrl,
  });
}

export interface StartOptions {
  /**
   * Set in a cluster worker (OPENENROLL_WORKERS > 1): its slot, 1..n, which labels its logs and
   * metrics. Its primary has already migrated the store and made the first start's bootstrap.
   */
  workerIndex?: number;
}

/** Starts the whole server; resolves once it listens. */
export async function startServer(config: Config, out: NodeJS.WritableStream = process.stdout, opts: StartOptions = {}): Promise<{ app: App; url: string }> {
  // Loaded here so the CLI's store and key commands don't pay for loading the HTTP stack.
  const { buildApp, createLogger } = await import('./app.js');
  const { Metrics } = await import('../observability/metrics.js');
  const worker = opts.workerIndex;
  const logger = worker === undefined ? createLogger(config.logLevel) : createLogger(config.logLevel).child({ worker });
  const keyring = openKeyringAndWarn(config, logger);
  const store = await openStore(config, { migrate: worker === undefined });
  let app: App | undefined;
  try {
    if (worker === undefined) await bootstrapDefaultTenant(store, out, logger);
    const metrics = new Metrics(worker === undefined ? {} : { labels: { worker: String(worker) } });
    app = await buildApp({ config, store, keyring, logger, metrics });
    const url = await app.server.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG });
    await app.startBackground();
    return { app, url };
  } catch (err) {
    // Don't leave the store (and a PostgreSQL pool) open behind a failed start.
    await (app ? app.close() : store.close()).catch(() => undefined);
    throw err;
  }
}

/**
 * What a cluster primary does once before it forks its workers: loads the master key (generated on
 * the very first embedded start, so that every worker then reads the same file), migrates the store,
 * and creates the default tenant with its bootstrap banner. The store is closed again.
 */
export async function prepareFirstStart(config: Config, out: NodeJS.WritableStream, logger: Logger): Promise<void> {
  openKeyringAndWarn(config, logger);
  const store = await openStore(config);
  try {
    await bootstrapDefaultTenant(store, out, logger);
  } finally {
    await store.close();
  }
}

function openKeyringAndWarn(config: Config, logger: Logger) {
  const keyring = openKeyring(config);
  if (keyring.source.kind === 'file' && keyring.source.generated) {
    logger.warn({ file: keyring.source.path }, 'generated a new master key; back it up, secrets can not be read without it');
  }
  return keyring;
}

async function bootstrapDefaultTenant(store: Store, out: NodeJS.WritableStream, logger: Logger): Promise<void> {
  const { tenantId, bootstrapKey } = await ensureDefaultTenant(store);
  if (bootstrapKey) {
    // The console is the only place the key ever appears in clear; the store keeps a hash.
    out.write(bootstrapBanner(bootstrapKey.token, tenantId));
    logger.warn({ tenantId, keyId: bootstrapKey.id }, 'first start: created the default tenant and printed a bootstrap administrator key');
  }
}

/**
 * Stops the server on SIGTERM or SIGINT, and on the returned function's call (a cluster worker asked
 * by its primary): requests in flight finish, jobs release their leases, the store closes, and the
 * process exits 0. A second signal exits at once; a stop that outlasts the grace period exits 1.
 */
export function exitOnStop(app: App, config: Config): (reason: string) => void {
  const logger = app.core.logger;
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'shutting down');
    // A request or job that never finishes must not keep the process alive forever.
    const force = setTimeout(() => {
      logger.error('graceful shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownGraceMs + 5000);
    force.unref();
    app.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal means "now".
      logger.warn({ signal }, 'forced exit');
      process.exit(1);
    }
    stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return stop;
}

export function bootstrapBanner(token: string, tenantId: string): string {
  return [
    '',
    '================================================================================',
    ' OpenEnroll first start: bootstrap administrator key (shown once, stored hashed)',
    '',
    `   ${token}`,
    '',
    ` Tenant: ${tenantId}`,
    ' Use it as "Authorization: Bearer <key>". Create named keys with',
    ' "openenroll keys create --role administrator" and revoke this one.',
    '================================================================================',
    '',
  ].join('\n');
}
