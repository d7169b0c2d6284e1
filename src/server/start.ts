import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { loadKeyring } from '../secrets/keyring.js';
import { createStore, isUniqueViolation, type Store } from '../store/db.js';
import { ensureDefaultTenant } from '../tenancy/service.js';
import type { App } from './app.js';

export const SQLITE_FILE = 'openenroll.db';

/** The embedded data dir holds the store and the master key: create it private to the service's user. */
function ensureDataDir(config: Config): void {
  if (!config.databaseUrl) fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
}

/** Opens the configured store (embedded SQLite in the data dir unless DATABASE_URL is set) and migrates it. */
export async function openStore(config: Config): Promise<Store> {
  ensureDataDir(config);
  const store = createStore({
    databaseUrl: config.databaseUrl,
    pgSchema: config.pgSchema,
    sqliteFile: path.join(config.dataDir, SQLITE_FILE),
  });
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

/** Starts the whole server; resolves once it listens. */
export async function startServer(config: Config, out: NodeJS.WritableStream = process.stdout): Promise<{ app: App; url: string }> {
  // Loaded here so the CLI's store and key commands don't pay for loading the HTTP stack.
  const { buildApp, createLogger } = await import('./app.js');
  const logger = createLogger(config.logLevel);
  const keyring = openKeyring(config);
  if (keyring.source.kind === 'file' && keyring.source.generated) {
    logger.warn({ file: keyring.source.path }, 'generated a new master key; back it up, secrets can not be read without it');
  }
  const store = await openStore(config);
  let app: App | undefined;
  try {
    const { tenantId, bootstrapKey } = await ensureDefaultTenant(store);
    if (bootstrapKey) {
      // The console is the only place the key ever appears in clear; the store keeps a hash.
      out.write(bootstrapBanner(bootstrapKey.token, tenantId));
      logger.warn({ tenantId, keyId: bootstrapKey.id }, 'first start: created the default tenant and printed a bootstrap administrator key');
    }
    app = await buildApp({ config, store, keyring, logger });
    const url = await app.server.listen({ port: config.port, host: config.host });
    await app.startBackground();
    return { app, url };
  } catch (err) {
    // Don't leave the store (and a PostgreSQL pool) open behind a failed start.
    await (app ? app.close() : store.close()).catch(() => undefined);
    throw err;
  }
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
