import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStore, type Store } from '../../src/store/db.js';
import { testDialect } from '../helpers/store.js';

/**
 * Several processes on one SQLite file (cluster workers, the CLI next to a server). A second
 * connection stands in for the other process: SQLite's locks are per connection.
 */
describe.runIf(testDialect() === 'sqlite')('SQLite shared by several processes', () => {
  let dir: string;
  let file: string;
  let store: Store;
  let other: SqliteDatabase.Database;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'openenroll-sqlite-'));
    file = path.join(dir, 'openenroll.db');
    store = createStore({ sqliteFile: file });
    await store.migrate();
    other = new SqliteDatabase(file);
    // Fail at once instead of waiting: the test is about who holds the lock.
    other.pragma('busy_timeout = 0');
  });
  afterEach(async () => {
    other.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is in WAL mode, so readers in other processes are not blocked by a writer', () => {
    expect(other.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('takes the write lock when a transaction begins, so no other process commits between its reads and its writes', async () => {
    await store.transaction(async (trx) => {
      await trx.selectFrom('tenants').select('id').execute();
      // A deferred BEGIN would hold no write lock yet: the other connection's write would commit, and
      // this transaction's first write would then fail at once with SQLITE_BUSY_SNAPSHOT.
      expect(() => other.prepare("insert into rate_limit_counters (key, window_started_at, count) values ('x', '2026-01-01T00:00:00.000Z', 1)").run()).toThrow(
        expect.objectContaining({ code: 'SQLITE_BUSY' }),
      );
      // Reading goes on meanwhile (WAL).
      expect(other.prepare('select count(*) as n from tenants').get()).toEqual({ n: 0 });
      await trx.insertInto('rate_limit_counters').values({ key: 'mine', window_started_at: '2026-01-01T00:00:00.000Z', count: 1 }).execute();
    });
    // Once it committed, the other connection writes.
    other.prepare("insert into rate_limit_counters (key, window_started_at, count) values ('x', '2026-01-01T00:00:00.000Z', 1)").run();
    const keys = await store.db.selectFrom('rate_limit_counters').select('key').orderBy('key').execute();
    expect(keys.map((k) => k.key)).toEqual(['mine', 'x']);
  });
});
