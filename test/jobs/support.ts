import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createStore, type Store } from '../../src/store/db.js';
import type { JobsTable } from '../../src/store/schema.js';
import { pgUrl, testDialect } from '../helpers/store.js';

export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves once the signal aborts; rejects with its reason, as a well-behaved handler does. */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Polls `check` until it returns true; waiting only, never a claim about speed. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function jobRow(store: Store, id: string): Promise<JobsTable | undefined> {
  return store.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * A store that outlives its handle, for restart tests: a SQLite file in a temporary directory, or
 * a PostgreSQL schema of its own. `open` may be called again after closing the previous handle.
 */
export function persistentStore(): { open(): Promise<Store>; cleanup(): Promise<void> } {
  if (testDialect() === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'openenroll-jobs-'));
    return {
      async open() {
        const store = createStore({ sqliteFile: path.join(dir, 'openenroll.db') });
        await store.migrate();
        return store;
      },
      async cleanup() {
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `t_${crypto.randomBytes(6).toString('hex')}`;
  return {
    async open() {
      const store = createStore({ databaseUrl: pgUrl(), pgSchema: schema, poolSize: 5 });
      await store.migrate();
      return store;
    },
    async cleanup() {
      const client = new pg.Client({ connectionString: pgUrl() });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
