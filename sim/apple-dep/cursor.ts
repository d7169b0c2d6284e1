import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Cursors are opaque to clients, as Apple's are: hex of a small JSON position plus a truncated HMAC, so
 * a forged or corrupted cursor is INVALID_CURSOR rather than a crash or a silent jump.
 *
 * - `fetch`: part-way through a full fetch: a snapshot id and the offset into it.
 * - `sync`: a position in the server's change log (a completed fetch, or a sync page).
 */
export type CursorState =
  | { kind: 'fetch'; server: string; snapshot: number; offset: number; seq: number; issuedAt: number; generation: number }
  | { kind: 'sync'; server: string; seq: number; issuedAt: number; generation: number };

const MAC_BYTES = 16;

export class CursorCodec {
  constructor(private readonly key: Buffer) {}

  encode(c: CursorState): string {
    const body =
      c.kind === 'fetch'
        ? { k: 'f', s: c.server, f: c.snapshot, o: c.offset, q: c.seq, t: c.issuedAt, g: c.generation }
        : { k: 's', s: c.server, q: c.seq, t: c.issuedAt, g: c.generation };
    const payload = Buffer.from(JSON.stringify(body), 'utf8');
    return Buffer.concat([payload, this.mac(payload)]).toString('hex').toUpperCase();
  }

  /** The state, or undefined for anything this simulator didn't issue. */
  decode(cursor: string): CursorState | undefined {
    if (cursor.length > 1000 || cursor.length % 2 !== 0 || !/^[0-9A-Fa-f]+$/.test(cursor)) return undefined;
    const raw = Buffer.from(cursor, 'hex');
    if (raw.length <= MAC_BYTES) return undefined;
    const payload = raw.subarray(0, raw.length - MAC_BYTES);
    if (!timingSafeEqual(raw.subarray(raw.length - MAC_BYTES), this.mac(payload))) return undefined;
    let b: Record<string, unknown>;
    try {
      b = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return undefined;
    }
    const int = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    if (typeof b.s !== 'string' || !int(b.q) || !int(b.t) || !int(b.g)) return undefined;
    if (b.k === 'f' && int(b.f) && int(b.o)) {
      return { kind: 'fetch', server: b.s, snapshot: b.f, offset: b.o, seq: b.q, issuedAt: b.t, generation: b.g };
    }
    if (b.k === 's') return { kind: 'sync', server: b.s, seq: b.q, issuedAt: b.t, generation: b.g };
    return undefined;
  }

  private mac(payload: Buffer): Buffer {
    return createHmac('sha256', this.key).update(payload).digest().subarray(0, MAC_BYTES);
  }
}
