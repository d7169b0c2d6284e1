import type { Actor } from '../auth/principal.js';
import { badRequest } from '../graph/errors.js';
import type { Store } from '../store/db.js';
import { isUniqueViolation } from '../store/db.js';
import { CsvImportError, parseUserCsv, type CsvUserRow } from './csv-users.js';
import { hashPassword } from './passwords.js';
import type { UserService } from './users-service.js';

export interface ImportRowResult {
  row: number;
  userPrincipalName: string | null;
  status: 'created' | 'failed';
  id: string | null;
  error: string | null;
}

const LOOKUP_CHUNK = 500;
const WRITE_CHUNK = 500;
// scrypt runs on libuv's thread pool (4 threads by default); more in flight only queues.
const HASH_CONCURRENCY = 4;

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Bulk user creation from a CSV file (an OpenEnroll extension; Entra's portal does the same
 * from its template). Every row is checked on its own, so one bad row fails alone.
 */
export class UserCsvImport {
  constructor(
    private readonly store: Store,
    private readonly users: UserService,
  ) {}

  async run(actor: Actor, csv: string): Promise<ImportRowResult[]> {
    let rows: CsvUserRow[];
    try {
      rows = parseUserCsv(csv);
    } catch (err) {
      if (err instanceof CsvImportError) throw badRequest(err.message);
      throw err;
    }
    const results: ImportRowResult[] = rows.map((r) => ({
      row: r.row,
      userPrincipalName: r.userPrincipalName,
      status: 'failed',
      id: null,
      error: r.error ?? null,
    }));

    // Duplicates inside the file: the first occurrence wins.
    const firstRow = new Map<string, number>();
    rows.forEach((r, i) => {
      if (!r.input) return;
      const key = r.input.userPrincipalName.toLowerCase();
      const first = firstRow.get(key);
      if (first === undefined) firstRow.set(key, r.row);
      else results[i]!.error = `userPrincipalName '${r.input.userPrincipalName}' is already used on row ${first} of this file.`;
    });

    // Duplicates of existing users, looked up in batches rather than row by row.
    const pending = rows.map((r, i) => i).filter((i) => rows[i]!.input && results[i]!.error === null);
    const keys = pending.map((i) => rows[i]!.input!.userPrincipalName.toLowerCase());
    const existing = new Set<string>();
    for (let i = 0; i < keys.length; i += LOOKUP_CHUNK) {
      const found = await this.store.db
        .selectFrom('users')
        .select('upn_lower')
        .where('tenant_id', '=', actor.tenantId)
        .where('upn_lower', 'in', keys.slice(i, i + LOOKUP_CHUNK))
        .execute();
      for (const f of found) existing.add(f.upn_lower);
    }
    const toCreate = pending.filter((i) => {
      const input = rows[i]!.input!;
      if (!existing.has(input.userPrincipalName.toLowerCase())) return true;
      results[i]!.error = `Another object with the same value for property userPrincipalName already exists: '${input.userPrincipalName}'.`;
      return false;
    });

    const hashes = await mapLimit(toCreate, HASH_CONCURRENCY, async (i) => {
      const pw = rows[i]!.input!.passwordProfile?.password;
      return pw === undefined ? null : hashPassword(pw);
    });

    // Rows are written in chunks, one transaction each. If a chunk fails on a name taken
    // meanwhile by another request, it is redone one row per transaction so only that row fails.
    for (let c = 0; c < toCreate.length; c += WRITE_CHUNK) {
      const chunk = toCreate.slice(c, c + WRITE_CHUNK).map((i, k) => ({ i, input: rows[i]!.input!, passwordHash: hashes[c + k] ?? null }));
      try {
        const created = await this.store.transaction((trx) => this.users.insertMany(trx, actor, chunk));
        created.forEach((row, k) => Object.assign(results[chunk[k]!.i]!, { status: 'created', id: row.id, error: null }));
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        for (const item of chunk) {
          try {
            const row = await this.store.transaction((trx) => this.users.insert(trx, actor, item.input, item.passwordHash));
            Object.assign(results[item.i]!, { status: 'created', id: row.id, error: null });
          } catch (rowErr) {
            if (!isUniqueViolation(rowErr)) throw rowErr;
            results[item.i]!.error = `Another object with the same value for property userPrincipalName already exists: '${item.input.userPrincipalName}'.`;
          }
        }
      }
    }
    return results;
  }
}
