/** Which property names hold secrets, and how audit records and logs hide them. */

const SECRET_NAME =
  /(password|secret|privatekey|private_key|accesstoken|access_token|refreshtoken|refresh_token|deptoken|^token$|apikey|api_key|challenge|bootstraptoken|unlocktoken|pushmagic|^certificate$|pfx|p12|ciphertext|authorization)/i;

export const REDACTED = '[redacted]';

export function isSecretProperty(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Deep copy with every secret-named property replaced by a marker (null stays null). */
export function redact<T>(value: T, extraSecretNames: readonly string[] = []): T {
  const extra = new Set(extraSecretNames);
  const walk = (v: unknown, depth: number): unknown => {
    if (depth > 20 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      out[k] = (isSecretProperty(k) || extra.has(k)) && x !== null && x !== undefined ? REDACTED : walk(x, depth + 1);
    }
    return out;
  };
  return walk(value, 0) as T;
}

/** pino redaction paths for request logs. */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-apple-aspen-deviceinfo"]',
  'req.headers["mdm-signature"]',
  'req.headers["x-ssl-client-cert"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.token',
  '*.secret',
  '*.privateKey',
];
