import crypto from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPair = promisify(crypto.generateKeyPair);

/**
 * RSA keys made before the timed sections. A 2048-bit key takes ~100 ms of CPU, and every simulated
 * device needs two (its Apple identity and its SCEP key): generating 10,000 devices' worth inside
 * the run would measure the load generator, not the server. The devices draw from a pool in turn;
 * nothing on the server depends on keys being unique (certificates are, and they still are).
 */
export class KeyPool {
  private next = 0;

  private constructor(private readonly keys: crypto.KeyObject[]) {}

  /** `size` keys of `bits`, generated in libuv's thread pool (both cores). */
  static async create(size: number, bits = 2048): Promise<KeyPool> {
    const keys = await Promise.all(Array.from({ length: size }, async () => (await generateKeyPair('rsa', { modulusLength: bits, publicExponent: 0x10001 })).privateKey));
    return new KeyPool(keys);
  }

  get size(): number {
    return this.keys.length;
  }

  /** The device simulator's `generateKey`: the pool's next key (only 2048-bit requests are served). */
  readonly generateKey = async (bits: number): Promise<crypto.KeyObject> => {
    if (bits !== 2048) throw new Error(`the key pool holds 2048-bit keys, not ${bits}`);
    const key = this.keys[this.next % this.keys.length]!;
    this.next++;
    return key;
  };
}
