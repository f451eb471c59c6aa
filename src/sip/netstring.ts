/**
 * Netstring framing (D. J. Bernstein, `LEN:BYTES,`) as baresip's ctrl_tcp
 * speaks it (`modules/ctrl_tcp/netstring/netstring.c`): decimal length
 * without leading zeros (`0:,` is the empty frame), a colon, the bytes, a
 * comma.
 *
 * Why a state machine over bytes: TCP hands us frames split at any byte and
 * several frames in one chunk; the decoder keeps only the partial frame it is
 * in. A stream that breaks the framing cannot be resynchronised (any byte may
 * be inside a payload), so the first bad byte poisons the decoder: it throws
 * a coded error and the caller drops the connection and starts a new decoder.
 */
import { IpphoneError } from '../lib/errors.js';

/** Default largest payload accepted, bytes. baresip's responses and events are a few hundred bytes. */
export const NETSTRING_MAX_BYTES = 64 * 1024;

/** One frame: `LEN:payload,`. */
export function encodeNetstring(payload: string | Uint8Array): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  return Buffer.concat([Buffer.from(`${body.length}:`, 'ascii'), body, Buffer.from(',', 'ascii')]);
}

type Phase = 'length' | 'body' | 'comma' | 'failed';

const COLON = 0x3a;
const COMMA = 0x2c;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Incremental decoder. Feed each received chunk to {@link push}; complete
 * payloads go to `onFrame` in order. On bad framing `push` throws an
 * {@link IpphoneError} (`PAYLOAD_INVALID`, or `PAYLOAD_TOO_LARGE` for a length
 * over `maxBytes`) after delivering the frames before the bad byte; every
 * later `push` throws the same error.
 */
export class NetstringDecoder {
  readonly #maxBytes: number;
  #phase: Phase = 'length';
  #length = 0;
  #digits = 0;
  #parts: Buffer[] = [];
  #have = 0;
  /** Stream offset after the current chunk, and of its first byte: error context. */
  #offset = 0;
  #base = 0;
  #error: IpphoneError | null = null;

  /** @param maxBytes largest payload accepted (default {@link NETSTRING_MAX_BYTES}); ≥ 0. */
  constructor(maxBytes = NETSTRING_MAX_BYTES) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes of the frame in progress held so far (length digits not counted). */
  get buffered(): number {
    return this.#have;
  }

  /** True after a framing error: drop the connection. */
  get failed(): boolean {
    return this.#error !== null;
  }

  push(chunk: Uint8Array, onFrame: (payload: Buffer) => void): void {
    if (this.#error) throw this.#error;
    this.#base = this.#offset;
    this.#offset += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      const b = chunk[i] as number;
      switch (this.#phase) {
        case 'length':
          if (b >= ZERO && b <= NINE) {
            if (this.#digits > 0 && this.#length === 0) this.#fail('PAYLOAD_INVALID', 'leading zero in netstring length', i);
            this.#length = this.#length * 10 + (b - ZERO);
            this.#digits++;
            if (this.#length > this.#maxBytes) {
              this.#fail('PAYLOAD_TOO_LARGE', 'netstring longer than allowed', i, { maxBytes: this.#maxBytes });
            }
            i++;
          } else if (b === COLON && this.#digits > 0) {
            this.#phase = this.#length === 0 ? 'comma' : 'body';
            i++;
          } else {
            this.#fail('PAYLOAD_INVALID', this.#digits === 0 ? 'netstring does not start with a length' : 'netstring length not followed by a colon', i, { byte: b });
          }
          break;
        case 'body': {
          const take = Math.min(this.#length - this.#have, chunk.length - i);
          this.#parts.push(Buffer.from(chunk.subarray(i, i + take)));
          this.#have += take;
          i += take;
          if (this.#have === this.#length) this.#phase = 'comma';
          break;
        }
        case 'comma': {
          if (b !== COMMA) this.#fail('PAYLOAD_INVALID', 'netstring payload not followed by a comma', i, { byte: b });
          i++;
          const payload = this.#parts.length === 1 ? (this.#parts[0] as Buffer) : Buffer.concat(this.#parts, this.#length);
          this.#reset();
          onFrame(payload);
          break;
        }
        case 'failed':
          throw this.#error ?? new IpphoneError('netstring decoder failed', 'PAYLOAD_INVALID');
      }
    }
  }

  #reset(): void {
    this.#phase = 'length';
    this.#length = 0;
    this.#digits = 0;
    this.#parts = [];
    this.#have = 0;
  }

  #fail(code: 'PAYLOAD_INVALID' | 'PAYLOAD_TOO_LARGE', message: string, at: number, ctx: Record<string, unknown> = {}): never {
    this.#phase = 'failed';
    this.#parts = [];
    this.#error = new IpphoneError(message, code, { ...ctx, offset: this.#base + at });
    throw this.#error;
  }
}
