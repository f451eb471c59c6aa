import type { CmConfig } from '../config/cm-config.js';
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { withNoDelay } from '../lib/mqtt-nodelay.js';
import { topics, type Topics } from '../protocol/topics.js';
import type { Pointer } from '../protocol/types.js';
import { cleanPointer } from '../protocol/pointers.js';
import { connect } from 'mqtt';
import { CmHttp } from './cm-http.js';
import { CmPeers } from './cm-peers.js';
import { CmConsole } from './console.js';
import { CmSession, type MqttConnect } from './cm-session.js';
import { ListBook, type PointersSigner, type SignedList } from './list-book.js';
import { LoadPolicy, RateMeter } from './load.js';
import { renderMetrics } from './metrics.js';
import { PhoneTable, type HomedPhone } from './phone-table.js';
import type { Rebalancer } from './rebalancer.js';
import { Responder } from './responder.js';
import { Presigner } from './presigner.js';
import { loadSigningKey } from './signer.js';
import { bootSeqFor } from './boot-seq.js';
import { groupDigest, groupFloorFor, storeRaisedFloor } from './group-floor.js';
import { signRetired } from './retired.js';
import { DEFAULT_CM_STATE_DIR, readConsoleToken } from '../config/cm-config.js';
import { ConsoleAuth } from './console-auth.js';
import { IpphoneError } from '../lib/errors.js';
import { VersionClock } from './version-clock.js';
import { versionLeaseFor, type VersionLease } from './version-lease.js';
import { CmRun } from './run-state.js';
import { sipProbeFor, type SipProbe } from './sip-probe.js';
import { cmTrustedKeys } from './peer-liveness.js';
import { ChallengeQueue } from './challenge-queue.js';
import { decodeCmChallenge } from '../protocol/cm-state.js';
import { isValidId } from '../protocol/topics.js';
import { errorMessage } from '../lib/errors.js';
import type { Envelope, PointersBody } from '../protocol/types.js';
import type { DurableFs } from '../store/durable-file.js';

export type { MqttConnect } from './cm-session.js';

/**
 * The call manager's composition root: the MQTT session on its own broker
 * (cm-session.ts), the keep-alive responder, peers and rebalancing
 * (cm-peers.ts), load publishing and the HTTP side (cm-http.ts). The pieces
 * are pure or small and tested alone; this class only wires them and answers
 * keep-alives.
 */

export interface CallManagerOptions {
  config: CmConfig;
  log: Logger;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** Default mqtt.js `connect`. */
  mqttConnect?: MqttConnect;
  /** Default: Ed25519 with the key at `config.signingKey`, kid `config.keyId` (then also trusted for peers' states). */
  signer?: PointersSigner;
  /** Random bytes for the per-connection nonce of the signed state; default node:crypto. */
  randomBytes?: (n: number) => Buffer;
  /** The state directory's filesystem (boot sequence, version lease, group floor); default node:fs. The simulator (src/sim) passes its disk model. */
  fs?: DurableFs;
  /** Bind the HTTP port at start; default true. False only where no HTTP is wanted (the simulator runs many call managers in one process). */
  listen?: boolean;
  /**
   * Builds the probe of the paired SIP server in place of {@link sipProbeFor}'s
   * OPTIONS over TCP (the simulator's registrar model); default: from `config.sip`.
   */
  sipProbe?: (onChange: (online: boolean) => void) => CmSipProbe | undefined;
}

/** What the call manager uses of its SIP server's probe (sip-probe.ts). */
export type CmSipProbe = Pick<SipProbe, 'online' | 'start' | 'stop'>;

/** Housekeeping period: sweep the phone table, publish load when due (ms). */
const TICK_MS = 1000;
/** At most one debug line about invalid keep-alives per this many ms. */
const INVALID_LOG_GAP_MS = 10_000;

export class CallManager {
  readonly #config: CmConfig;
  readonly #root: Logger;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #mqttConnect: MqttConnect;
  readonly #signerOption: PointersSigner | undefined;
  readonly #randomBytes: ((n: number) => Buffer) | undefined;
  readonly #fs: DurableFs | undefined;
  readonly #listen: boolean;
  readonly #sipProbe: CallManagerOptions['sipProbe'];
  readonly #t: Topics;
  /** `P/phone/` — phone topics are built by concatenation on the hot path. */
  readonly #phoneBase: string;

  #session: CmSession | undefined;
  /** This run's signed state (run-state.ts). */
  #run: CmRun | undefined;
  #http: CmHttp | undefined;
  /** The operator console (`GET /`), unless `console.enabled` is false. */
  #console: CmConsole | undefined;
  #book: ListBook | undefined;
  #lease: VersionLease | undefined;
  #table: PhoneTable | undefined;
  #peers: CmPeers | undefined;
  #responder: Responder | undefined;
  /** Signs ahead, while idle, the lists a peer's failure will need (presigner.ts). */
  #presigner: Presigner | undefined;
  /** The OPTIONS probe of `sip.registrar` (absent without `sip`). */
  #sip: CmSipProbe | undefined;
  /** Liveness challenges waiting for our signed answer (challenge-queue.ts bounds the signing). */
  readonly #challenges = new ChallengeQueue();
  #challengeTimer: TimerHandle | undefined;
  #lastChallengeLog = -Infinity;
  /** Keep-alives left unanswered while the SIP server is silent. */
  #keepalivesOffline = 0;
  #kaRate: RateMeter | undefined;
  #loadPolicy: LoadPolicy | undefined;
  #tick: TimerHandle | undefined;
  #started = false;
  #stopping: Promise<void> | undefined;
  #lastInvalidLog = -Infinity;
  #invalidSinceLog = 0;
  /** Keep-alives ignored for a version too far ahead (Responder.implausible) when last logged, and when. */
  #implausibleLogged = 0;
  #lastImplausibleLog = -Infinity;
  #lastTickAt = 0;
  /** The last write of a group floor adopted from a peer (one at a time; awaited on stop). */
  #floorWrite: Promise<void> = Promise.resolve();

  /** Rebalance moves sent. */
  get rebalanceMoves(): number {
    return this.#peers?.rebalancer.moves ?? 0;
  }

  /** The rebalancer (for tests and metrics). */
  get rebalancer(): Rebalancer | undefined {
    return this.#peers?.rebalancer;
  }

  constructor(opts: CallManagerOptions) {
    this.#config = opts.config;
    this.#root = opts.log;
    this.#log = opts.log.child({ mod: 'cm' });
    this.#clock = opts.clock ?? systemClock;
    // TCP_NODELAY on its broker client and on its peer links (which connect through this too).
    this.#mqttConnect = withNoDelay(opts.mqttConnect ?? connect);
    this.#signerOption = opts.signer;
    this.#randomBytes = opts.randomBytes;
    this.#fs = opts.fs;
    this.#listen = opts.listen ?? true;
    this.#sipProbe = opts.sipProbe;
    this.#t = topics(opts.config.topicPrefix);
    this.#phoneBase = this.#t.phoneAck('x').slice(0, -'x/ack'.length);
  }

  /** Load the key, bind HTTP, connect to the broker. Throws CONFIG_INVALID / TRANSPORT. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const c = this.#config;
    const now = this.#clock.now(); // wall: the boot sequence is seeded from the epoch
    const loaded = this.#signerOption === undefined ? await loadSigningKey(c.signingKey, c.keyId) : undefined;
    const signer = this.#signerOption ?? loaded!.sign;
    const stateTopic = this.#t.cmState(c.cmId);
    const group: Pointer[] = c.group.map(cleanPointer);
    // Announced in every state we sign; a peer with the same digest and a higher floor raises ours (group-floor.ts).
    const digest = groupDigest(group, c.retired);
    const run = (this.#run = new CmRun({
      cmId: c.cmId,
      bdSeq: await bootSeqFor(c, now, this.#log, undefined, this.#fs),
      // The signer serialises whatever body it is given; a state body is not a list.
      sign: (body) => signer(body as PointersBody) as Envelope,
      clock: this.#clock,
      publish: (payload) => this.#session?.publishRetained(stateTopic, payload),
      ...(this.#randomBytes ? { randomBytes: this.#randomBytes } : {}),
      log: this.#log,
      announce: () => (this.#book === undefined ? undefined : { group: digest, floor: this.#book.floor }),
    }));
    const lease = (this.#lease = await versionLeaseFor(c, now, this.#log, undefined, this.#fs));
    // A group changed since the last start reaches every phone (group-floor.ts): above every list we issued before.
    const baseVersion = await groupFloorFor({ dir: c.stateDir ?? DEFAULT_CM_STATE_DIR, cmId: c.cmId, group, retired: c.retired, issued: lease.previous, pointersVersion: c.pointersVersion, now, ...(this.#fs ? { fs: this.#fs } : {}) }, this.#log);
    const versions = new VersionClock({
      clock: this.#clock,
      start: Math.max(baseVersion, lease.previous),
      slot: c.group.findIndex((g) => g.id === c.cmId),
      slots: c.group.length,
      onAdvance: (last) => lease.advance(last),
    });
    const book = (this.#book = new ListBook({ group, baseVersion, clock: this.#clock, sign: signRetired(signer, c.retired), lazyRestore: c.rebalance.enabled, bind: true, versions }));
    const table = (this.#table = new PhoneTable(c.keepalive.phoneIntervalMs));
    const responder = (this.#responder = new Responder({ cmId: c.cmId, book, table, clock: this.#clock, retired: new Set(c.retired) }));
    this.#kaRate = new RateMeter(this.#clock.elapsed(), 10);
    this.#loadPolicy = new LoadPolicy({ periodMs: c.rebalance.periodMs });
    const cons = (this.#console = (c.console?.enabled ?? true)
      ? new CmConsole({
          cmId: c.cmId,
          ...this.#consoleAuth(c),
          group: c.group,
          prefix: c.topicPrefix.replace(/\/+$/, ''),
          clock: this.#clock,
          log: this.#root.child({ mod: 'console' }),
          host: {
            measure: () => ({ connected: this.connected, phones: this.phonesHomed(), servicesRps: this.#http?.rps(this.#clock.elapsed()) ?? 0 }),
            moves: () => ({ moves: this.#peers?.rebalancer.inflightMoves(this.#clock.elapsed()) ?? [], queued: this.#peers?.rebalancer.queued ?? 0 }),
            pointers: (phone) => {
              const l = book.forPhone(phone);
              return { version: l.version, reason: l.reason, list: l.list.map((p) => p.id) };
            },
            homedHere: (phone) => table.isHomed(phone, this.#clock.elapsed()),
          },
        })
      : undefined);
    this.#peers = new CmPeers({
      config: c,
      log: this.#root,
      clock: this.#clock,
      topics: this.#t,
      phoneBase: this.#phoneBase,
      mqttConnect: this.#mqttConnect,
      book,
      table,
      responder,
      trust: cmTrustedKeys(c.trust.keys, c.keyId, loaded?.publicKey),
      pushList: (topic, json) => this.#session?.pushList(topic, json),
      publish: (topic, payload) => this.#session?.publish(topic, payload),
      connected: () => this.connected,
      groupDigest: digest,
      floorRaised: (floor) => this.#storeFloor(floor),
      ...(cons !== undefined ? { observe: { load: (id, load) => cons.peerLoad(id, load), offline: (set) => cons.setOffline(set) } } : {}),
    });
    // Sign the group list now so a bad key fails at start, not on the first keep-alive.
    book.groupList();
    const presigner = (this.#presigner = new Presigner({ book, self: c.cmId, peers: c.group.filter((g) => g.id !== c.cmId).map((g) => g.id), clock: this.#clock }));
    // Phones' statuses say which peer each is homed on: read where the console subscribes to them
    // (the default), adding no subscription and no traffic of its own.
    const statusHead = this.#phoneBase;
    const onPhoneStatus = (topic: string, payload: Buffer): void => {
      if (!topic.startsWith(statusHead) || !topic.endsWith('/status')) return;
      const phone = topic.slice(statusHead.length, -'/status'.length);
      if (phone.length > 0 && !phone.includes('/')) presigner.onStatus(phone, payload);
    };

    const host = { connected: () => this.connected, sipOnline: () => this.sipOnline, phonesHomed: () => this.phonesHomed(), homedPhones: () => this.homedPhones(), metricsText: () => this.metricsText(), ...(cons !== undefined ? { raw: cons.handle.bind(cons) } : {}) };
    this.#http = new CmHttp(c, this.#clock, this.#clock.elapsed(), host, this.#root.child({ mod: 'http' }));
    if (this.#listen) await this.#http.start();
    this.#session = new CmSession({
      config: c,
      log: this.#root,
      clock: this.#clock,
      connect: this.#mqttConnect,
      topics: this.#t,
      run,
      onKeepalive: (payload, topicPhone) => this.#onKeepalive(payload, topicPhone),
      onPeerMessage: (topic, payload) => {
        if (topic.startsWith(statusHead)) onPhoneStatus(topic, payload);
        if (cons?.wants(topic) === true) cons.onMessage(topic, payload);
        else if (!topic.startsWith(statusHead)) this.#peers?.onMessage(topic, payload);
      },
      onChallenge: (from, payload) => this.#onChallenge(from, payload),
      onConnect: () => this.#publishLoad(true),
      ...(cons !== undefined ? { watch: cons.filters } : {}),
    });
    cons?.start();
    presigner.start();
    this.#peers.start();
    this.#startSipProbe(run);
    this.#scheduleTick();
    this.#log.info({ cmId: c.cmId, broker: c.broker, version: book.version }, 'call manager started');
  }

  /** Publish the offline state, disconnect, close HTTP. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  /** False while the paired SIP server does not answer (true without `sip`). */
  get sipOnline(): boolean {
    return this.#sip?.online ?? true;
  }

  /**
   * While the paired SIP server is silent this call manager is a dead one to
   * the phones (sip-probe.ts, sipProbeFor): signed state offline, `/healthz`
   * 503, keep-alives unanswered. The watchdog (healthy()) is not touched.
   */
  #startSipProbe(run: CmRun): void {
    const onChange = (online: boolean): void => void run.setAvailable(online);
    this.#sip = this.#sipProbe !== undefined ? this.#sipProbe(onChange) : sipProbeFor(this.#config, this.#clock, this.#root, onChange);
    this.#sip?.start();
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.#session?.connected ?? false;
  }

  /** The bound HTTP port (useful with port 0). */
  get httpPort(): number | undefined {
    return this.#http?.port;
  }

  /** Phones homed here now. */
  phonesHomed(): number {
    return this.#table?.count(this.#clock.elapsed()) ?? 0;
  }

  /** Homed phones with their busy flag, for the rebalancer. */
  homedPhones(): Iterable<HomedPhone> {
    return this.#table?.homedPhones(this.#clock.elapsed()) ?? [];
  }

  /** The list book (for the rebalancer's `setPhoneList`). */
  get book(): ListBook | undefined {
    return this.#book;
  }

  /**
   * The console's gate from `console.tokenFile` (read now: a bad file stops
   * the start with one CONFIG_INVALID line); none without a token file, and
   * the console then serves no group data.
   */
  #consoleAuth(c: CmConfig): { auth?: ConsoleAuth; secureCookie?: boolean } {
    const file = c.console?.tokenFile ?? null;
    if (file === null) {
      this.#log.info('console: no console.tokenFile, so no console is served (404); phones\' events still feed /metrics');
      return {};
    }
    const token = readConsoleToken(file);
    if (!token.ok) throw new IpphoneError(token.problem, 'CONFIG_INVALID', { path: file });
    const self = c.group.find((g) => g.id === c.cmId);
    return {
      auth: new ConsoleAuth({ token: token.token, clock: this.#clock, ...(this.#randomBytes ? { randomBytes: this.#randomBytes } : {}) }),
      secureCookie: self?.services.toLowerCase().startsWith('https:') === true,
    };
  }

  /** Prometheus text of the current counters. */
  metricsText(): string {
    const now = this.#clock.elapsed();
    const r = this.#responder;
    return renderMetrics({
      phonesHomed: this.phonesHomed(),
      keepalivesTotal: r?.keepalives ?? 0,
      keepalivesPerSecond: Math.round((this.#kaRate?.rate(now) ?? 0) * 100) / 100,
      keepalivesInvalidTotal: r?.invalid ?? 0,
      pointerPushes: r?.pushes ?? new Map(),
      rebalanceMovesTotal: this.rebalanceMoves,
      servicesRequestsTotal: this.#http?.requests ?? 0,
      brokerConnected: this.connected,
      acksDroppedTotal: this.#session?.acksDropped ?? 0,
      peerStatesRefusedTotal: this.#peers?.statesRefused ?? 0,
      stateRepublishedTotal: this.#run?.republished ?? 0,
      ...(this.#console !== undefined ? { rehomesHere: this.#console.rehomesHere, rehomeEventsLimitedTotal: this.#console.rehomesLimited } : {}),
      versionReportsIgnored: { implausible: r?.implausible ?? 0, rateLimited: r?.reports.refused ?? 0 },
      livenessChallenges: { answered: this.#challenges.answered, dropped: this.#challenges.dropped },
      peerFloorsRefusedTotal: this.#peers?.floorsRefused ?? 0,
    });
  }

  /**
   * A receiver that could not order our state asks us to sign it with its
   * challenge (cm-liveness.ts): queued, one per challenger, answered at a
   * bounded rate (challenge-queue.ts) — never on the keep-alive path.
   */
  #onChallenge(from: string, payload: Buffer): void {
    const now = this.#clock.elapsed();
    let challenge: string;
    try {
      if (!isValidId(from)) throw new Error(`challenger ${JSON.stringify(from)} is not an id`);
      challenge = decodeCmChallenge(payload).challenge;
    } catch (err) {
      if (now - this.#lastChallengeLog >= INVALID_LOG_GAP_MS) {
        this.#log.debug({ from, err: errorMessage(err) }, 'invalid liveness challenge');
        this.#lastChallengeLog = now;
      }
      return;
    }
    this.#challenges.offer(from, challenge, now);
    this.#answerChallenges();
  }

  #answerChallenges(): void {
    const run = this.#run;
    const session = this.#session;
    if (run === undefined || session === undefined || this.#stopping !== undefined) return;
    const now = this.#clock.elapsed();
    for (const { from, challenge } of this.#challenges.take(now)) {
      const answer = run.answer(challenge);
      if (answer !== undefined) session.publish(this.#t.cmChallengeAnswer(this.#config.cmId, from), answer);
    }
    const next = this.#challenges.nextIn(now);
    if (next === undefined || this.#challengeTimer !== undefined) return;
    this.#challengeTimer = this.#clock.setTimeout(() => {
      this.#challengeTimer = undefined;
      this.#answerChallenges();
    }, Math.max(1, next));
  }

  /** One keep-alive; `topicPhone` is the id of a per-phone topic (Responder.handle trusts it). */
  #onKeepalive(payload: Buffer, topicPhone: string | undefined): void {
    const r = this.#responder;
    const session = this.#session;
    if (r === undefined || session === undefined) return;
    if (this.#sip?.online === false) {
      this.#keepalivesOffline++;
      return;
    }
    const res = r.handle(payload, topicPhone);
    const now = this.#clock.elapsed();
    if (typeof res === 'string') {
      this.#invalidSinceLog++;
      if (now - this.#lastInvalidLog >= INVALID_LOG_GAP_MS) {
        this.#log.debug({ reason: res, count: this.#invalidSinceLog }, 'invalid keep-alive');
        this.#lastInvalidLog = now;
        this.#invalidSinceLog = 0;
      }
      return;
    }
    if (r.implausible !== this.#implausibleLogged && now - this.#lastImplausibleLog >= INVALID_LOG_GAP_MS) {
      // Such a phone refuses every list we may issue (version-clock.ts): the operator's cue to rebase it.
      this.#log.warn({ phone: res.phone, count: r.implausible - this.#implausibleLogged }, 'keep-alive list version too far ahead of this clock: ignored (the phone takes no list until rebased: ipphone-admin pointers --rebase)');
      this.#implausibleLogged = r.implausible;
      this.#lastImplausibleLog = now;
    }
    this.#kaRate?.add(now);
    this.#peers?.onKeepalive(res.phone, payload);
    // res.phone passed the id check in parseKeepalive: safe as one topic level.
    const base = this.#phoneBase + res.phone;
    session.ack(`${base}/ack`, res.ack);
    if (res.push !== undefined) this.#push(res.phone, res.push, `${base}/pointers`);
  }

  #push(phone: string, list: SignedList, topic: string): void {
    // The phone's ack goes out first, as before the push (pushes are rare; this keeps the order).
    this.#session?.pushList(topic, list.envelopeJson);
    this.#log.info({ phone, version: list.version, reason: list.reason, first: list.list[0]?.id }, 'pointers pushed');
  }

  /**
   * True while the housekeeping loop runs on time (within three ticks). The
   * broker being unreachable does not count: mqtt.js reconnects, and a
   * restart would not help.
   */
  healthy(): boolean {
    return this.#started && this.#stopping === undefined && this.#clock.elapsed() - this.#lastTickAt < 3 * TICK_MS + 1000;
  }

  #scheduleTick(): void {
    this.#lastTickAt = this.#clock.elapsed();
    this.#tick = this.#clock.setTimeout(() => {
      this.#tick = undefined;
      if (this.#stopping !== undefined) return;
      // Bounded memory even while no load goes out (e.g. broker down).
      this.#table?.sweep(this.#clock.elapsed());
      this.#publishLoad(false);
      if (this.connected) this.#peers?.tick(this.#clock.elapsed());
      this.#scheduleTick();
    }, TICK_MS);
  }

  /**
   * Keep a group floor adopted from a peer across restarts (group-floor.ts storeRaisedFloor),
   * one write at a time. A write that fails is logged: the floor holds for this run, and a
   * restart takes it again from the peers' retained states.
   */
  #storeFloor(floor: number): void {
    const c = this.#config;
    this.#floorWrite = this.#floorWrite
      .then(() => storeRaisedFloor({ dir: c.stateDir ?? DEFAULT_CM_STATE_DIR, cmId: c.cmId, group: c.group.map(cleanPointer), retired: c.retired, ...(this.#fs ? { fs: this.#fs } : {}) }, floor))
      .then(
        () => undefined,
        (err: unknown) => this.#log.warn({ floor, err: errorMessage(err) }, 'adopted group floor not stored: a restart takes it again from the peers'),
      );
  }

  #publishLoad(force: boolean): void {
    const session = this.#session;
    const policy = this.#loadPolicy;
    if (session === undefined || policy === undefined || !session.connected) return;
    const now = this.#clock.elapsed();
    const phones = this.phonesHomed();
    if (!force && !policy.due(phones, now)) return;
    const self = this.#config.group.find((g) => g.id === this.#config.cmId);
    const servicesRps = this.#http?.rps(now) ?? 0;
    const body = JSON.stringify({ phones, capacity: self?.capacity ?? 0, servicesRps, version: this.#book?.publishedVersion ?? 0 });
    session.publishRetained(this.#t.cmLoad(this.#config.cmId), body);
    policy.published(phones, now);
  }

  async #stop(): Promise<void> {
    if (this.#tick !== undefined) this.#clock.clearTimeout(this.#tick);
    this.#tick = undefined;
    if (this.#challengeTimer !== undefined) this.#clock.clearTimeout(this.#challengeTimer);
    this.#challengeTimer = undefined;
    this.#peers?.halt();
    this.#presigner?.stop();
    this.#sip?.stop();
    // Streams end cleanly before the HTTP server drops its connections.
    this.#console?.stop();
    await this.#session?.stop();
    await this.#peers?.stop();
    await this.#http?.stop();
    await this.#lease?.flushed();
    await this.#floorWrite;
    this.#log.info({ cmId: this.#config.cmId }, 'call manager stopped');
  }
}
