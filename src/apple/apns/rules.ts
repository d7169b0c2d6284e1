/**
 * Pure APNs rules: what an answer from APNs means for the device, the push and the tenant, how long
 * to wait before trying again, and how a stored device token becomes the hex APNs wants. No I/O.
 */

/** What a response (or a transport failure) means. */
export type ApnsVerdict =
  /** 200: APNs took the push. */
  | { kind: 'sent' }
  /** The token will never work again for this topic: mark the enrollment until its next TokenUpdate. */
  | { kind: 'unregistered'; reason: string }
  /** Worth trying again after a pause (429, 500, 503, network, timeout). */
  | { kind: 'retry'; reason: string }
  /** The certificate (or its topic) is refused: stop pushing for the tenant until it changes. */
  | { kind: 'certificate'; reason: string }
  /** Our request was wrong or the payload refused; retrying the same push can't help. */
  | { kind: 'rejected'; reason: string };

/** 403 reasons, and 400 TopicDisallowed: the certificate can't push, whatever the device. */
export const CERTIFICATE_REASONS: ReadonlySet<string> = new Set(['BadCertificate', 'BadCertificateEnvironment', 'Forbidden', 'TopicDisallowed']);

/** 400 reasons that condemn the token itself rather than our request. */
const DEAD_TOKEN_REASONS: ReadonlySet<string> = new Set(['BadDeviceToken', 'DeviceTokenNotForTopic']);

const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

/** Classifies an APNs answer by HTTP status and the `reason` of its JSON body. */
export function classifyApnsResponse(status: number, reason: string | undefined): ApnsVerdict {
  if (status === 200) return { kind: 'sent' };
  const r = reason ?? `HTTP ${status}`;
  if (status === 410) return { kind: 'unregistered', reason: r };
  if (status === 400 && reason && DEAD_TOKEN_REASONS.has(reason)) return { kind: 'unregistered', reason: r };
  if (status === 403 || (reason !== undefined && CERTIFICATE_REASONS.has(reason))) return { kind: 'certificate', reason: r };
  if (RETRYABLE_STATUS.has(status)) return { kind: 'retry', reason: r };
  return { kind: 'rejected', reason: r };
}

/** The `reason` (and 410's `timestamp`) of an APNs error body; tolerant of garbage. */
export function parseApnsErrorBody(body: string): { reason?: string; timestamp?: number } {
  if (!body) return {};
  try {
    const v: unknown = JSON.parse(body);
    if (typeof v !== 'object' || v === null) return {};
    const o = v as { reason?: unknown; timestamp?: unknown };
    return {
      ...(typeof o.reason === 'string' && /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(o.reason) ? { reason: o.reason } : {}),
      ...(typeof o.timestamp === 'number' && Number.isFinite(o.timestamp) ? { timestamp: o.timestamp } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * Retry-After as milliseconds from now: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). APNs
 * doesn't document one, but a proxy or a future APNs might send it. Undefined when absent or unreadable.
 */
export function retryAfterMs(value: string | string[] | undefined, now: Date): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}

export interface ApnsRetryPolicy {
  /** Attempts per device and push, the first included. */
  maxAttempts: number;
  /** First backoff; doubles each retry. */
  baseDelayMs: number;
  /** Longest backoff, and the longest Retry-After we wait for (a longer one gives up at once). */
  maxDelayMs: number;
}

export const DEFAULT_APNS_RETRY_POLICY: ApnsRetryPolicy = { maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 10_000 };

/**
 * The wait before retry `retry` (1-based), or undefined to give up. Exponential with equal jitter;
 * a Retry-After wins when given, and one longer than the cap gives up rather than hold the push.
 */
export function retryDelayMs(policy: ApnsRetryPolicy, retry: number, retryAfter: number | undefined, random: number): number | undefined {
  if (retry >= policy.maxAttempts) return undefined;
  if (retryAfter !== undefined) return retryAfter > policy.maxDelayMs ? undefined : retryAfter;
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.floor(exp / 2 + (exp / 2) * random);
}

const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** Apple's tokens were 32 bytes and may grow (Apple says up to 100); anything shorter is a mistake. */
const MIN_TOKEN_BYTES = 32;
const MAX_TOKEN_BYTES = 100;

/**
 * The lower-case hex token APNs addresses, from what TokenUpdate stored: hex (preferred) or the
 * base64 of the plist `<data>`. Undefined when it is neither, or out of Apple's size range.
 */
export function deviceTokenHex(stored: string | null | undefined): string | undefined {
  const s = stored?.replace(/\s+/g, '');
  if (!s) return undefined;
  let hex: string | undefined;
  if (HEX.test(s) && s.length % 2 === 0) hex = s.toLowerCase();
  else if (BASE64.test(s) && s.length % 4 === 0) hex = Buffer.from(s, 'base64').toString('hex');
  if (!hex) return undefined;
  const bytes = hex.length / 2;
  return bytes >= MIN_TOKEN_BYTES && bytes <= MAX_TOKEN_BYTES ? hex : undefined;
}

/** The one body an MDM push may carry (Apple: the PushMagic and nothing else). */
export function mdmPushBody(pushMagic: string): string {
  return JSON.stringify({ mdm: pushMagic });
}

/** apns-expiration: seconds since the epoch after which APNs stops trying to deliver. */
export function apnsExpiration(now: Date, ttlMs: number): string {
  return String(Math.floor((now.getTime() + ttlMs) / 1000));
}
