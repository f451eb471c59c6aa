/**
 * Generator child of bench/absorb.ts: a slice of the phones of the absorb
 * benchmark as raw MQTT 3.1.1 clients — several TCP connections, each
 * carrying many phones, every packet encoded before it is needed — so that
 * neither the generator nor an agent core is what the figure measures.
 *
 *   node --import tsx bench/absorb-gen.ts     (forked; commands over IPC)
 *
 * Each phone subscribes to its own `P/phone/{id}/ack` and `P/phone/{id}/pointers`
 * (QoS 0), as an agent does (the agent takes `pointers` at QoS 1; at QoS 0 the
 * broker's per-connection in-flight window of 20 — which a real phone, alone on
 * its connection, never meets — does not pace the bench). Connection 0 also
 * subscribes to `P/cm/{from}/state` and to the bench's trigger topic.
 *
 * Commands (IPC, one at a time; every answer is `{ ev, ... }`):
 * - `setup`: connect and subscribe → `ready`.
 * - `home`: keep-alives to the home with version 0 until every phone has its
 *   list (resent each `intervalMs` to the ones not yet acked) → `homed` with
 *   the versions the phones now hold.
 * - `status`: each phone's retained status, homed on the home → `status-sent`.
 * - `ceiling`: at the next trigger message, one publish per phone on its own ack
 *   topic (keep-alive sized); counts arrivals → `ceiling` with times.
 * - `failover`: at `P/cm/{from}/state` `online:false` (the will), every phone's
 *   keep-alive to the backup (prev = the failed home), resent each `intervalMs`
 *   to phones not yet done; a phone is done when it has an ack of the backup and
 *   a list (in the ack or pushed). Messages are only stored while it runs; after
 *   `windowMs` or when every phone is done they are parsed and checked (the ack
 *   is the backup's, the list names this phone, demotes the failed home to last,
 *   keeps every group member, is above the held version; a sample of signatures
 *   verified) → `failover` with per-phone times.
 *
 * Times are absolute ms (`performance.timeOrigin + performance.now()`), so the
 * parent can put the children's clocks on one axis.
 */
import { createPublicKey, verify as verifySig } from 'node:crypto';
import { connect as tcp, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import mqttPacket from 'mqtt-packet';
import { splitFrames } from './raw-counter.js';

export interface GenSetup {
  cmd: 'setup';
  url: string;
  prefix: string;
  /** Phone ids of this child. */
  phones: string[];
  connections: number;
  /** The trigger topic of the ceiling burst. */
  trigger: string;
  /** The home (cm-a) whose will starts the failover. */
  from: string;
  publicPem: string;
  /** Group member ids in config order (every list must hold each of them). */
  group: string[];
}
export type GenCommand =
  | GenSetup
  | { cmd: 'home'; cm: string; intervalMs: number; timeoutMs: number }
  | { cmd: 'status'; cm: string }
  | { cmd: 'ceiling'; timeoutMs: number }
  | { cmd: 'failover'; to: string; intervalMs: number; windowMs: number; verifySample: number }
  | { cmd: 'close' };

export interface FailoverReport {
  ev: 'failover';
  /** When this child saw the will (abs ms), NaN if never. */
  willAt: number;
  /** When it finished writing its first round of keep-alives. */
  sentAt: number;
  /** Per phone: abs ms when it was done (ack + demoting list), NaN when never. */
  doneAt: number[];
  /** Per phone: abs ms of the backup's first ack. */
  ackAt: number[];
  acks: number;
  pushes: number;
  /** Acks that carried the list themselves. */
  listsInAck: number;
  /** Keep-alives written after the first round (phones not done at an interval). */
  resent: number;
  /** Phones whose messages failed a check, with the first reasons. */
  bad: number;
  badReasons: string[];
  verified: number;
  versions: number[];
}

const now = (): number => performance.timeOrigin + performance.now();
const send = (m: object): void => void process.send!(m);

/** One raw connection: frames out, PUBLISH packets in (topic, payload as Buffer, arrival time). */
class Conn {
  #rest: Buffer = Buffer.alloc(0);
  #subacks = 0;
  #wantSubacks = 0;
  #onSubacks: (() => void) | undefined;
  onPublish: (topic: string, payload: Buffer, at: number) => void = () => undefined;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#feed(chunk));
  }

  static open(url: string, clientId: string): Promise<Conn> {
    const u = new URL(url);
    return new Promise((done, fail) => {
      const socket = tcp({ host: u.hostname, port: Number(u.port || 1883) });
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.off('error', fail);
        socket.on('error', (err) => {
          process.stderr.write(`absorb-gen ${clientId}: ${err.message}\n`);
          process.exit(1);
        });
        socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 }));
        done(new Conn(socket));
      });
    });
  }

  /** Subscribe to `topics` at QoS 0, 200 filters a packet; resolves when every SUBACK is in. */
  subscribe(topics: readonly string[]): Promise<void> {
    const packets: Buffer[] = [];
    for (let i = 0; i < topics.length; i += 200) {
      const subscriptions = topics.slice(i, i + 200).map((topic) => ({ topic, qos: 0 as const }));
      packets.push(mqttPacket.generate({ cmd: 'subscribe', messageId: (packets.length % 65_000) + 1, subscriptions } as mqttPacket.ISubscribePacket));
    }
    this.#wantSubacks += packets.length;
    const p = new Promise<void>((done) => {
      this.#onSubacks = done;
    });
    this.socket.write(Buffer.concat(packets));
    return p;
  }

  write(b: Buffer): void {
    this.socket.write(b);
  }

  #feed(chunk: Buffer): void {
    const at = now();
    this.#rest = splitFrames(this.#rest, chunk, (head, buf, i, end) => {
      const type = head >> 4;
      if (type === 3) {
        const tlen = buf.readUInt16BE(i);
        const topic = buf.toString('utf8', i + 2, i + 2 + tlen);
        const qos = (head >> 1) & 3;
        const start = i + 2 + tlen + (qos > 0 ? 2 : 0);
        // A copy: the chunk is reused by nothing, but a slice would pin it whole.
        this.onPublish(topic, Buffer.from(buf.subarray(start, end)), at);
      } else if (type === 9) {
        if (++this.#subacks === this.#wantSubacks) this.#onSubacks?.();
      }
    });
  }
}

const publish = (topic: string, payload: string, retain = false): Buffer => mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, dup: false, retain });

let setup: GenSetup;
let conns: Conn[] = [];
/** Phone index → its connection. */
let connOf: number[] = [];
/** Topic → phone index, for ack and pointers topics. */
const ackIdx = new Map<string, number>();
const ptrIdx = new Map<string, number>();
/** Version each phone holds (from its home's list). */
let held: number[] = [];
let handler: (topic: string, payload: Buffer, at: number) => void = () => undefined;

async function doSetup(s: GenSetup): Promise<void> {
  setup = s;
  const n = s.phones.length;
  const k = Math.max(1, Math.min(s.connections, n));
  conns = await Promise.all(Array.from({ length: k }, (_, c) => Conn.open(s.url, `absorb-${process.pid}-${c}`)));
  connOf = s.phones.map((_, i) => i % k);
  held = s.phones.map(() => 0);
  s.phones.forEach((id, i) => {
    ackIdx.set(`${s.prefix}/phone/${id}/ack`, i);
    ptrIdx.set(`${s.prefix}/phone/${id}/pointers`, i);
  });
  for (const c of conns) c.onPublish = (t, p, at) => handler(t, p, at);
  await Promise.all(
    conns.map((c, ci) => {
      const topics = s.phones.flatMap((id, i) => (connOf[i] === ci ? [`${s.prefix}/phone/${id}/ack`, `${s.prefix}/phone/${id}/pointers`] : []));
      if (ci === 0) topics.push(`${s.prefix}/cm/${s.from}/state`, s.trigger);
      return c.subscribe(topics);
    }),
  );
  send({ ev: 'ready' });
}

/** One buffer per connection: each phone's frame from `frame(i)`, for phones in `which`. */
function perConn(frame: (i: number) => Buffer, which: (i: number) => boolean = () => true): Buffer[] {
  const parts: Buffer[][] = conns.map(() => []);
  for (let i = 0; i < setup.phones.length; i++) if (which(i)) parts[connOf[i]!]!.push(frame(i));
  return parts.map((p) => Buffer.concat(p));
}

/** The phones' keep-alive interval (ms), as their keep-alives declare it; set by `failover`. */
let phoneIntervalMs = 5000;
const keepalive = (i: number, cm: string, version: number, prev: string | null, seq: number): Buffer =>
  publish(`${setup.prefix}/cm/${cm}/keepalive`, `{"phone":${JSON.stringify(setup.phones[i])},"seq":${seq},"pointersVersion":${version},"busy":false,"probe":false,"prev":${JSON.stringify(prev)},"intervalMs":${phoneIntervalMs}}`);

function versionOf(payload: Buffer): number {
  const m = /"pointersVersion":(\d+)\}\s*$/.exec(payload.toString('utf8'));
  return m === null ? NaN : Number(m[1]);
}

async function doHome(cm: string, intervalMs: number, timeoutMs: number): Promise<void> {
  const n = setup.phones.length;
  const got = new Array<boolean>(n).fill(false);
  let left = n;
  handler = (topic, payload) => {
    const i = ackIdx.get(topic);
    if (i === undefined || got[i]) return;
    const v = versionOf(payload);
    if (!payload.includes('"pointers":')) return;
    got[i] = true;
    held[i] = v;
    left--;
  };
  const end = Date.now() + timeoutMs;
  let seq = 1;
  while (left > 0 && Date.now() < end) {
    const bufs = perConn((i) => keepalive(i, cm, 0, null, seq), (i) => !got[i]);
    bufs.forEach((b, c) => b.length > 0 && conns[c]!.write(b));
    seq++;
    const until = Date.now() + intervalMs;
    while (left > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }
  handler = () => undefined;
  send({ ev: 'homed', left, versions: [...new Set(held)] });
}

function doStatus(cm: string): void {
  const bufs = perConn((i) =>
    publish(`${setup.prefix}/phone/${setup.phones[i]}/status`, JSON.stringify({ online: true, home: cm, services: cm, state: 'homed', pointersVersion: held[i], configVersion: 0, rehomes: 0 }), true),
  );
  bufs.forEach((b, c) => conns[c]!.write(b));
  // A PINGREQ round trip on each connection: the broker has taken everything written before it.
  let waiting = conns.length;
  const old = conns.map((c) => c.socket.listeners('data'));
  void old;
  const done = (): void => {
    if (--waiting === 0) send({ ev: 'status-sent' });
  };
  for (const c of conns) {
    const onData = (chunk: Buffer): void => {
      if (chunk.includes(Buffer.from([0xd0, 0x00]))) {
        c.socket.off('data', onData);
        done();
      }
    };
    c.socket.on('data', onData);
    c.write(mqttPacket.generate({ cmd: 'pingreq' }));
  }
}

function doCeiling(timeoutMs: number): void {
  const n = setup.phones.length;
  // Same size as a keep-alive; each phone's message on its own ack topic, as an ack goes.
  const bufs = perConn((i) => publish(`${setup.prefix}/phone/${setup.phones[i]}/ack`, `{"phone":${JSON.stringify(setup.phones[i])},"seq":1,"pointersVersion":${held[i]},"busy":false,"probe":false,"prev":"${setup.from}","intervalMs":1000}`));
  let triggerAt = NaN;
  let sentAt = NaN;
  let last = NaN;
  let count = 0;
  const seen = new Array<boolean>(n).fill(false);
  let timer: NodeJS.Timeout | undefined;
  const finish = (): void => {
    clearTimeout(timer);
    handler = () => undefined;
    send({ ev: 'ceiling', triggerAt, sentAt, lastAt: last, count });
  };
  handler = (topic, _payload, at) => {
    if (topic === setup.trigger) {
      if (!Number.isNaN(triggerAt)) return;
      triggerAt = at;
      bufs.forEach((b, c) => conns[c]!.write(b));
      sentAt = now();
      timer = setTimeout(finish, timeoutMs);
      return;
    }
    const i = ackIdx.get(topic);
    if (i === undefined || seen[i]) return;
    seen[i] = true;
    last = at;
    if (++count === n) finish();
  };
}

function doFailover(to: string, intervalMs: number, windowMs: number, verifySample: number): void {
  const n = setup.phones.length;
  phoneIntervalMs = intervalMs;
  const stateTopic = `${setup.prefix}/cm/${setup.from}/state`;
  const first = perConn((i) => keepalive(i, to, held[i]!, setup.from, 1000));
  const ackAt = new Array<number>(n).fill(NaN);
  const listAt = new Array<number>(n).fill(NaN);
  const ackMsg: (Buffer | undefined)[] = new Array(n);
  const listMsg: (Buffer | undefined)[] = new Array(n);
  let acks = 0;
  let pushes = 0;
  let done = 0;
  let willAt = NaN;
  let sentAt = NaN;
  let resent = 0;
  let interval: NodeJS.Timeout | undefined;
  let window: NodeJS.Timeout | undefined;
  const isDone = (i: number): boolean => !Number.isNaN(ackAt[i]!) && !Number.isNaN(listAt[i]!);
  const finish = (): void => {
    clearInterval(interval);
    clearTimeout(window);
    handler = () => undefined;
    check();
  };
  handler = (topic, payload, at) => {
    if (topic === stateTopic) {
      if (!Number.isNaN(willAt) || !payload.includes('"online":false')) return;
      willAt = at;
      first.forEach((b, c) => conns[c]!.write(b));
      sentAt = now();
      let seq = 1001;
      interval = setInterval(() => {
        const s = seq++;
        const bufs = perConn((i) => keepalive(i, to, held[i]!, setup.from, s), (i) => !isDone(i));
        bufs.forEach((b, c) => {
          if (b.length > 0) conns[c]!.write(b);
        });
        resent += setup.phones.filter((_, i) => !isDone(i)).length;
      }, intervalMs);
      window = setTimeout(finish, windowMs);
      return;
    }
    let i = ackIdx.get(topic);
    if (i !== undefined) {
      acks++;
      // Only the backup's acks count; the old home is dead (anything else is checked below).
      if (Number.isNaN(ackAt[i]!)) {
        ackAt[i] = at;
        ackMsg[i] = payload;
        if (Number.isNaN(listAt[i]!) && payload.includes('"pointers":{')) {
          listAt[i] = at;
          listMsg[i] = payload;
        }
        if (isDone(i) && ++done === n) finish();
      }
      return;
    }
    i = ptrIdx.get(topic);
    if (i !== undefined) {
      pushes++;
      if (Number.isNaN(listAt[i]!)) {
        listAt[i] = at;
        listMsg[i] = payload;
        if (isDone(i) && ++done === n) finish();
      }
    }
  };

  const check = (): void => {
    const key = createPublicKey(setup.publicPem);
    const badReasons: string[] = [];
    let bad = 0;
    let verified = 0;
    let listsInAck = 0;
    const versions = new Set<number>();
    const doneAt = new Array<number>(n).fill(NaN);
    const step = Math.max(1, Math.floor(n / Math.max(1, verifySample)));
    for (let i = 0; i < n; i++) {
      if (!isDone(i)) continue;
      const reason = judge(i);
      if (reason !== undefined) {
        bad++;
        if (badReasons.length < 5) badReasons.push(`${setup.phones[i]}: ${reason}`);
        continue;
      }
      doneAt[i] = Math.max(ackAt[i]!, listAt[i]!);
    }
    function judge(i: number): string | undefined {
      const phone = setup.phones[i]!;
      let ack: { cm?: unknown; pointers?: unknown; pointersVersion?: unknown };
      try {
        ack = JSON.parse(ackMsg[i]!.toString('utf8')) as typeof ack;
      } catch {
        return 'ack is not JSON';
      }
      if (ack.cm !== to) return `ack from ${String(ack.cm)}`;
      let env: { kid?: unknown; body?: unknown; sig?: unknown };
      try {
        const o = JSON.parse(listMsg[i]!.toString('utf8')) as Record<string, unknown>;
        env = (o.body !== undefined ? o : o.pointers) as typeof env;
        if (o.body === undefined) listsInAck++;
      } catch {
        return 'list is not JSON';
      }
      if (typeof env?.body !== 'string' || typeof env.sig !== 'string') return 'no signed envelope';
      const bodyBytes = Buffer.from(env.body, 'base64');
      let body: { version?: unknown; phone?: unknown; list?: unknown; expires?: unknown; owns?: unknown; reason?: unknown };
      try {
        body = JSON.parse(bodyBytes.toString('utf8')) as typeof body;
      } catch {
        return 'body is not JSON';
      }
      if (body.phone !== phone) return `list names ${String(body.phone)}`;
      if (typeof body.version !== 'number' || body.version <= held[i]!) return `version ${String(body.version)} not above the held ${held[i]}`;
      if (ack.pointersVersion !== body.version) return `ack version ${String(ack.pointersVersion)}, list version ${body.version}`;
      versions.add(body.version);
      if (!Array.isArray(body.list)) return 'no list';
      const ids = (body.list as { id?: unknown }[]).map((p) => p.id);
      if (ids[0] === setup.from) return `list puts ${setup.from} first`;
      if (ids[ids.length - 1] !== setup.from) return `${setup.from} not last in [${ids.join(',')}]`;
      if (setup.group.some((g) => !ids.includes(g))) return `list [${ids.join(',')}] lacks a member`;
      if (!Array.isArray(body.owns) || setup.group.some((g) => !(body.owns as unknown[]).includes(g))) return 'owns does not name the group';
      if (typeof body.expires !== 'number' || body.expires < Date.now() || body.expires > Date.now() + 24 * 3600_000 + 60_000) return `expires ${String(body.expires)}`;
      if (i % step === 0) {
        if (!verifySig(null, bodyBytes, key, Buffer.from(env.sig, 'base64'))) return 'bad signature';
        verified++;
      }
      return undefined;
    }
    const report: FailoverReport = { ev: 'failover', willAt, sentAt, doneAt, ackAt, acks, pushes, listsInAck, resent, bad, badReasons, verified, versions: [...versions] };
    send(report);
  };
}

process.on('message', (m: GenCommand) => {
  const run = async (): Promise<void> => {
    if (m.cmd === 'setup') await doSetup(m);
    else if (m.cmd === 'home') await doHome(m.cm, m.intervalMs, m.timeoutMs);
    else if (m.cmd === 'status') doStatus(m.cm);
    else if (m.cmd === 'ceiling') doCeiling(m.timeoutMs);
    else if (m.cmd === 'failover') doFailover(m.to, m.intervalMs, m.windowMs, m.verifySample);
    else if (m.cmd === 'close') {
      for (const c of conns) c.socket.end(mqttPacket.generate({ cmd: 'disconnect' }));
      setTimeout(() => process.exit(0), 100);
    }
  };
  run().catch((err: unknown) => {
    process.stderr.write(`absorb-gen: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));
