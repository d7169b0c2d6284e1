import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/db.js';
import { createDeployment, ensureBuilt, startServe, TOKEN, type Deployment, type Server } from '../cli/helpers.js';
import { openDeploymentStore, until, writeProbe } from './support.js';

/**
 * The real server, killed with SIGKILL while it writes a large CSV user import: the import is
 * one transaction, so after the restart either every row of the file is there or none is (never
 * a part, nor audit records of users that don't exist), and sending the file again succeeds.
 */

const ROWS = 20_000;
const DOMAIN = 'kill-import.test';

function usersCsv(): string {
  const lines = ['userPrincipalName,displayName,accountEnabled'];
  for (let i = 0; i < ROWS; i++) lines.push(`user${i}@${DOMAIN},User ${i},true`);
  return `${lines.join('\n')}\n`;
}

describe('SIGKILL during a CSV user import', () => {
  let deployment: Deployment;
  let server: Server | undefined;
  let store: Store | undefined;

  beforeAll(async () => {
    await ensureBuilt();
    deployment = await createDeployment();
  }, 180_000);

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await store?.close();
    await deployment?.cleanup();
  });

  it('leaves all rows or none, and the same file imports after the restart', { timeout: 90_000 }, async () => {
    server = await startServe(deployment.env);
    const key = server.stdout().match(TOKEN)?.[0];
    expect(key).toBeTruthy();
    store = openDeploymentStore(deployment);
    const csv = usersCsv();
    const send = (url: string) => fetch(`${url}/v1.0/users/importCsv`, { method: 'POST', headers: { authorization: `Bearer ${key!}`, 'content-type': 'text/csv' }, body: csv });
    const committed = async () => Number((await store!.db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).where('upn_lower', 'like', `%@${DOMAIN}`).executeTakeFirstOrThrow()).n);
    const audited = async () =>
      Number((await store!.db.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).where('activity', '=', 'Add user').executeTakeFirstOrThrow()).n);

    // Kill while the import writes: as soon as any of its rows is visible to another connection
    // (rows committed before the end: the failure this test exists for), or once its write
    // transaction has been open a while.
    const probe = await writeProbe(deployment, 'users');
    const inFlight = send(server.url).then(
      (res) => ({ status: res.status }),
      (err: unknown) => ({ error: err }),
    );
    let writingSince: number | undefined;
    const seen = await until(
      'the import to be writing',
      async () => {
        const n = await committed();
        if (n > 0) return `${n} rows committed`;
        if (!(await probe.writing())) {
          writingSince = undefined;
          return undefined;
        }
        writingSince ??= Date.now();
        return Date.now() - writingSince >= 150 ? 'its transaction open for 150 ms' : undefined;
      },
      60_000,
      5,
    );
    server.proc.kill('SIGKILL');
    await server.exited;
    server = undefined;
    await probe.close();
    // The client saw the connection drop, not an answer.
    expect(await inFlight).toMatchObject({ error: expect.anything() });

    const after = await committed();
    console.log(`[faults] ${deployment.dialect}: killed with ${seen}; ${after} of ${ROWS} rows after the restart`);
    expect([0, ROWS]).toContain(after);
    expect(await audited()).toBe(after);

    // The admin sends the file again to the restarted server: every row is created, once.
    server = await startServe(deployment.env);
    const res = await send(server.url);
    expect(res.status).toBe(200);
    const results = ((await res.json()) as { value: { status: string; error: string | null }[] }).value;
    expect(results).toHaveLength(ROWS);
    if (after === 0) expect(results.filter((r) => r.status === 'created')).toHaveLength(ROWS);
    expect(await committed()).toBe(ROWS);
    expect(await audited()).toBe(ROWS);
  });
});
