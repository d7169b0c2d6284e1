import type { Core } from '../../../server/module.js';
import type { Executor } from '../../../store/db.js';
import type { DepApiFactory } from '../contracts.js';
import type { DepApi, DepOAuthTokens } from '../dep-api.js';
import { DEFAULT_DEP_USER_AGENT, DepClient, type DepClientOptions } from '../dep-client.js';

/** Kind of the secrets holding a token's OAuth credentials (the decrypted server token, as JSON). */
export const DEP_OAUTH_SECRET_KIND = 'adeServerToken';

export class DepTokenNotUploadedError extends Error {
  constructor(readonly tokenId: string) {
    super(`Enrollment program token ${tokenId} has no uploaded server token`);
    this.name = 'DepTokenNotUploadedError';
  }
}

type ClientOverrides = Omit<Partial<DepClientOptions>, 'tokens'>;

/** A DEP client with the configured base URL, our User-Agent, the core clock and logger. */
export function depClientFor(core: Pick<Core, 'config' | 'clock' | 'logger'>, tokens: DepOAuthTokens, overrides: ClientOverrides = {}): DepClient {
  return new DepClient({
    tokens,
    baseUrl: core.config.appleDepUrl,
    userAgent: DEFAULT_DEP_USER_AGENT,
    clock: core.clock,
    logger: core.logger.child({ component: 'apple-dep' }),
    ...overrides,
  });
}

/** Reads a token's OAuth credentials from the secrets table. */
export async function readDepOAuthTokens(core: Pick<Core, 'secrets'>, db: Executor, tenantId: string, tokenId: string): Promise<DepOAuthTokens> {
  const row = await db.selectFrom('dep_tokens').select('oauth_secret_id').where('tenant_id', '=', tenantId).where('id', '=', tokenId).executeTakeFirst();
  if (!row?.oauth_secret_id) throw new DepTokenNotUploadedError(tokenId);
  return JSON.parse(await core.secrets.getText(db, tenantId, row.oauth_secret_id)) as DepOAuthTokens;
}

/**
 * The DepApiFactory of contracts.ts: a client for one uploaded token (its OAuth secret decrypted),
 * talking to OPENENROLL_APPLE_DEP_URL. Throws DepTokenNotUploadedError for a token without one.
 * `overrides` tune the client (the admin API retries less than a background sync).
 */
export function createDepApiFactory(core: Pick<Core, 'config' | 'clock' | 'logger' | 'secrets'>, overrides: ClientOverrides = {}): DepApiFactory {
  return async (db: Executor, tenantId: string, tokenId: string): Promise<DepApi> =>
    depClientFor(core, await readDepOAuthTokens(core, db, tenantId, tokenId), overrides);
}
