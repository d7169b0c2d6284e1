import crypto, { webcrypto } from 'node:crypto';
import { promisify } from 'node:util';
import { guard, PkiError } from './errors.js';
import { RecentCache } from '../shared/recent-cache.js';

const generateKeyPair = promisify(crypto.generateKeyPair);

export interface KeyPairPem {
  /** PKCS#8 PEM ("PRIVATE KEY"). */
  privateKeyPem: string;
  /** SPKI PEM ("PUBLIC KEY"). */
  publicKeyPem: string;
}

/** A new RSA key (off the event loop: 2048-bit generation takes ~100 ms). */
export async function generateRsaKeyPair(modulusLength = 2048): Promise<KeyPairPem> {
  if (![2048, 3072, 4096].includes(modulusLength)) throw new PkiError('unsupported', 'RSA keys are 2048, 3072 or 4096 bits.');
  const { privateKey, publicKey } = await generateKeyPair('rsa', {
    modulusLength,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** A private key from PEM (PKCS#8 or PKCS#1) or DER (PKCS#8). */
export function loadPrivateKey(key: string | Uint8Array | crypto.KeyObject): crypto.KeyObject {
  if (key instanceof crypto.KeyObject) return key;
  return guard('The private key', () =>
    typeof key === 'string' ? crypto.createPrivateKey(key) : crypto.createPrivateKey({ key: Buffer.from(key), format: 'der', type: 'pkcs8' }),
  );
}

/**
 * Public keys by their encoding: every signed check-in verifies with its device's key, and building a
 * KeyObject from SPKI costs more than the RSA verification. KeyObjects are immutable, so sharing is
 * safe. Bounded; the least recently used goes first.
 */
const publicKeys = new RecentCache<crypto.KeyObject>(10_000);
/** The public half of each private key (and its JWK), derived once per KeyObject. */
const publicHalves = new WeakMap<crypto.KeyObject, crypto.KeyObject>();
const jwks = new WeakMap<crypto.KeyObject, crypto.JsonWebKey>();

/** A public key from SPKI PEM/DER, a certificate's key, or a private key. */
export function loadPublicKey(key: string | Uint8Array | crypto.KeyObject): crypto.KeyObject {
  if (key instanceof crypto.KeyObject) {
    if (key.type !== 'private') return key;
    let half = publicHalves.get(key);
    if (!half) publicHalves.set(key, (half = crypto.createPublicKey(key)));
    return half;
  }
  // The hash, not the encoding, as the map key: 44 characters instead of ~400 per cached key.
  const cacheKey = crypto.createHash('sha256').update(typeof key === 'string' ? `p:${key}` : Buffer.from(key.buffer, key.byteOffset, key.byteLength)).digest('base64');
  return publicKeys.getOrCreate(cacheKey, () =>
    guard('The public key', () => (typeof key === 'string' ? crypto.createPublicKey(key) : crypto.createPublicKey({ key: Buffer.from(key), format: 'der', type: 'spki' }))),
  );
}

export function spkiDer(key: string | Uint8Array | crypto.KeyObject): Buffer {
  return loadPublicKey(key).export({ type: 'spki', format: 'der' });
}

/** Whether two keys (public or private) share the public half; compares the key numbers, not encodings. */
export function samePublicKey(a: crypto.KeyObject, b: crypto.KeyObject): boolean {
  const ja = publicJwk(loadPublicKey(a));
  const jb = publicJwk(loadPublicKey(b));
  return ja.kty === jb.kty && ja.n === jb.n && ja.e === jb.e && ja.crv === jb.crv && ja.x === jb.x && ja.y === jb.y;
}

function publicJwk(key: crypto.KeyObject): crypto.JsonWebKey {
  let jwk = jwks.get(key);
  if (!jwk) jwks.set(key, (jwk = key.export({ format: 'jwk' })));
  return jwk;
}

/** WebCrypto imports per private key: a CA issues many certificates with one key. */
const webCryptoImports = new WeakMap<crypto.KeyObject, ReturnType<typeof importWebCryptoKeys>>();

/** WebCrypto keys for @peculiar/x509, which signs through WebCrypto. RSA (PKCS#1 v1.5) and EC P-256/384. */
export function webCryptoKeys(privateKey: crypto.KeyObject): Promise<{ keys: webcrypto.CryptoKeyPair; signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams }> {
  let imported = webCryptoImports.get(privateKey);
  if (!imported) {
    imported = importWebCryptoKeys(privateKey);
    webCryptoImports.set(privateKey, imported);
    // A failed import is not remembered: the caller sees the error, the next call tries again.
    imported.catch(() => webCryptoImports.delete(privateKey));
  }
  return imported;
}

async function importWebCryptoKeys(privateKey: crypto.KeyObject): Promise<{ keys: webcrypto.CryptoKeyPair; signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams }> {
  const type = privateKey.asymmetricKeyType;
  let importAlg: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  let signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
  if (type === 'rsa') {
    importAlg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    signingAlgorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as webcrypto.Algorithm;
  } else if (type === 'ec') {
    const curve = privateKey.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : undefined;
    if (!namedCurve) throw new PkiError('unsupported', `EC curve ${curve ?? '?'} isn't supported.`);
    importAlg = { name: 'ECDSA', namedCurve };
    signingAlgorithm = { name: 'ECDSA', hash: namedCurve === 'P-256' ? 'SHA-256' : 'SHA-384' } as webcrypto.EcdsaParams;
  } else {
    throw new PkiError('unsupported', `${type ?? 'This'} keys aren't supported for signing certificates.`);
  }
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const spki = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, importAlg, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', spki, importAlg, true, ['verify']),
  };
  return { keys, signingAlgorithm };
}
