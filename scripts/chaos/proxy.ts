/**
 * The network between hosts and one broker, owned by the nemesis: a TCP proxy
 * on 127.0.0.1 in front of a real mosquitto that every client of that broker
 * (phones, call managers, their peer links) goes through. It reads each
 * connection's MQTT CONNECT to learn which host it comes from (the client id:
 * `ipphone-PHONE` is the fleet, `ipphone-cm-ID` and `ipphone-cm-ID-linkN` are
 * call manager ID), so a link is one host ↔ one broker, as in Jepsen's
 * `partition` nemesis, and cuts it from the outside:
 *
 * - `partition`: every connection of the link is reset (RST both ways: the
 *   broker sees an unclean loss and fires the will), new ones are reset once
 *   their CONNECT arrives;
 * - `blackhole`: connections stay open and every byte either way is dropped
 *   (nobody is told: keep-alives time out), new ones are accepted and held.
 *   TCP would have retransmitted what a real black hole dropped; these
 *   streams cannot be resumed, so healing resets the held connections (what
 *   a long enough real black hole ends in anyway: the keep-alive timeouts);
 * - `heal`: new connections pass again.
 *
 * Every connection attempt is counted per client id with its time (the
 * `no-storm` checker reads them), refused ones included.
 *
 * Under TLS the CONNECT is encrypted: the proxy stays a byte pipe and learns
 * the host from the client certificate instead, whose CN is the client's
 * identity and client id (the shipped broker's `use_identity_as_username` and
 * `use_username_as_clientid`). TLS 1.2 sends the client's Certificate message
 * in the clear (1.3 encrypts it), so the chaos run's programs speak TLS 1.2
 * (`NODE_OPTIONS=--tls-max-v1.2`: mosquitto 2.0's `tls_version` is only a
 * minimum); the handshake is passed through until that message and the
 * link's state is applied there (a cut link's connection is reset
 * mid-handshake, a black-holed one held). A client whose certificate the
 * proxy cannot read is counted as `(no certificate)` and never cut.
 */
import { X509Certificate } from 'node:crypto';
import net from 'node:net';

export type LinkState = 'ok' | 'partition' | 'blackhole';

/** Which host a client id belongs to: a call manager's id, `fleet`, or `other` (never cut). */
export type HostOf = (clientId: string) => string;

/** The client id of an MQTT CONNECT at the head of `buf` (3.1.1 or 5); null while incomplete; throws when it is not one. */
export function connectClientId(buf: Buffer): string | null {
  if (buf.length < 2) return null;
  if (buf[0]! >> 4 !== 1) throw new Error(`not a CONNECT (first byte 0x${buf[0]!.toString(16)})`);
  let len = 0;
  let mult = 1;
  let i = 1;
  for (;;) {
    if (i >= buf.length) return null;
    const b = buf[i++]!;
    len += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) break;
    mult *= 128;
    if (i > 4) throw new Error('bad remaining length');
  }
  if (buf.length < i + len) return null;
  let p = i;
  const nameLen = buf.readUInt16BE(p);
  p += 2 + nameLen;
  const level = buf[p]!;
  p += 1 + 1 + 2; // level, flags, keep-alive
  if (level === 5) {
    let plen = 0;
    let m = 1;
    for (;;) {
      const b = buf[p++]!;
      plen += (b & 0x7f) * m;
      if ((b & 0x80) === 0) break;
      m *= 128;
    }
    p += plen;
  }
  const idLen = buf.readUInt16BE(p);
  return buf.subarray(p + 2, p + 2 + idLen).toString('utf8');
}

/**
 * The CN of the client certificate in a TLS 1.2 client→server byte stream
 * (records of type 22, handshake message 11, its first certificate); null
 * while it has not arrived yet; `''` when the client sent no certificate
 * (a ChangeCipherSpec came first, or the stream is not TLS).
 */
export function tlsClientCn(buf: Buffer): string | null {
  let hs = Buffer.alloc(0);
  let p = 0;
  // Past the handshake (ChangeCipherSpec, application data) or not TLS: no certificate can follow.
  let ended = false;
  while (p + 5 <= buf.length) {
    const type = buf[p]!;
    const len = buf.readUInt16BE(p + 3);
    if (type !== 22) {
      ended = true;
      break;
    }
    if (p + 5 + len > buf.length) break;
    hs = Buffer.concat([hs, buf.subarray(p + 5, p + 5 + len)]);
    p += 5 + len;
  }
  let q = 0;
  while (q + 4 <= hs.length) {
    const mtype = hs[q]!;
    const mlen = hs.readUIntBE(q + 1, 3);
    if (q + 4 + mlen > hs.length) return ended ? '' : null;
    if (mtype === 11) {
      const body = hs.subarray(q + 4, q + 4 + mlen);
      if (body.length < 6) return '';
      const first = body.readUIntBE(3, 3);
      const der = body.subarray(6, 6 + first);
      try {
        return /(?:^|\n)CN=([^\n]*)/.exec(new X509Certificate(der).subject)?.[1] ?? '';
      } catch {
        return '';
      }
    }
    q += 4 + mlen;
  }
  return ended ? '' : null;
}

interface Conn {
  host: string;
  client: net.Socket;
  upstream: net.Socket | null;
  held: boolean;
}

/** A CONNECT must arrive within this (ms) and this many bytes, or the connection is dropped. */
const CONNECT_WITHIN_MS = 10_000;
const CONNECT_MAX_BYTES = 64 * 1024;

export class LinkProxy {
  readonly #links = new Map<string, LinkState>();
  readonly #conns = new Set<Conn>();
  /** Connection attempts per MQTT client id: arrival times (ms since the epoch). */
  readonly attempts = new Map<string, number[]>();
  #server: net.Server | null = null;
  port = 0;

  constructor(
    readonly name: string,
    private readonly upstreamPort: number,
    private readonly hostOf: HostOf,
  ) {}

  async listen(port: number): Promise<void> {
    const server = net.createServer((s) => this.#accept(s));
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen(port, '127.0.0.1', () => done());
    });
    this.#server = server;
    this.port = port;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  state(host: string): LinkState {
    return this.#links.get(host) ?? 'ok';
  }

  /** Cut or heal the link between `host` and this broker. */
  set(host: string, state: LinkState): void {
    const was = this.state(host);
    this.#links.set(host, state);
    for (const c of [...this.#conns]) {
      if (c.host !== host) continue;
      if (state === 'partition') this.#reset(c);
      else if (state === 'blackhole') this.#hold(c);
      else if (was === 'blackhole') this.#reset(c); // held streams cannot resume
    }
  }

  #reset(c: Conn): void {
    this.#conns.delete(c);
    c.client.resetAndDestroy();
    c.upstream?.resetAndDestroy();
  }

  #hold(c: Conn): void {
    c.held = true;
    c.client.unpipe();
    c.upstream?.unpipe();
    c.client.removeAllListeners('data');
    c.upstream?.removeAllListeners('data');
    c.client.on('data', () => undefined);
    c.upstream?.on('data', () => undefined);
    c.client.resume();
    c.upstream?.resume();
  }

  /** Count the attempt of `who` and say how the link of its host treats it now. */
  #admit(who: string): { host: string; state: LinkState } {
    const times = this.attempts.get(who) ?? [];
    times.push(Date.now());
    this.attempts.set(who, times);
    const host = this.hostOf(who);
    return { host, state: this.state(host) };
  }

  #accept(client: net.Socket): void {
    client.setNoDelay(true);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => client.destroy(), CONNECT_WITHIN_MS);
    client.on('error', () => undefined);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head[0] === 0x16) {
        clearTimeout(timer);
        client.off('data', onData);
        this.#acceptTls(client, head);
        return;
      }
      let id: string | null;
      try {
        id = connectClientId(head);
      } catch {
        id = '';
      }
      if (id === null && head.length < CONNECT_MAX_BYTES) return;
      clearTimeout(timer);
      client.off('data', onData);
      client.pause();
      const { host, state } = this.#admit(id || '(no CONNECT)');
      const c: Conn = { host, client, upstream: null, held: false };
      if (state === 'partition') {
        client.resetAndDestroy();
        return;
      }
      this.#conns.add(c);
      client.once('close', () => {
        this.#conns.delete(c);
        c.upstream?.destroy();
      });
      if (state === 'blackhole') {
        this.#hold(c);
        return;
      }
      const up = net.connect(this.upstreamPort, '127.0.0.1');
      c.upstream = up;
      up.setNoDelay(true);
      up.on('error', () => undefined);
      up.once('close', () => {
        if (!c.held) client.destroy();
      });
      up.once('connect', () => {
        if (c.held || client.destroyed) return;
        up.write(head);
        client.pipe(up);
        up.pipe(client);
        client.resume();
      });
    };
    client.on('data', onData);
  }

  /**
   * A TLS connection: piped both ways from the start (the server must answer the ClientHello
   * before the client shows its certificate), the client's bytes read on the way until
   * {@link tlsClientCn} finds the CN; then the link's state is applied as for a CONNECT.
   */
  #acceptTls(client: net.Socket, first: Buffer): void {
    const up = net.connect(this.upstreamPort, '127.0.0.1');
    up.setNoDelay(true);
    up.on('error', () => undefined);
    let seen = first;
    let identified = false;
    const c: Conn = { host: '(handshake)', client, upstream: up, held: false };
    const timer = setTimeout(() => {
      if (!identified) {
        client.destroy();
        up.destroy();
      }
    }, CONNECT_WITHIN_MS);
    const toUp = (d: Buffer): void => {
      if (!up.destroyed) up.write(d);
    };
    const toClient = (d: Buffer): void => {
      if (!client.destroyed) client.write(d);
    };
    const identify = (): boolean => {
      const cn = seen.length >= CONNECT_MAX_BYTES ? '' : tlsClientCn(seen);
      if (cn === null) return false;
      identified = true;
      clearTimeout(timer);
      const { host, state } = this.#admit(cn || '(no certificate)');
      c.host = host;
      if (state === 'partition') {
        client.resetAndDestroy();
        up.resetAndDestroy();
        return true;
      }
      this.#conns.add(c);
      if (state === 'blackhole') this.#hold(c);
      return true;
    };
    client.once('close', () => {
      clearTimeout(timer);
      this.#conns.delete(c);
      up.destroy();
    });
    up.once('close', () => {
      if (!c.held) client.destroy();
    });
    client.on('data', (d: Buffer) => {
      if (!identified) {
        seen = Buffer.concat([seen, d]);
        identify();
      }
      if (!c.held && !client.destroyed) toUp(d);
    });
    up.on('data', toClient);
    // Queued until the upstream connection is open.
    toUp(first);
    identify();
  }

  async close(): Promise<void> {
    for (const c of this.#conns) {
      c.client.destroy();
      c.upstream?.destroy();
    }
    this.#conns.clear();
    const s = this.#server;
    this.#server = null;
    if (s) await new Promise<void>((done) => s.close(() => done()));
  }
}
