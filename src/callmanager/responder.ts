import type { Clock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import { decodeKeepalive } from '../protocol/codec.js';
import type { KeepalivePayload, PointerReason } from '../protocol/types.js';
import type { ListBook, SignedList } from './list-book.js';
import type { PhoneTable } from './phone-table.js';
import { ReportLimiter } from './report-limiter.js';

/**
 * The keep-alive responder — the hot path (tens of thousands of keep-alives a
 * second per process). For each keep-alive it builds the ack as a JSON string
 * from pre-serialised pieces of the signed list (no per-ack signing, no schema
 * library, no object graph to stringify), updates the phone table, and decides
 * whether to also push the list on the phone's `pointers` topic.
 */

/** Largest keep-alive accepted (bytes); real ones are ~100. */
export const MAX_KEEPALIVE_BYTES = 1024;
/** Accepted range of a phone-declared keep-alive interval (ms). */
export const INTERVAL_MIN_MS = 10;
export const INTERVAL_MAX_MS = 10 * 60_000;

/** A validated keep-alive (`intervalMs` is an extension: the phone's interval, ms). */
export interface Keepalive extends KeepalivePayload {
  intervalMs?: number;
}

/**
 * Parse and check a keep-alive with the shared codec; returns a reason string
 * when it is invalid (exceptions stay off the hot path's success case).
 */
export function parseKeepalive(payload: Buffer): Keepalive | string {
  if (payload.length > MAX_KEEPALIVE_BYTES) return `keep-alive is ${payload.length} bytes, over ${MAX_KEEPALIVE_BYTES}`;
  let ka: Keepalive;
  try {
    ka = decodeKeepalive(payload);
  } catch (err) {
    return errorMessage(err);
  }
  if (ka.intervalMs !== undefined && (ka.intervalMs < INTERVAL_MIN_MS || ka.intervalMs > INTERVAL_MAX_MS)) {
    return `keep-alive intervalMs is not a number in [${INTERVAL_MIN_MS}, ${INTERVAL_MAX_MS}]`;
  }
  return ka;
}

/** Inputs of the push decision. */
export interface PushInput {
  probe: boolean;
  /** The phone was not homed here before this keep-alive. */
  newArrival: boolean;
  /** Number of group peers currently offline. */
  peersOffline: number;
  /** Version the phone holds. */
  phoneVersion: number;
  /** Version of the list this CM would give it. */
  listVersion: number;
  /**
   * The keep-alive's `prev` names an offline peer (true) or a live one / none
   * (false); undefined when the phone does not send `prev` (an older agent).
   */
  fromFailed?: boolean | undefined;
  /** The phone is in a call. */
  busy?: boolean | undefined;
}

/**
 * Push the list on `pointers` (QoS 1, in addition to the ack) when a phone
 * arrives here from a failed peer and lacks our current list: it is failing
 * over, and the QoS-1 push survives a lost QoS-0 ack. Not when the phone says
 * it came from a live peer (a rebalance move: the group list would undo it)
 * or from nowhere (a boot); only a phone that does not say is guessed to be
 * failing over while some peer is down. Never while the phone is busy — a
 * failover push moves a phone at once, mid-call; it is owed until it is idle.
 */
export function shouldPush(i: PushInput): boolean {
  return !i.probe && i.newArrival && i.peersOffline > 0 && i.phoneVersion < i.listVersion && i.fromFailed !== false && i.busy !== true;
}

/** Most phones owed an arrival push (bounded memory; forgotten beyond that). */
const MAX_OWED = 100_000;

/** What to publish for one keep-alive. */
export interface Response {
  phone: string;
  /** Ack JSON for `P/phone/{phone}/ack`, QoS 0. */
  ack: string;
  /** When set: push this list's envelope on `P/phone/{phone}/pointers`, QoS 1. */
  push: SignedList | undefined;
}

export interface ResponderOptions {
  cmId: string;
  book: ListBook;
  table: PhoneTable;
  clock: Clock;
  /** Default: a {@link ReportLimiter} with its defaults. */
  reports?: ReportLimiter;
  /**
   * Former members (config `retired`, retired.ts). A phone arriving from one holds a
   * list that member signed — perhaps at a version above our floor, if its clock ran
   * ahead or no member saw it before restarting with the removal — so it is given our
   * list whatever version it holds, as one arriving from a failed peer is.
   */
  retired?: ReadonlySet<string>;
}

/** Turns keep-alives into acks (and pushes). Counts what it sees. */
export class Responder {
  readonly #book: ListBook;
  readonly #table: PhoneTable;
  readonly #clock: Clock;
  readonly #retired: ReadonlySet<string>;
  /** `{"cm":"<id>","seq":` — the constant head of every ack. */
  readonly #ackHead: string;
  /** Valid keep-alives answered. */
  keepalives = 0;
  /** Keep-alives refused as invalid. */
  invalid = 0;
  /** Keep-alives whose version was too far ahead to be observed (version-clock.ts). */
  implausible = 0;
  /** How often a phone may move the version clock (report-limiter.ts); its `refused` counts the rest. */
  readonly reports: ReportLimiter;
  /** Pointer pushes decided, by reason. */
  readonly pushes = new Map<PointerReason, number>();
  /** Phones released to take the latest list even though they hold one at or above the floor. */
  readonly #released = new Set<string>();
  /** Phones that arrived from a failed peer and were pushed a list with it demoted. */
  readonly #demotedPushed = new Set<string>();
  /** Phones that arrived from a failed peer while busy: pushed at their first idle keep-alive. */
  readonly #owed = new Set<string>();

  /** Take (and forget) the phones pushed a demoted list: they are owed the restored one. */
  takeDemoted(): string[] {
    const out = [...this.#demotedPushed];
    this.#demotedPushed.clear();
    return out;
  }

  constructor(opts: ResponderOptions) {
    this.#book = opts.book;
    this.#table = opts.table;
    this.#clock = opts.clock;
    this.reports = opts.reports ?? new ReportLimiter();
    this.#retired = opts.retired ?? new Set();
    this.#ackHead = `{"cm":${JSON.stringify(opts.cmId)},"seq":`;
  }

  /**
   * Let `phone` have the latest list in its next acks although it holds one
   * above the floor (a lazily restored list being handed out gradually).
   */
  release(phone: string): void {
    this.#released.add(phone);
  }

  /**
   * Answer one keep-alive; returns the reason string when it is invalid.
   * `topicPhone` is the phone id of a per-phone keep-alive topic
   * (`P/cm/{cmId}/keepalive/{phoneId}`), undefined for the shared topic. The
   * topic's id is the one to trust — a broker ACL can tie it to the sender's
   * identity, the payload cannot be — so a payload naming another phone is
   * refused: counted invalid, no ack, no table entry.
   */
  handle(payload: Buffer, topicPhone?: string): Response | string {
    const ka = parseKeepalive(payload);
    if (typeof ka === 'string') {
      this.invalid++;
      return ka;
    }
    if (topicPhone !== undefined && ka.phone !== topicPhone) {
      this.invalid++;
      return `keep-alive for phone ${JSON.stringify(ka.phone)} on the topic of phone ${JSON.stringify(topicPhone.slice(0, 80))}`;
    }
    this.keepalives++;
    const probe = ka.probe === true;
    const newArrival = probe ? false : this.#table.touch(ka.phone, ka.busy, ka.intervalMs, this.#clock.elapsed());
    // Hybrid logical clock: every later list is issued above what this phone holds — within
    // bounds (issue 15): a probe feeds nothing (it does not home here; anyone may send one),
    // a version beyond the wall clock's bound for phones is ignored, and a phone moves the
    // clock at most once per REPORT_GAP_MS (report-limiter.ts).
    const observed = probe || this.#book.plausible(ka.pointersVersion, 'phone');
    if (!observed) this.implausible++;
    else if (!probe && ka.pointersVersion > this.#book.lastVersion && this.reports.allow(ka.phone, this.#clock.elapsed())) this.#book.observe(ka.pointersVersion, 'phone');
    let list = this.#book.forPhone(ka.phone);
    // A phone arriving from a failed peer must take our list (it names that peer first),
    // even when it holds a higher version from a peer whose clock ran ahead of ours.
    if (observed && !probe && newArrival && ka.prev !== null && (ka.prev === undefined ? this.#book.offline.size > 0 : this.#book.offline.has(ka.prev)) && ka.pointersVersion > list.version) {
      list = this.#book.above(ka.phone, ka.pointersVersion);
      this.#released.add(ka.phone);
    } else if (observed && !probe && newArrival && typeof ka.prev === 'string' && this.#retired.has(ka.prev)) {
      // From a removed member: what it holds names that member (or is as new as ours by chance).
      if (ka.pointersVersion >= list.version) list = this.#book.above(ka.phone, ka.pointersVersion);
      this.#released.add(ka.phone);
    }
    const released = this.#released.has(ka.phone);
    const has = ka.pointersVersion >= (released ? list.version : list.floor);
    if (released && ka.pointersVersion >= list.version) this.#released.delete(ka.phone);
    const ack = this.#ackHead + String(ka.seq) + (has ? list.ackTailShort : list.ackTailFull);
    let push: SignedList | undefined;
    const offline = this.#book.offline;
    const fromFailed = ka.prev === undefined ? undefined : ka.prev !== null && offline.has(ka.prev);
    const owed = !probe && this.#owed.has(ka.phone);
    const input = { probe, newArrival: newArrival || owed, peersOffline: offline.size, phoneVersion: ka.pointersVersion, listVersion: list.version, fromFailed: owed || fromFailed };
    if (owed && (!ka.busy || !shouldPush(input))) this.#owed.delete(ka.phone);
    if (shouldPush({ ...input, busy: ka.busy })) {
      push = list;
      this.#demotedPushed.add(ka.phone);
      this.pushes.set(list.reason, (this.pushes.get(list.reason) ?? 0) + 1);
    } else if (ka.busy && shouldPush(input)) {
      if (this.#owed.size >= MAX_OWED) this.#owed.clear();
      this.#owed.add(ka.phone);
    }
    return { phone: ka.phone, ack, push };
  }
}
