/**
 * The chaos run's checkers. They know the contract (shared/CONTRACT.md) and
 * what the nemesis did (its ground truth: which process it killed or stopped,
 * which broker is down, which link is cut), and they look only at what
 * clients outside see: every phone's `status`, `event`, `pointers` and `ack`
 * and every call manager's `state`, read by a subscriber of each broker that
 * no fault touches, and each call manager's `GET /healthz`. Never at a log,
 * a process's memory or a publisher's return code.
 */
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { openEnvelope, type TrustedKeys } from '../../src/protocol/envelope.js';
import type { Envelope, PointersBody } from '../../src/protocol/types.js';
import { HEALTHZ_RECENT_MS, STORM_WINDOW_MS, type Bounds } from './bounds.js';

/** What the nemesis knows to be true now. */
export interface Truth {
  /** Call managers by id, with their site. */
  cms: readonly { id: string; site: string }[];
  sites: readonly string[];
  /** The process runs and is not stopped (a restarting one counts once its start finished). */
  cmRunning(id: string): boolean;
  /** The process was killed (kill -9) and is not running again yet. */
  cmKilled(id: string): boolean;
  brokerUp(site: string): boolean;
  /** `host` (`fleet` or a cmId) reaches the broker of `site`. */
  linkWhole(host: string, site: string): boolean;
  /** The call manager's own Kamailio runs and is not stopped. */
  registrarUp(id: string): boolean;
}

export interface Status {
  at: number;
  site: string;
  online: boolean;
  home: string | null;
  state: string;
  busy: boolean;
  pointers: string[];
  pointersVersion: number;
}

export interface Failure {
  invariant: string;
  at: number;
  detail: string;
}

const MAX_FAILURES = 50;
/** A /healthz poll's time-out (ms). */
const HEALTHZ_TIMEOUT_MS = 1500;
/** A killed call manager's will fires at once (unclean loss); this much time for it to arrive. */
const STATE_DEAD_MS = 10_000;

export class Judge {
  readonly statuses = new Map<string, Status>();
  readonly cmStates = new Map<string, { at: number; online: boolean }>();
  readonly failures: Failure[] = [];
  violations = 0;
  checks = 0;
  readonly #reported = new Set<string>();
  readonly #versions = new Map<string, number>();
  readonly #rebases = new Set<string>();
  readonly #verified = new Set<string>();
  readonly #observers: MqttClient[] = [];
  /** Per call manager: when it last became usable by the fleet / healthy, or null while it is not. */
  readonly #usableSince = new Map<string, number | null>();
  readonly #unusableSince = new Map<string, number | null>();
  readonly #healthySince = new Map<string, number | null>();
  #publishableSince: number | null = null;
  readonly #killedSince = new Map<string, number | null>();
  readonly #brokerUpSince = new Map<string, number | null>();
  /** Per call manager: since when its own link to its broker has been whole. */
  readonly #ownLinkSince = new Map<string, number | null>();
  /** What the observers took in, for the summary: a checker that saw nothing proves nothing. */
  readonly seen = { statuses: 0, lists: 0, states: 0, healthz: 0, moves: 0, maxPhoneAttempts: 0, maxCmAttempts: 0 };
  readonly #healthz = new Map<string, { at: number; code: number }[]>();
  readonly #fleet: Set<string>;
  /** Per call manager: since when its registrar has been down (null while up). */
  readonly #registrarDownSince = new Map<string, number | null>();
  /** Per call manager: since when it has run without a break (null while killed or stopped). */
  readonly #runningSince = new Map<string, number | null>();

  constructor(
    private readonly truth: Truth,
    private readonly bounds: Bounds,
    private readonly phones: readonly string[],
    private readonly keys: TrustedKeys,
    private readonly prefix: string,
    private readonly say: (line: string) => void,
  ) {
    this.#fleet = new Set(phones);
  }

  // ---- observing ------------------------------------------------------------

  /** Subscribe on the broker of `site` directly (not through the proxies); `tls`: the observer's certificate (an operator's under the ACL). */
  async observe(site: string, url: string, tls: Pick<IClientOptions, 'ca' | 'cert' | 'key'> = {}): Promise<void> {
    const p = this.prefix;
    const c = connect(url, { clientId: `chaos-observer-${site}-${process.pid}`, reconnectPeriod: 500, connectTimeout: 5000, ...tls });
    this.#observers.push(c);
    c.on('error', () => undefined);
    c.on('message', (topic, payload, packet) => this.#message(site, topic, payload, packet.retain));
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`observer of ${site} did not connect`)), 30_000);
      c.once('connect', () =>
        c.subscribe([`${p}/phone/+/status`, `${p}/phone/+/event`, `${p}/phone/+/pointers`, `${p}/phone/+/ack`, `${p}/cm/+/state`], { qos: 1 }, (err) => {
          clearTimeout(timer);
          if (err) fail(err);
          else done();
        }),
      );
    });
  }

  #message(site: string, topic: string, payload: Buffer, retained: boolean): void {
    const rest = topic.slice(this.prefix.length + 1).split('/');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(payload.toString()) as Record<string, unknown>;
    } catch {
      return;
    }
    const now = Date.now();
    if (rest[0] === 'cm' && rest[2] === 'state') {
      if (typeof body.online === 'boolean') {
        this.cmStates.set(`${site}|${rest[1]}`, { at: now, online: body.online });
        this.seen.states++;
      }
      return;
    }
    if (rest[0] !== 'phone') return;
    const phone = rest[1]!;
    // Only the fleet's phones are judged: the hostile phone says what it likes about itself.
    if (!this.#fleet.has(phone)) return;
    if (rest[2] === 'event' && !retained) this.#event(phone, body, now);
    else if (rest[2] === 'status') this.#status(site, phone, body, retained, now);
    else if (rest[2] === 'pointers') this.#list(phone, body as unknown as Envelope, now);
    else if (rest[2] === 'ack' && typeof body.pointers === 'object' && body.pointers !== null) this.#list(phone, body.pointers as Envelope, now);
  }

  #status(site: string, phone: string, b: Record<string, unknown>, retained: boolean, now: number): void {
    // A will ({ online: false } without a state) says a connection died, not where the phone is.
    if (b.online === false && b.state === undefined) return;
    if (retained && this.statuses.has(phone)) return;
    const st: Status = {
      at: now,
      site,
      online: b.online === true,
      home: typeof b.home === 'string' ? b.home : null,
      state: String(b.state),
      busy: b.busy === true,
      pointers: Array.isArray(b.pointers) ? b.pointers.map(String) : [],
      pointersVersion: typeof b.pointersVersion === 'number' ? b.pointersVersion : 0,
    };
    this.statuses.set(phone, st);
    this.seen.statuses++;
    // versions-bounded: never beyond the wall clock + 24 h; never down, per phone and broker.
    this.checks++;
    if (st.pointersVersion > now + this.bounds.versionAhead) this.#fail('versions-bounded', `${phone}:${st.pointersVersion}`, `${phone} reports pointersVersion ${st.pointersVersion}, more than 24 h ahead of the wall clock`);
    const key = `${phone}|${site}`;
    const had = this.#versions.get(key) ?? 0;
    if (st.pointersVersion < had && !this.#rebases.has(`${phone}|${st.pointersVersion}`)) {
      this.#fail('versions-bounded', `${phone}:${had}>${st.pointersVersion}`, `${phone} on ${site}: pointersVersion went down from ${had} to ${st.pointersVersion}`);
    }
    this.#versions.set(key, Math.max(had, st.pointersVersion));
  }

  /** lists-signed: every list on the wire for a phone verifies, is bound to that phone and names only the group. */
  #list(phone: string, env: Envelope, now: number): void {
    const id = `${phone}|${String(env.sig)}`;
    if (this.#verified.has(id)) return;
    this.#verified.add(id);
    this.seen.lists++;
    if (this.#verified.size > 50_000) this.#verified.clear();
    this.checks++;
    let body: PointersBody;
    try {
      body = JSON.parse(openEnvelope(env, this.keys).toString()) as PointersBody;
    } catch (err) {
      this.#fail('lists-signed', id, `a list for ${phone} does not verify: ${(err as Error).message}`);
      return;
    }
    const group = new Set(this.truth.cms.map((c) => c.id));
    if (body.phone !== phone) this.#fail('lists-signed', id, `a list sent to ${phone} is bound to ${JSON.stringify(body.phone)}`);
    if (!Array.isArray(body.list) || body.list.length === 0 || body.list.some((p) => !group.has(p.id))) {
      this.#fail('lists-signed', id, `a list for ${phone} holds pointers outside the group: ${JSON.stringify(body.list?.map((p) => p.id))}`);
    }
    if (body.version > now + this.bounds.versionAhead) this.#fail('versions-bounded', id, `a list for ${phone} has version ${body.version}, more than 24 h ahead of the wall clock`);
    if (typeof body.rebase === 'number') this.#rebases.add(`${phone}|${body.version}`);
  }

  /** Poll every call manager's /healthz once (time-out {@link HEALTHZ_TIMEOUT_MS}), in parallel. */
  async pollHealthz(ports: ReadonlyMap<string, number>): Promise<void> {
    await Promise.all(
      [...ports].map(async ([id, port]) => {
        let code = 0;
        try {
          const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(HEALTHZ_TIMEOUT_MS) });
          code = r.status;
          await r.body?.cancel();
        } catch {
          code = 0;
        }
        this.seen.healthz++;
        const list = this.#healthz.get(id) ?? [];
        list.push({ at: Date.now(), code });
        while (list.length > 30) list.shift();
        this.#healthz.set(id, list);
      }),
    );
  }

  // ---- ground truth over time ---------------------------------------------------

  /** Usable by the phones: runs, its broker is up, its own link and the fleet's to that broker are whole. */
  usable(id: string): boolean {
    const site = this.truth.cms.find((c) => c.id === id)?.site;
    if (site === undefined) return false;
    const t = this.truth;
    return t.cmRunning(id) && t.brokerUp(site) && t.linkWhole(id, site) && t.linkWhole('fleet', site) && t.registrarUp(id);
  }

  /** What `/healthz` 200 promises (docs/configuration.md): runs, connected to its broker, its registrar answers. */
  #healthy(id: string): boolean {
    const site = this.truth.cms.find((c) => c.id === id)!.site;
    return this.truth.cmRunning(id) && this.truth.brokerUp(site) && this.truth.linkWhole(id, site) && this.truth.registrarUp(id);
  }

  /** Bring the since-times up to date; call after every nemesis action and before every check. */
  sample(now = Date.now()): void {
    for (const { id } of this.truth.cms) {
      const u = this.usable(id);
      if (u) {
        this.#unusableSince.set(id, null);
        if ((this.#usableSince.get(id) ?? null) === null) this.#usableSince.set(id, now);
      } else {
        this.#usableSince.set(id, null);
        if ((this.#unusableSince.get(id) ?? null) === null) this.#unusableSince.set(id, now);
      }
      const site = this.truth.cms.find((c) => c.id === id)!.site;
      if (!this.truth.linkWhole(id, site)) this.#ownLinkSince.set(id, null);
      else if ((this.#ownLinkSince.get(id) ?? null) === null) this.#ownLinkSince.set(id, now);
      if (!this.truth.cmKilled(id)) this.#killedSince.set(id, null);
      else if ((this.#killedSince.get(id) ?? null) === null) this.#killedSince.set(id, now);
      if (this.truth.registrarUp(id)) this.#registrarDownSince.set(id, null);
      else if ((this.#registrarDownSince.get(id) ?? null) === null) this.#registrarDownSince.set(id, now);
      if (!this.truth.cmRunning(id)) this.#runningSince.set(id, null);
      else if ((this.#runningSince.get(id) ?? null) === null) this.#runningSince.set(id, now);
      const h = this.#healthy(id);
      if (!h) this.#healthySince.set(id, null);
      else if ((this.#healthySince.get(id) ?? null) === null) this.#healthySince.set(id, now);
    }
    for (const site of this.truth.sites) {
      if (!this.truth.brokerUp(site)) this.#brokerUpSince.set(site, null);
      else if ((this.#brokerUpSince.get(site) ?? null) === null) this.#brokerUpSince.set(site, now);
    }
    const publishable = this.truth.sites.some((s) => this.truth.brokerUp(s) && this.truth.linkWhole('fleet', s));
    if (!publishable) this.#publishableSince = null;
    else if (this.#publishableSince === null) this.#publishableSince = now;
  }

  // ---- invariants ------------------------------------------------------------------

  /** Run every continuous checker once. */
  tick(now = Date.now()): void {
    this.sample(now);
    this.#homeIsLive(now);
    this.#noStormDue = true;
    this.#healthzLive(now);
    this.#stateLive(now);
    this.#registrarSeen(now);
  }

  /**
   * registrar-seen: a call manager whose own registrar has been silent for the SIP detection
   * bound (`probeMs` × (`missLimit` + 1) + slack) while it ran says so to everyone: `/healthz`
   * does not answer 200 (to no poll sent after the bound) and its state
   * on its broker is not `online: true` (the signed offline state it publishes).
   */
  #registrarSeen(now: number): void {
    for (const { id, site } of this.truth.cms) {
      const down = this.#registrarDownSince.get(id) ?? null;
      const running = this.#runningSince.get(id) ?? null;
      if (down === null || running === null) continue;
      const from = Math.max(down, running);
      if (now - from < this.bounds.sipDetect) continue;
      this.checks++;
      // Only polls sent after the bound (a poll is recorded when answered, within its 1.5 s time-out).
      const recent = (this.#healthz.get(id) ?? []).filter((h) => h.at > now - HEALTHZ_RECENT_MS && h.at > from + this.bounds.sipDetect + HEALTHZ_TIMEOUT_MS);
      if (recent.some((h) => h.code === 200)) {
        this.#fail('registrar-seen', `${id}|healthz|${down}`, `${id}'s registrar down for ${now - down} ms (bound ${this.bounds.sipDetect} ms) but /healthz answered ${recent.map((h) => h.code || 'nothing').join(',')} in the last ${HEALTHZ_RECENT_MS} ms`);
      }
      const brokerSince = this.#brokerUpSince.get(site) ?? null;
      const linkSince = this.#ownLinkSince.get(id) ?? null;
      const st = this.cmStates.get(`${site}|${id}`);
      // Only while it could tell its broker: up and linked since before the bound ran out.
      if (brokerSince !== null && linkSince !== null && now - Math.max(from, brokerSince, linkSince) > this.bounds.sipDetect && st?.online === true && st.at < now - this.bounds.sipDetect) {
        this.#fail('registrar-seen', `${id}|state|${down}`, `${id}'s registrar down for ${now - down} ms (bound ${this.bounds.sipDetect} ms) but its state on ${site} says online (since ${now - st.at} ms)`);
      }
    }
  }

  /**
   * no-forged-effect (as src/sim/invariants.ts judges it): a phone does not leave, for a
   * failure (`cm-offline`, `keepalive-loss`, `broker-lost`), a call manager that was usable
   * by it for longer than {@link Bounds.liveWindow} before the phone decided (the event's
   * arrival less its `rehomeMs`). What the hostile phone publishes must not make a live home
   * look dead.
   */
  #event(phone: string, ev: Record<string, unknown>, now: number): void {
    if (ev.type !== 'rehomed' || typeof ev.from !== 'string') return;
    if (ev.reason !== 'cm-offline' && ev.reason !== 'keepalive-loss' && ev.reason !== 'broker-lost') return;
    this.seen.moves++;
    this.checks++;
    this.sample(now);
    const since = this.#usableSince.get(ev.from) ?? null;
    const decided = now - (typeof ev.rehomeMs === 'number' ? ev.rehomeMs : 0);
    if (since !== null && decided - since > this.bounds.liveWindow) {
      this.#fail('no-forged-effect', `${phone}|${ev.from}|${since}`, `${phone} left ${ev.from} (${String(ev.reason)}) though ${ev.from} was usable for ${Math.round(decided - since)} ms before it decided (bound ${this.bounds.liveWindow} ms)`);
    }
  }

  /**
   * state-live: a call manager's retained `state` on its own broker tells the truth, as its
   * will promises: killed (an unclean loss: the will fires at once) for {@link STATE_DEAD_MS}
   * while that broker stayed up and its link to it whole ⇒ not `online: true`; up and linked for the healthz bound ⇒
   * `online: true` (a call manager whose will fired while it lived says so again).
   */
  #stateLive(now: number): void {
    for (const { id, site } of this.truth.cms) {
      const st = this.cmStates.get(`${site}|${id}`);
      const killed = this.#killedSince.get(id) ?? null;
      const brokerSince = this.#brokerUpSince.get(site) ?? null;
      const linkSince = this.#ownLinkSince.get(id) ?? null;
      // Only while its broker saw the connection die: not behind a black hole (that broker learns at 1.5 × keep-alive).
      if (killed !== null && brokerSince !== null && brokerSince < killed && linkSince !== null && linkSince < killed && now - killed > STATE_DEAD_MS) {
        this.checks++;
        if (st?.online === true) this.#fail('state-live', `${id}|dead|${killed}`, `${id} killed ${now - killed} ms ago, its broker up all along, but its state still says online (since ${now - st.at} ms)`);
      }
      const healthy = this.#healthySince.get(id) ?? null;
      if (healthy !== null && brokerSince !== null && now - Math.max(healthy, brokerSince) > this.bounds.healthzUp) {
        this.checks++;
        if (st === undefined || st.online !== true) this.#fail('state-live', `${id}|live|${healthy}`, `${id} up and linked for ${now - healthy} ms but its state on broker ${site} says ${st === undefined ? 'nothing' : `online: ${st.online}`}`);
      }
    }
  }

  #noStormDue = false;

  /**
   * home-is-live: no phone's status stays homed on a call manager that is
   * killed, stopped, cut from its broker, whose broker is down or that the
   * fleet cannot reach, past the phone's detection bound — counted from when
   * that began, and from when the phone could publish anywhere at all.
   */
  #homeIsLive(now: number): void {
    const pubSince = this.#publishableSince;
    for (const phone of this.phones) {
      const st = this.statuses.get(phone);
      if (st === undefined || !st.online || st.home === null || (st.state !== 'homed' && st.state !== 'moving')) continue;
      this.checks++;
      const since = this.#unusableSince.get(st.home) ?? null;
      if (since === null || pubSince === null) continue;
      // A silent registrar is first found by the call manager's probe, then by the phones.
      const sip = this.truth.registrarUp(st.home) ? 0 : this.bounds.sipDetect;
      const deadline = Math.max(since + this.bounds.detect + sip, pubSince + this.bounds.reconnect);
      if (now > deadline && st.at < now - this.bounds.detect / 2) {
        this.#fail('home-is-live', `${phone}|${st.home}|${since}`, `${phone} still homed on ${st.home} ${now - since} ms after it became unusable (bound ${this.bounds.detect + sip} ms; last status ${now - st.at} ms ago via ${st.site})`);
      }
    }
  }

  /** healthz: a call manager running and linked to its broker for the bound answers 200 (contract: 200 while connected to its broker). */
  #healthzLive(now: number): void {
    for (const { id } of this.truth.cms) {
      const since = this.#healthySince.get(id) ?? null;
      if (since === null || now - since < this.bounds.healthzUp) continue;
      this.checks++;
      const recent = (this.#healthz.get(id) ?? []).filter((h) => h.at > now - HEALTHZ_RECENT_MS && h.at > since + this.bounds.healthzUp - HEALTHZ_RECENT_MS);
      if (recent.length >= 3 && !recent.some((h) => h.code === 200)) {
        this.#fail('healthz', `${id}|${since}`, `${id} up and linked for ${now - since} ms but /healthz answered ${recent.map((h) => h.code || 'nothing').join(',')} in the last ${HEALTHZ_RECENT_MS} ms`);
      }
    }
  }

  /**
   * no-storm: connection attempts (the proxies count every one, refused ones
   * included) per client within {@link STORM_WINDOW_MS} stay within what the
   * agent's backoff and jitter (phones) or the fixed reconnect period (call
   * managers) allow.
   */
  noStorm(site: string, attempts: ReadonlyMap<string, number[]>, now = Date.now()): void {
    if (!this.#noStormDue) return;
    for (const [clientId, times] of attempts) {
      while (times.length > 0 && times[0]! < now - 5 * STORM_WINDOW_MS) times.shift();
      this.checks++;
      const isCm = clientId.startsWith('ipphone-cm-') || this.truth.cms.some((c) => c.id === clientId);
      const bound = isCm ? this.bounds.cmAttempts : this.bounds.phoneAttempts;
      // The densest window ending at each attempt.
      let j = 0;
      for (let i = 0; i < times.length; i++) {
        while (times[i]! - times[j]! > STORM_WINDOW_MS) j++;
        if (isCm) this.seen.maxCmAttempts = Math.max(this.seen.maxCmAttempts, i - j + 1);
        else this.seen.maxPhoneAttempts = Math.max(this.seen.maxPhoneAttempts, i - j + 1);
        if (i - j + 1 > bound) {
          this.#fail('no-storm', `${clientId}|${site}|${Math.floor(times[j]! / STORM_WINDOW_MS)}`, `${clientId}: ${i - j + 1} connection attempts to broker ${site} within ${STORM_WINDOW_MS} ms (bound ${bound})`);
          break;
        }
      }
    }
  }

  endTick(): void {
    this.#noStormDue = false;
  }

  /** service-when-possible, once: phones not homed now (empty when all are). */
  notHomed(): string[] {
    return this.phones.filter((p) => {
      this.checks++;
      const st = this.statuses.get(p);
      return st === undefined || !st.online || st.state !== 'homed' || st.home === null;
    });
  }

  /**
   * fallback, once: idle phones not on their highest healthy pointer (the
   * first of the list their status reports whose call manager is usable).
   */
  notFallenBack(): string[] {
    this.sample();
    return this.phones.filter((p) => {
      this.checks++;
      const st = this.statuses.get(p);
      if (st === undefined) return true;
      if (st.busy) return false;
      const want = st.pointers.find((id) => this.usable(id));
      return !(st.online && st.state === 'homed' && st.home === want);
    });
  }

  describe(phones: readonly string[]): string {
    return phones
      .slice(0, 8)
      .map((p) => {
        const s = this.statuses.get(p);
        return s ? `${p}:${s.state}@${s.home ?? '-'}[${s.pointers.join(',')}]` : `${p}:no status`;
      })
      .join(' ') + (phones.length > 8 ? ` … (${phones.length})` : '');
  }

  fail(invariant: string, key: string, detail: string): void {
    this.#fail(invariant, key, detail);
  }

  #fail(invariant: string, key: string, detail: string): void {
    const k = `${invariant}|${key}`;
    if (this.#reported.has(k)) return;
    this.#reported.add(k);
    this.violations++;
    const f = { invariant, at: Date.now(), detail };
    if (this.failures.length < MAX_FAILURES) this.failures.push(f);
    this.say(`violation ${invariant}: ${detail}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.#observers.map((c) => c.endAsync(true)));
  }
}
