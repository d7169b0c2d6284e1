import { PkiError } from './errors.js';
import { decodeBase64, isPem, pemToDer } from './pem.js';

/**
 * Reading CMS messages as users and peers hand them over: S/MIME (`.p7m` with MIME headers, as Apple
 * Business Manager's server token), PEM (-----BEGIN PKCS7----- / CMS), raw DER, or bare base64.
 */

/** 1 MiB: a server token is ~4 KiB, a signed profile rarely over 100 KiB. */
export const MAX_CMS_BYTES = 1024 * 1024;

export interface MimeEntity {
  /** Lower-cased header names → unfolded values. */
  headers: Map<string, string>;
  body: Buffer;
}

export interface HeaderValue {
  /** Lower-cased, e.g. application/pkcs7-mime. */
  value: string;
  /** Lower-cased names → unquoted values. */
  params: Record<string, string>;
}

const HEADER_LINE = /^([!-9;-~]+):[ \t]*(.*)$/;

/**
 * A MIME entity: header lines, a blank line, the body. Undefined when the text doesn't start with a
 * header block (so the caller can try other forms). LF and CRLF line ends are both accepted.
 */
export function parseMimeEntity(input: Uint8Array): MimeEntity | undefined {
  const bytes = Buffer.from(input);
  const text = bytes.toString('latin1');
  const m = /\r?\n\r?\n/.exec(text);
  if (!m) return undefined;
  const headerLines = text.slice(0, m.index).split(/\r?\n/);
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const line of headerLines) {
    if (/^[ \t]/.test(line) && last) {
      headers.set(last, `${headers.get(last)!} ${line.trim()}`);
      continue;
    }
    const h = HEADER_LINE.exec(line);
    if (!h) return undefined;
    last = h[1]!.toLowerCase();
    headers.set(last, h[2]!.trim());
  }
  if (headers.size === 0) return undefined;
  return { headers, body: bytes.subarray(m.index + m[0].length) };
}

/** `type/subtype; a=b; c="d"` */
export function parseHeaderValue(raw: string): HeaderValue {
  const [first = '', ...rest] = raw.split(';');
  const params: Record<string, string> = {};
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq <= 0) continue;
    const v = p.slice(eq + 1).trim();
    params[p.slice(0, eq).trim().toLowerCase()] = v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? v.slice(1, -1) : v;
  }
  return { value: first.trim().toLowerCase(), params };
}

/** A MIME body per its Content-Transfer-Encoding (7bit/8bit/binary/base64/quoted-printable). */
export function decodeMimeBody(entity: MimeEntity): Buffer {
  const cte = (entity.headers.get('content-transfer-encoding') ?? '7bit').trim().toLowerCase();
  switch (cte) {
    case '7bit':
    case '8bit':
    case 'binary':
      return entity.body;
    case 'base64': {
      const decoded = decodeBase64(entity.body.toString('latin1'));
      if (!decoded) throw new PkiError('malformed', 'The MIME body is not valid base64.');
      return decoded;
    }
    case 'quoted-printable':
      return Buffer.from(
        entity.body
          .toString('latin1')
          .replace(/=\r?\n/g, '')
          .replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
        'latin1',
      );
    default:
      throw new PkiError('unsupported', `Content-Transfer-Encoding '${cte}' is not supported.`);
  }
}

export interface CmsInput {
  der: Buffer;
  form: 'der' | 'pem' | 'smime' | 'base64';
  /** The S/MIME smime-type parameter (enveloped-data, signed-data…), when given. */
  smimeType?: string;
}

const PKCS7_MIME = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);

/** DER of a CMS ContentInfo from S/MIME, PEM, DER or base64; refuses anything over `maxBytes`. */
export function readCmsInput(input: string | Uint8Array, opts: { maxBytes?: number; what?: string } = {}): CmsInput {
  const what = opts.what ?? 'The message';
  const max = opts.maxBytes ?? MAX_CMS_BYTES;
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > max) throw new PkiError('tooLarge', `${what} is larger than ${max} bytes.`);
  if (size === 0) throw new PkiError('malformed', `${what} is empty.`);
  let bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
  if (bytes[0] === 0x30) return { der: bytes, form: 'der' };
  // A UTF-8 byte-order mark and leading blank lines come from editors and downloads.
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  const text = bytes.toString('latin1').replace(/^\s+/, '');
  bytes = Buffer.from(text, 'latin1');

  let result: CmsInput | undefined;
  if (isPem(text)) {
    result = { der: pemToDer(text, ['PKCS7', 'CMS', 'PKCS #7 SIGNED DATA']), form: 'pem' };
  } else {
    const entity = parseMimeEntity(bytes);
    if (entity) {
      const ct = parseHeaderValue(entity.headers.get('content-type') ?? '');
      if (!PKCS7_MIME.has(ct.value)) {
        throw new PkiError('malformed', `${what} is a MIME entity of type '${ct.value || 'none'}', not application/pkcs7-mime.`);
      }
      result = { der: decodeMimeBody(entity), form: 'smime', ...(ct.params['smime-type'] ? { smimeType: ct.params['smime-type'].toLowerCase() } : {}) };
    } else {
      const der = decodeBase64(text);
      if (der) result = { der, form: 'base64' };
    }
  }
  if (!result || result.der[0] !== 0x30) throw new PkiError('malformed', `${what} is not a CMS message (S/MIME, PEM or DER).`);
  return result;
}
