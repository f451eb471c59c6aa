/**
 * Acks as ready-made MQTT frames: QoS 0 PUBLISH packets encoded here and
 * written to the broker socket in one buffer per tick, past mqtt.js.
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
 * Collects frames and writes them as one buffer at the next `setImmediate` (or
 * at {@link flush}), then runs `afterFlush` (the session publishes the QoS 1
 * pushes of the batch there, after their acks). Counts what it had to drop.
 *
 * Why setImmediate and not process.nextTick: mqtt.js 5 hands the client one
 * incoming packet per nextTick (its parser's `work` pump), so a flush on the
 * next tick ran between every two keep-alives — one socket write per ack, and
 * one per push, the write path most of a backup call manager's CPU when a
 * failed peer's phones all arrive at once (bench/absorb.ts, issue 18). An
 * immediate runs once the pump has handled everything the socket delivered.
 */
export class AckBatcher {
  #frames: Buffer[] = [];
  #bytes = 0;
  #scheduled = false;
  /** Frames written, and frames dropped because the sink was not writable. */
  written = 0;
  dropped = 0;

  constructor(
    readonly sink: FrameSink,
    readonly protocolVersion: 4 | 5,
    /**
     * Flush early once a batch holds this many bytes (its frames and what {@link schedule}
     * was told of): an immediate waits for everything the socket delivered, and a failed
     * peer's phones are 10,000 keep-alives at once — the first acks must not wait for the last.
     */
    readonly maxBatchBytes = 64 * 1024,
    /** Run at the end of every flush (after the frames were handed to the sink). */
    readonly afterFlush?: () => void,
  ) {}

  add(topic: string, payload: string): void {
    const frame = publishFrame(topic, payload, this.protocolVersion);
    this.#frames.push(frame);
    this.#bytes += frame.length;
    if (this.#bytes >= this.maxBatchBytes) this.flush();
    else this.schedule();
  }

  /**
   * Make sure a flush comes (for `afterFlush` work queued without a frame), counting
   * `bytes` of that work in the batch: at {@link maxBatchBytes} it is flushed now.
   */
  schedule(bytes = 0): void {
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
    const frames = this.#frames;
    this.#bytes = 0;
    if (frames.length > 0) {
      this.#frames = [];
      if (this.sink.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames))) this.written += frames.length;
      else this.dropped += frames.length;
    }
    this.afterFlush?.();
  }
}
