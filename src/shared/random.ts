import crypto from 'node:crypto';

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** Lower-case alphanumeric string of length n, uniformly random (rejection sampling). */
export function randomAlnum(n: number): string {
  let out = '';
  while (out.length < n) {
    for (const b of crypto.randomBytes(n * 2)) {
      if (b < 252 && out.length < n) out += ALNUM[b % 36];
    }
  }
  return out;
}
