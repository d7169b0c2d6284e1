import type { Actor } from '../auth/principal.js';
import { badRequest } from '../graph/errors.js';
import type { Store } from '../store/db.js';
import { isUniqueViolation } from '../store/db.js';
import { CsvImportError, parseUserCsv, type CsvUserRow } from './csv-users.js';
import { hashPassword } from './passwords.js';
import type { UserService } from './users-service.js';
import { mapLimit } from '../shared/concurrency.js';

export interface ImportRowResult {
  row: number;
  userPrincipalName: string | null;
  status: 'created' | 'failed';
  id: string | null;
  error: string | null;
}

const LOOKUP_CHUNK = 500;
const WRITE_CHUNK = 500;
/** Writes redone because another request took one of the names meanwhile. */
const WRITE_ATTEMPTS = 3;
// scrypt runs on libuv's thread pool (4 threads by default); more in flight only queues.
const HASH_CONCURRENCY = 4;

/**
 * Bulk user creation from a CSV file (an OpenEnroll extension; Entra's portal does the same
 * from its template). Every row is checked on its own, so one bad row fails alone; the rows that
 * pass are written in one transaction, so an import cut short (a crash, a lost database) leaves
 * none of them and can simply be sent again.
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
    const taken = (i: number) => (results[i]!.error = `Another object with the same value for property userPrincipalName already exists: '${rows[i]!.input!.userPrincipalName}'.`);
    const existing = await this.existingNames(actor.tenantId, pending.map((i) => rows[i]!.input!.userPrincipalName.toLowerCase()));
    let toCreate = pending.filter((i) => {
      if (!existing.has(rows[i]!.input!.userPrincipalName.toLowerCase())) return true;
      taken(i);
      return false;
    });

    const hashes = await mapLimit(toCreate, HASH_CONCURRENCY, async (i) => {
      const pw = rows[i]!.input!.passwordProfile?.password;
      return pw === undefined ? null : hashPassword(pw);
    });

    const hashOf = new Map(toCreate.map((i, k) => [i, hashes[k] ?? null]));

    // Every row in one transaction (statements of WRITE_CHUNK rows). If another request took one of
    // the names meanwhile, the names are looked up again, the taken rows fail, and the rest is
    // written again: only the clashing rows fail.
    for (let attempt = 1; ; attempt++) {
      const items = toCreate.map((i) => ({ i, input: rows[i]!.input!, passwordHash: hashOf.get(i) ?? null }));
      try {
        const created = await this.store.transaction(async (trx) => {
          const out = [];
          for (let c = 0; c < items.length; c += WRITE_CHUNK) out.push(...(await this.users.insertMany(trx, actor, items.slice(c, c + WRITE_CHUNK))));
          return out;
        });
        created.forEach((row, k) => Object.assign(results[items[k]!.i]!, { status: 'created', id: row.id, error: null }));
        return results;
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= WRITE_ATTEMPTS) throw err;
        const now = await this.existingNames(actor.tenantId, toCreate.map((i) => rows[i]!.input!.userPrincipalName.toLowerCase()));
        if (now.size === 0) throw err;
        toCreate = toCreate.filter((i) => {
          if (!now.has(rows[i]!.input!.userPrincipalName.toLowerCase())) return true;
          taken(i);
          return false;
        });
      }
    }
  }

  /** Which of these lower-case user principal names the tenant already has, looked up in batches. */
  private async existingNames(tenantId: string, keys: string[]): Promise<Set<string>> {
    const existing = new Set<string>();
    for (let i = 0; i < keys.length; i += LOOKUP_CHUNK) {
      const found = await this.store.db.selectFrom('users').select('upn_lower').where('tenant_id', '=', tenantId).where('upn_lower', 'in', keys.slice(i, i + LOOKUP_CHUNK)).execute();
      for (const f of found) existing.add(f.upn_lower);
    }
    return existing;
  }
}
