/**
 * Acks as ready-made MQTT frames: QoS 0 PUBLISH packets encoded here and
 * written to the broker socket past mqtt.js, one buffer per run of acks between
 * two pushes, all of a tick in one writev.
 *
 * mqtt.js publishes a packet as four or five small writes (header, length,
 * topic, properties, payload) each behind cork/uncork and a nextTick, after
 * option checks and a callback. At tens of thousands of acks a second that
 * path, and the writev of thousands of tiny buffers it ends in, was most of a
 * call manager's CPU (bench/throughput.ts with --cpu-prof). A QoS 0 PUBLISH
 * has no packet id and needs no state in the client, so it can be written
 * between whole packets of mqtt.js on the same socket: JavaScript runs one
 * packet's writes at a time, and a batch is one write of complete frames.
 *
 * Frame (MQTT 3.1.1 §3.3, MQTT 5 §3.3): byte 0x30 (PUBLISH, QoS 0, no DUP,
 * no RETAIN); Remaining Length as a variable byte integer; topic as a UTF-8
 * string with a two-byte length; for MQTT 5 a property length of 0; payload.
 */

/** Topic plus payload over this is refused (MQTT's own limit is 268,435,455). */
export const MAX_FRAME_BODY = 256 * 1024;

/** Encode one QoS 0 PUBLISH of `payload` (UTF-8) on `topic` for protocol level 4 or 5. */
export function publishFrame(topic: string, payload: string, protocolVersion: 4 | 5): Buffer {
  const topicBytes = Buffer.byteLength(topic, 'utf8');
  if (topicBytes === 0 || topicBytes > 0xffff) throw new RangeError(`topic of ${topicBytes} bytes`);
  const payloadBytes = Buffer.byteLength(payload, 'utf8');
  const remaining = 2 + topicBytes + (protocolVersion === 5 ? 1 : 0) + payloadBytes;
  if (remaining > MAX_FRAME_BODY) throw new RangeError(`frame body of ${remaining} bytes`);
  const lengthBytes = remaining < 0x80 ? 1 : remaining < 0x4000 ? 2 : 3;
  const buf = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  let at = 0;
  buf[at++] = 0x30;
  let n = remaining;
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n > 0) byte |= 0x80;
    buf[at++] = byte;
  } while (n > 0);
  buf.writeUInt16BE(topicBytes, at);
  at += 2;
  at += buf.write(topic, at, 'utf8');
  if (protocolVersion === 5) buf[at++] = 0;
  buf.write(payload, at, 'utf8');
  return buf;
}

/** Where batches go: the client's socket, while it is connected. */
export interface FrameSink {
  /** Write one buffer of whole frames; false when it cannot be written now (dropped). */
  write(frames: Buffer): boolean;
}

/**
 * Collects frames and writes them at the next `setImmediate` (or at {@link flush},
 * or once a batch holds {@link maxBatchBytes}), together with the work queued
 * between them ({@link later}: the session's QoS 1 pushes, published by
 * `publishLater`), in the order it was queued. Counts what it had to drop.
 *
 * Why setImmediate and not process.nextTick: mqtt.js 5 hands the client one
 * incoming packet per nextTick (its parser's `work` pump), so a flush on the
 * next tick ran between every two keep-alives — one socket write per ack, and
 * one per push, the write path most of a backup call manager's CPU when a
 * failed peer's phones all arrive at once (bench/absorb.ts, issue 18). An
 * immediate runs once the pump has handled everything the socket delivered.
 *
 * Why in order, each push right behind its own ack and not behind the batch's
 * last: the broker reads a connection's packets in the order they were written
 * (mosquitto 2.0 one packet per connection per pass of its loop, taking its turn
 * with every phone connection sending a keep-alive at that moment), so a push
 * written behind ~90 acks reached its phone only after all of them — the first
 * phones of a failover had their ack at once and their list ~180 ms later
 * (bench/results-absorb.md). A run of frames between two pushes is still one
 * buffer, and the session corks the socket for the whole flush (one writev).
 */
export class AckBatcher<L = never> {
  /** Frames queued, in order. */
  #frames: Buffer[] = [];
  /** Work queued, in order, and how many of {@link #frames} were queued before each. */
  #later: L[] = [];
  #laterAt: number[] = [];
  #bytes = 0;
  #scheduled = false;
  /** Frames written, and frames dropped because the sink was not writable. */
  written = 0;
  dropped = 0;

  constructor(
    readonly sink: FrameSink,
    readonly protocolVersion: 4 | 5,
    /**
     * Flush early once a batch holds this many bytes (its frames and what {@link later}
     * was told of): an immediate waits for everything the socket delivered, and a failed
     * peer's phones are 10,000 keep-alives at once — the first acks must not wait for the last.
     */
    readonly maxBatchBytes = 64 * 1024,
    /** Runs each item queued by {@link later}, right after the frames queued before it were handed to the sink. */
    readonly publishLater?: (item: L) => void,
  ) {}

  add(topic: string, payload: string): void {
    const frame = publishFrame(topic, payload, this.protocolVersion);
    this.#frames.push(frame);
    this.#count(frame.length);
  }

  /**
   * Queue `item` behind the frames added so far: at the flush it is handed to
   * `publishLater` once those frames were written, before the frames added after
   * it. `bytes` of it count towards {@link maxBatchBytes}.
   */
  later(item: L, bytes = 0): void {
    this.#later.push(item);
    this.#laterAt.push(this.#frames.length);
    this.#count(bytes);
  }

  #count(bytes: number): void {
    this.#bytes += bytes;
    if (this.#bytes >= this.maxBatchBytes) {
      this.flush();
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      if (this.#scheduled) this.flush();
    });
  }

  flush(): void {
    this.#scheduled = false;
    this.#bytes = 0;
    const frames = this.#frames;
    const later = this.#later;
    const laterAt = this.#laterAt;
    if (frames.length > 0) this.#frames = [];
    if (later.length > 0) {
      this.#later = [];
      this.#laterAt = [];
    }
    let from = 0;
    for (let k = 0; k < later.length; k++) {
      const at = laterAt[k]!;
      if (at > from) this.#write(frames, from, at);
      from = at;
      this.publishLater?.(later[k]!);
    }
    if (frames.length > from) this.#write(frames, from, frames.length);
  }

  /** One write of `frames[from, to)`. */
  #write(frames: Buffer[], from: number, to: number): void {
    const n = to - from;
    const buf = n === 1 ? frames[from]! : Buffer.concat(from === 0 && to === frames.length ? frames : frames.slice(from, to));
    if (this.sink.write(buf)) this.written += n;
    else this.dropped += n;
  }
}
