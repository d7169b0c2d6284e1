import os from 'node:os';
import path from 'node:path';
import { DEFAULT_AUTO_SYNC_INTERVAL_MS, validateAutoSyncInterval } from './apple/ade/sync-policy.js';
import { HOUR } from './shared/time.js';

/** Device requests in progress on a node at which its APNs pushes wait (OPENENROLL_APNS_PUSH_BACKLOG). */
export const DEFAULT_PUSH_BACKLOG = 128;

/** Everything the server reads from its environment, parsed once at start-up. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** PostgreSQL connection string; when absent the embedded SQLite store is used. */
  databaseUrl: string | undefined;
  /** PostgreSQL schema to use (shared clusters, tests). */
  pgSchema: string | undefined;
  /** PostgreSQL connections per server process (OPENENROLL_PG_POOL_SIZE, default 10). */
  pgPoolSize: number;
  /** Absolute base URL used in @odata.context / @odata.nextLink; derived from the request when unset. */
  publicUrl: string | undefined;
  bodyLimitBytes: number;
  logLevel: string;
  /** Master key material: base64 key or JSON keyring. */
  masterKey: string | undefined;
  masterKeyFile: string | undefined;
  oidc: OidcConfig | undefined;
  rateLimit: { max: number; windowMs: number };
  metricsToken: string | undefined;
  /** PEM files for serving HTTPS directly (devices need TLS; a terminating proxy is the alternative). */
  tls: { certFile: string; keyFile: string } | undefined;
  /** Headers of a TLS-terminating proxy we trust (client certificate forwarding, X-Forwarded-*). */
  trustProxy: boolean | string;
  jobs: { enabled: boolean; pollIntervalMs: number; leaseMs: number };
  shutdownGraceMs: number;
  /**
   * Server processes `openenroll serve` runs (OPENENROLL_WORKERS: a whole number, or `auto` for one
   * per core); 1 is a single process, more fork node:cluster workers that share the port.
   */
  workers: number;
  /** Apple "MDM CSR" vendor certificate and key (PEM or DER files) that sign push certificate requests; chain = WWDR + root PEMs. */
  mdmVendor: { certFile: string; keyFile: string; chainFile: string | undefined } | undefined;
  /** Apple's device assignment (DEP) API; the ABM simulator's URL in tests and development. */
  appleDepUrl: string;
  /** How often each ADE token's automatic delta sync runs (OPENENROLL_ADE_SYNC_INTERVAL_HOURS, default 12). */
  adeSyncIntervalMs: number;
  /**
   * Header in which a TLS-terminating proxy (one of OPENENROLL_TRUST_PROXY) forwards the device's
   * client certificate to the MDM endpoints (OPENENROLL_MDM_CLIENT_CERT_HEADER), e.g. X-Client-Cert
   * with nginx's $ssl_client_escaped_cert; devices that sign their messages don't need it.
   */
  mdmClientCertHeader: string | undefined;
  /** Answer macOS UserAuthenticate (network users' channels) instead of declining it (OPENENROLL_MDM_ACCEPT_USER_AUTHENTICATE). */
  mdmAcceptUserAuthenticate: boolean;
  /**
   * APNs (OPENENROLL_APNS_URL, default Apple's production host), an extra CA to trust for it (the
   * simulator's, in tests), and the device requests in progress on a node at which its pushes wait
   * (OPENENROLL_APNS_PUSH_BACKLOG, default 128; 0 pushes without pacing).
   */
  apns: { url: string; caFile: string | undefined; pushBacklog: number };
  /**
   * Certificate (PEM, leaf first, then its chain) and key that sign enrollment profiles instead of the
   * tenant CA's signer, e.g. a publicly trusted TLS certificate so devices show the profile as verified.
   */
  profileSigning: { certFile: string; keyFile: string } | undefined;
  /** PEM bundle of the CAs whose device certificates may sign MachineInfo; Apple's iPhone Device CA when unset. */
  appleDeviceCaFile: string | undefined;
  /** OIDC client for users signing in on enrollment pages (authorization code + PKCE at OPENENROLL_OIDC_ISSUER). */
  enrollmentOidc: EnrollmentOidcConfig | undefined;
}

export interface EnrollmentOidcConfig {
  issuer: string;
  clientId: string;
  /** Confidential clients only; public clients rely on PKCE alone. */
  clientSecret: string | undefined;
  scopes: string;
  /** Claim holding the tenant id (as for admin tokens). */
  tenantClaim: string;
}

export interface OidcConfig {
  issuer: string;
  audience: string;
  /** Explicit JWKS URL; discovered from the issuer when unset. */
  jwksUri: string | undefined;
  /** Claim holding the tenant id; the value must match a tenant's id or oidcTenantKey. */
  tenantClaim: string;
  /** Claim holding app roles (array of strings). */
  rolesClaim: string;
  /** Claim holding scope tag ids (array of strings). */
  scopeTagsClaim: string;
}

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.trim());
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(`${name} must be an integer ${range}, got "${raw}"`);
  }
  return n;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function tlsFiles(env: NodeJS.ProcessEnv): Config['tls'] {
  const certFile = env.OPENENROLL_TLS_CERT_FILE || undefined;
  const keyFile = env.OPENENROLL_TLS_KEY_FILE || undefined;
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new ConfigError('OPENENROLL_TLS_CERT_FILE and OPENENROLL_TLS_KEY_FILE must be set together');
  return { certFile, keyFile };
}

/** The MDM vendor files come as a set: certificate and key together, the chain optional. */
function mdmVendorFiles(env: NodeJS.ProcessEnv): Config['mdmVendor'] {
  const certFile = env.OPENENROLL_MDM_VENDOR_CERT_FILE || undefined;
  const keyFile = env.OPENENROLL_MDM_VENDOR_KEY_FILE || undefined;
  const chainFile = env.OPENENROLL_MDM_VENDOR_CHAIN_FILE || undefined;
  if (!certFile && !keyFile && !chainFile) return undefined;
  if (!certFile || !keyFile) throw new ConfigError('OPENENROLL_MDM_VENDOR_CERT_FILE and OPENENROLL_MDM_VENDOR_KEY_FILE must be set together');
  return { certFile, keyFile, chainFile };
}

/** The profile signing files come as a pair. */
function profileSigningFiles(env: NodeJS.ProcessEnv): Config['profileSigning'] {
  const certFile = env.OPENENROLL_PROFILE_SIGNING_CERT_FILE || undefined;
  const keyFile = env.OPENENROLL_PROFILE_SIGNING_KEY_FILE || undefined;
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new ConfigError('OPENENROLL_PROFILE_SIGNING_CERT_FILE and OPENENROLL_PROFILE_SIGNING_KEY_FILE must be set together');
  return { certFile, keyFile };
}

/** Hours, fractions allowed (0.25 is the 15-minute floor); the ADE sync policy sets the range. */
function adeSyncIntervalMs(env: NodeJS.ProcessEnv): number {
  const raw = env.OPENENROLL_ADE_SYNC_INTERVAL_HOURS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_AUTO_SYNC_INTERVAL_MS;
  const hours = /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
  const ms = Math.round(hours * HOUR);
  try {
    validateAutoSyncInterval(ms);
  } catch (err) {
    throw new ConfigError(`OPENENROLL_ADE_SYNC_INTERVAL_HOURS: ${err instanceof Error ? err.message : String(err)}, got "${raw}"`);
  }
  return ms;
}

/** true/false words, or else a proxy address list for Fastify's trustProxy. */
function trustProxy(raw: string | undefined): boolean | string {
  if (raw === undefined || raw.trim() === '') return false;
  if (/^(1|true|yes|on)$/i.test(raw.trim())) return true;
  // Without this, "false" was handed to Fastify as an address list and start-up failed.
  if (/^(0|false|no|off)$/i.test(raw.trim())) return false;
  return raw.trim();
}

/** An HTTP header name (RFC 9110 token), lower-cased as Node presents it. */
function headerName(name: string, raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(raw.trim())) throw new ConfigError(`${name} must be an HTTP header name, got "${raw}"`);
  return raw.trim().toLowerCase();
}

function httpUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`${name} must be an http(s) URL, got "${raw}"`);
  return raw;
}

/** APNs speaks HTTP/2 over TLS only. */
function httpsUrl(name: string, raw: string): string {
  if (!/^https:/i.test(raw)) throw new ConfigError(`${name} must be an https URL, got "${raw}"`);
  return httpUrl(name, raw);
}

/** A fork bomb from a typo is worse than a refusal; `auto` covers machines with more cores. */
export const MAX_WORKERS = 256;

function workers(env: NodeJS.ProcessEnv): number {
  const raw = env.OPENENROLL_WORKERS;
  if (raw === undefined || raw.trim() === '') return 1;
  if (raw.trim().toLowerCase() === 'auto') return Math.min(MAX_WORKERS, os.availableParallelism());
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!(Number.isSafeInteger(n) && n >= 1 && n <= MAX_WORKERS)) {
    throw new ConfigError(`OPENENROLL_WORKERS must be a whole number from 1 to ${MAX_WORKERS}, or auto (one per core), got "${raw}"`);
  }
  return n;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const issuer = env.OPENENROLL_OIDC_ISSUER;
  let oidc: OidcConfig | undefined;
  if (issuer) {
    httpUrl('OPENENROLL_OIDC_ISSUER', issuer);
    if (env.OPENENROLL_OIDC_JWKS_URI) httpUrl('OPENENROLL_OIDC_JWKS_URI', env.OPENENROLL_OIDC_JWKS_URI);
    const audience = env.OPENENROLL_OIDC_AUDIENCE;
    if (!audience) throw new ConfigError('OPENENROLL_OIDC_AUDIENCE is required when OPENENROLL_OIDC_ISSUER is set');
    oidc = {
      issuer,
      audience,
      jwksUri: env.OPENENROLL_OIDC_JWKS_URI || undefined,
      tenantClaim: env.OPENENROLL_OIDC_TENANT_CLAIM || 'tid',
      rolesClaim: env.OPENENROLL_OIDC_ROLES_CLAIM || 'roles',
      scopeTagsClaim: env.OPENENROLL_OIDC_SCOPE_TAGS_CLAIM || 'scope_tags',
    };
  }
  const publicUrl = env.OPENENROLL_PUBLIC_URL?.replace(/\/+$/, '') || undefined;
  if (publicUrl && !/^https?:\/\//.test(publicUrl)) throw new ConfigError('OPENENROLL_PUBLIC_URL must be an http(s) URL');
  const logLevel = (env.LOG_LEVEL || 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  return {
    port: int(env, 'PORT', 8080, 0, 65_535),
    host: env.HOST || '0.0.0.0',
    dataDir: path.resolve(env.OPENENROLL_DATA_DIR || './data'),
    databaseUrl: env.DATABASE_URL || undefined,
    pgSchema: env.OPENENROLL_PG_SCHEMA || undefined,
    pgPoolSize: int(env, 'OPENENROLL_PG_POOL_SIZE', 10, 1, 1000),
    publicUrl,
    bodyLimitBytes: int(env, 'OPENENROLL_BODY_LIMIT_BYTES', 1024 * 1024, 1024),
    logLevel,
    masterKey: env.OPENENROLL_MASTER_KEY || undefined,
    masterKeyFile: env.OPENENROLL_MASTER_KEY_FILE || undefined,
    oidc,
    rateLimit: {
      max: int(env, 'OPENENROLL_RATE_LIMIT_MAX', 1200, 1),
      windowMs: int(env, 'OPENENROLL_RATE_LIMIT_WINDOW_MS', 60_000, 1000),
    },
    metricsToken: env.OPENENROLL_METRICS_TOKEN || undefined,
    tls: tlsFiles(env),
    trustProxy: trustProxy(env.OPENENROLL_TRUST_PROXY),
    jobs: {
      enabled: bool(env, 'OPENENROLL_JOBS', true),
      pollIntervalMs: int(env, 'OPENENROLL_JOBS_POLL_MS', 1000, 10),
      leaseMs: int(env, 'OPENENROLL_JOBS_LEASE_MS', 30_000, 100),
    },
    shutdownGraceMs: int(env, 'OPENENROLL_SHUTDOWN_GRACE_MS', 10_000, 0),
    workers: workers(env),
    mdmVendor: mdmVendorFiles(env),
    appleDepUrl: httpUrl('OPENENROLL_APPLE_DEP_URL', env.OPENENROLL_APPLE_DEP_URL || 'https://mdmenrollment.apple.com').replace(/\/+$/, ''),
    adeSyncIntervalMs: adeSyncIntervalMs(env),
    mdmClientCertHeader: headerName('OPENENROLL_MDM_CLIENT_CERT_HEADER', env.OPENENROLL_MDM_CLIENT_CERT_HEADER),
    mdmAcceptUserAuthenticate: bool(env, 'OPENENROLL_MDM_ACCEPT_USER_AUTHENTICATE', false),
    apns: {
      url: httpsUrl('OPENENROLL_APNS_URL', env.OPENENROLL_APNS_URL || 'https://api.push.apple.com').replace(/\/+$/, ''),
      caFile: env.OPENENROLL_APNS_CA_FILE || undefined,
      pushBacklog: int(env, 'OPENENROLL_APNS_PUSH_BACKLOG', DEFAULT_PUSH_BACKLOG, 0, 1_000_000),
    },
    profileSigning: profileSigningFiles(env),
    appleDeviceCaFile: env.OPENENROLL_APPLE_DEVICE_CA_FILE || undefined,
    enrollmentOidc: enrollmentOidc(env),
  };
}

/** The enrollment pages' OIDC client: a client id turns it on; the issuer is the admin API's. */
function enrollmentOidc(env: NodeJS.ProcessEnv): EnrollmentOidcConfig | undefined {
  const clientId = env.OPENENROLL_ENROLLMENT_OIDC_CLIENT_ID || undefined;
  if (!clientId) return undefined;
  const issuer = env.OPENENROLL_OIDC_ISSUER;
  if (!issuer) throw new ConfigError('OPENENROLL_ENROLLMENT_OIDC_CLIENT_ID needs OPENENROLL_OIDC_ISSUER');
  return {
    issuer: httpUrl('OPENENROLL_OIDC_ISSUER', issuer),
    clientId,
    clientSecret: env.OPENENROLL_ENROLLMENT_OIDC_CLIENT_SECRET || undefined,
    scopes: env.OPENENROLL_ENROLLMENT_OIDC_SCOPES || 'openid profile email',
    tenantClaim: env.OPENENROLL_OIDC_TENANT_CLAIM || 'tid',
  };
}
