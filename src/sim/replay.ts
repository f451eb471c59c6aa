/**
 * The hostile phone replays re-provisioning (issue 16, `hostile-phone`): the
 * most dangerous genuine messages to replay are the operator's rebases (a
 * signed pointers body naming the version the phone held, `rebase`, that lets
 * the version go DOWN) and its configs that set `pointers` (a list taken at
 * the held version + 1). A rebase replayed after the phone moved on could
 * take its version down again and restore an old list; a pointer-setting
 * config replayed could reinstate an old list.
 *
 * {@link HostileReprovision} records them where the identity `p-6666` can read
 * them (a tap on what the brokers accept, filtered by the broker's ACL, as
 * hostile.ts reads states: under the printed ACL only its own phone's topics —
 * so nothing of another phone's; on an open broker every phone's) from the
 * start of the run, and while the hostile phone is active replays them, on a
 * fork of its own (`hostile-reprov`, so every other draw stays as it was): on
 * the same phone's topic (later: after the phone moved on to another list, a
 * higher version — or the same version reached again — and, with a wall clock
 * stepped ahead, after the rebase's `expires`), on another phone's (bound to
 * someone else), on its own, retained or not, over every broker it holds a
 * connection to. The checkers judge the effect from the phones' state
 * (invariants.ts: a rebase justifies a held version going down once, not again
 * after the phone moved on; a config version never goes down; a list is one
 * somebody signed), never from what the publisher was told.
 *
 * The plant `replayable-rebase` ({@link plantReplayableRebase}) proves they can
 * fail: the operator rebases every phone at 30 s and pushes it a plain list at
 * 40 s (it moves on), the hostile phone replays from 45 s, and once in the run
 * the phone that a replayed rebase reaches forgets its checks (the world hands
 * it the message as if it still held the version the rebase names and had
 * taken no rebase): it takes the replay, its version goes down a second time.
 */
import type { Conn, Net } from './broker.js';
import { HOSTILE_ID, type HostilePhone } from './hostile.js';
import { PREFIX, type Topology } from './group.js';
import type { PhoneHost } from './hosts.js';
import type { Operator } from './operator.js';
import type { Rng } from './rng.js';
import type { World } from './world.js';
import { WhileHostile } from './while-hostile.js';

/** A genuine re-provisioning message the hostile phone read. */
export interface Recorded {
  kind: 'rebase' | 'config-pointers';
  phone: string;
  topic: string;
  payload: Buffer;
  /** When it was read (sim ms). */
  at: number;
}

const REPROV_TOPIC = /^ipphone\/v1\/phone\/([^/]+)\/(pointers|config)$/;

/** The body of a signed envelope, unverified (the hostile phone reads, it does not verify). */
function bodyOf(payload: Buffer): Record<string, unknown> | null {
  try {
    const o = JSON.parse(payload.toString('utf8')) as { body?: unknown };
    if (typeof o.body !== 'string') return null;
    const b = JSON.parse(Buffer.from(o.body, 'base64').toString('utf8')) as unknown;
    return typeof b === 'object' && b !== null ? (b as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export class HostileReprovision extends WhileHostile {
  readonly #recorded: Recorded[] = [];
  /** Replays published (figures, tests). */
  replayed = 0;

  constructor(
    world: World,
    readonly net: Net,
    hostile: HostilePhone,
    readonly topo: Topology,
    rng: Rng,
  ) {
    super(world, hostile, rng);
    // A phone of the fleet before it turned: it reads from the start of the run what its ACL lets it (no draws).
    net.observers.push((b, from, topic, payload) => {
      const m = REPROV_TOPIC.exec(topic);
      if (m === null || from === null || from.identity === HOSTILE_ID || !b.acl.canRead(HOSTILE_ID, topic)) return;
      const body = bodyOf(payload);
      if (body === null) return;
      const kind = m[2] === 'pointers' ? (typeof body.rebase === 'number' ? 'rebase' : null) : Array.isArray((body.config as { pointers?: unknown } | undefined)?.pointers) ? 'config-pointers' : null;
      if (kind === null || this.#recorded.some((x) => x.payload.equals(payload))) return;
      this.#recorded.push({ kind, phone: m[1]!, topic, payload, at: world.now });
    });
  }

  /** What it read so far. */
  get recorded(): readonly Recorded[] {
    return this.#recorded;
  }

  /** One replay (when it read anything), while the hostile phone is active (WhileHostile). */
  protected act(): number {
    const r = this.rng;
    if (this.#recorded.length > 0) {
      const m = r.pick(this.#recorded);
      // Mostly on its own phone's topic (the phone has moved on since), else bound to someone else, or its own.
      const where = r.int(0, 9);
      const topic = where < 6 ? m.topic : where < 9 ? `${PREFIX}/phone/${r.pick(this.topo.phones)}/${m.kind === 'rebase' ? 'pointers' : 'config'}` : `${PREFIX}/phone/${HOSTILE_ID}/${m.kind === 'rebase' ? 'pointers' : 'config'}`;
      const retain = r.chance(0.3);
      this.replayed++;
      this.hostile.sendAll(topic, m.payload, retain);
    }
    return r.int(300, 2500);
  }
}

/**
 * The plant `replayable-rebase`: a world in which a replayed rebase is taken.
 * At 30 s the operator rebases every phone (`--version` 60 s below what it
 * holds), at 40 s it pushes each a plain list of the configured pointers (the
 * phone moves on), from 45 s for 40 s the hostile phone is active and replays
 * what it read. The first rebase delivered to a phone that no longer holds the
 * version it names — a replay — is handed to that phone as if it still held it
 * and had taken no rebase: the phone forgets its checks for that one message
 * (the world sets the version its check reads and hides the rebases it took,
 * in the same instant; put back after, the version too if the phone refuses
 * it anyway). On an open broker only: the printed ACL lets the
 * hostile phone write no other phone's topic.
 */
export function plantReplayableRebase(world: World, net: Net, phones: Map<string, PhoneHost>, operator: Operator, hostile: HostilePhone, replay: HostileReprovision, configured: () => { id: string; broker: string; services: string }[]): void {
  world.at(30_000, () => {
    for (const id of phones.keys()) operator.sendNow(id, { kind: 'rebase', list: configured(), below: 60_000 });
  });
  world.at(40_000, () => {
    for (const id of phones.keys()) operator.sendNow(id, { kind: 'pointers', list: configured() });
  });

  world.at(45_000, () => {
    hostile.activate(world.now + 40_000);
    replay.kick();
  });
  let forgot = false;
  const wrapped = new WeakSet<Conn>();
  const deliver = net.deliver.bind(net);
  net.deliver = (c: Conn, topic: string, payload: Buffer, retain: boolean): void => {
    const p = phones.get(c.identity);
    if (p !== undefined && !wrapped.has(c)) {
      wrapped.add(c);
      const sink = c.sink;
      (c as { sink: Conn['sink'] }).sink = {
        message: (t, pl, r) => {
          const agent = p.agent;
          const body = forgot || agent === null || t !== `${PREFIX}/phone/${p.phoneId}/pointers` ? null : bodyOf(pl);
          if (agent !== null && body !== null && typeof body.rebase === 'number' && body.phone === p.phoneId && agent.state.listVersion !== body.rebase && agent.state.listVersion !== body.version) {
            const st = agent.state as { listVersion: number };
            const held = st.listVersion;
            forgot = true;
            world.trace(`plant: ${p.phoneId} forgets its held-version check (holds v${held}, the rebase names v${body.rebase})`);
            // …and the rebases it took (agent-messages.ts `rebasesTaken`, kept across restarts), for this message.
            const taken = (agent as unknown as { rebasesTaken: Map<string, unknown> }).rebasesTaken;
            const kept = new Map(taken);
            taken.clear();
            st.listVersion = body.rebase;
            sink.message(t, pl, r);
            for (const [k, v] of kept) if (!taken.has(k)) taken.set(k, v);
            // Refused anyway (expired, …): the phone holds what it held.
            if ((agent.state as unknown) === st && st.listVersion === body.rebase) st.listVersion = held;
            return;
          }
          sink.message(t, pl, r);
        },
        closed: () => sink.closed(),
      };
    }
    deliver(c, topic, payload, retain);
  };
}
