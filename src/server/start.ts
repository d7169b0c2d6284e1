import path from 'node:path';
import type { Config } from '../config.js';
import { loadKeyring } from '../secrets/keyring.js';
import { createStore, type Store } from '../store/db.js';
import { ensureDefaultTenant } from '../tenancy/service.js';
import { buildApp, createLogger, type App } from './app.js';

export const SQLITE_FILE = 'openenroll.db';

/** Opens the configured store (embedded SQLite in the data dir unless DATABASE_URL is set) and migrates it. */
export async function openStore(config: Config): Promise<Store> {
  const store = createStore({
    databaseUrl: config.databaseUrl,
    pgSchema: config.pgSchema,
    sqliteFile: path.join(config.dataDir, SQLITE_FILE),
  });
  await store.migrate();
  return store;
}

export function openKeyring(config: Config) {
  return loadKeyring({
    masterKey: config.masterKey,
    masterKeyFile: config.masterKeyFile,
    dataDir: config.dataDir,
    embedded: !config.databaseUrl,
  });
}

/** Starts the whole server; resolves once it listens. */
export async function startServer(config: Config, out: NodeJS.WritableStream = process.stdout): Promise<{ app: App; url: string }> {
  const logger = createLogger(config.logLevel);
  const keyring = openKeyring(config);
  if (keyring.source.kind === 'file' && keyring.source.generated) {
    logger.warn({ file: keyring.source.path }, 'generated a new master key; back it up, secrets can not be read without it');
  }
  const store = await openStore(config);
  const { tenantId, bootstrapKey } = await ensureDefaultTenant(store);
  if (bootstrapKey) {
    out.write(
      [
        '',
        '================================================================================',
        ' OpenEnroll first start: bootstrap administrator key (shown once, stored hashed)',
        '',
        `   ${bootstrapKey.token}`,
        '',
        ` Tenant: ${tenantId}`,
        ' Use it as "Authorization: Bearer <key>". Create named keys with',
        ' "openenroll keys create --role administrator" and revoke this one.',
        '================================================================================',
        '',
      ].join('\n'),
    );
  }
  const app = await buildApp({ config, store, keyring, logger });
  const url = await app.server.listen({ port: config.port, host: config.host });
  await app.startBackground();
  return { app, url };
}
