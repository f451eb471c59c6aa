/**
 * `ipphone-admin config` and `pointers`: read and check the operator's
 * files, sign, publish (QoS 1) and — for config always, for pointers with
 * `--wait` — wait for the phone to say what became of it.
 *
 * Every file is read and checked before connecting, so bad input costs no
 * broker round trip and sends nothing. The reply topics are subscribed
 * BEFORE publishing, so a fast phone's answer cannot be missed.
 */
import type { MqttClient } from 'mqtt';
import type { MainIo } from '../lib/cli.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { signEnvelope } from '../protocol/envelope.js';
import { topics } from '../protocol/topics.js';
import type { AdminArgs } from './args.js';
import { configBody, loadConfigPatch, loadPointerList, loadSigningKey, pointersBody, rebaseBody } from './bodies.js';
import { REBASE_DEFAULT_EXPIRES_MS } from './args.js';
import { connectBroker, safeUrl, subscribe } from './connect.js';
import { configOutcome, PointersWaiter, type Outcome } from './outcome.js';

/** Where output goes: one line per call, newline included. */
export type AdminIo = MainIo;

type ConfigArgs = Extract<AdminArgs, { kind: 'config' }>;
type PointersArgs = Extract<AdminArgs, { kind: 'pointers' }>;

/**
 * Resolve with the first outcome `decide` reports for a message on the
 * client, or a TIMEOUT outcome after `timeoutMs`; a lost connection ends the
 * wait with an error. Listeners are removed either way.
 */
function waitOutcome(
  client: MqttClient,
  decide: (topic: string, payload: Buffer, retained: boolean) => Outcome | undefined,
  timeoutMs: number,
  timeoutError: string,
  clock: Clock,
): { ready: Promise<Outcome> } {
  let onMessage!: (topic: string, payload: Buffer, packet: { retain?: boolean }) => void;
  let onClose!: () => void;
  const ready = new Promise<Outcome>((resolve) => {
    const end = (o: Outcome): void => {
      clock.clearTimeout(timer);
      client.removeListener('message', onMessage);
      client.removeListener('close', onClose);
      resolve(o);
    };
    onMessage = (topic, payload, packet) => {
      const o = decide(topic, payload, packet.retain === true);
      if (o !== undefined) end(o);
    };
    onClose = () => end({ ok: false, error: 'connection to the broker was lost while waiting' });
    const timer = clock.setTimeout(() => end({ ok: false, error: timeoutError }), timeoutMs);
    client.on('message', onMessage);
    client.on('close', onClose);
  });
  return { ready };
}

function report(o: Outcome, io: AdminIo, what: string): number {
  if (o.line !== undefined) io.stdout(`${JSON.stringify(o.line)}\n`);
  if (o.ok) return 0;
  io.stderr(`ipphone-admin: ${what}: ${o.error}\n`);
  return 1;
}

/** Phone, time, the version the phone holds, and the optional version and expiry a signed body takes from the arguments. */
function bodyOptions(a: ConfigArgs | PointersArgs, clock: Clock, held: number | undefined) {
  return {
    phone: a.phone,
    now: clock.now(),
    ...(held !== undefined ? { held } : {}),
    ...(a.version !== undefined ? { version: a.version } : {}),
    ...(a.expiresInMs !== undefined ? { expiresInMs: a.expiresInMs } : {}),
  };
}

/** How long after SUBACK a retained status may still arrive (ms): mosquitto sends it right behind the SUBACK. */
const RETAINED_GRACE_MS = 300;

/**
 * The phone's retained status field `field` (`pointersVersion` or
 * `configVersion`), or undefined when the phone has none or an explicit
 * `--version` makes it moot. The status is read and the subscription dropped
 * before anything is sent.
 */
async function heldVersion(client: MqttClient, statusTopic: string, field: 'pointersVersion' | 'configVersion', a: ConfigArgs | PointersArgs, clock: Clock): Promise<number | undefined> {
  // A rebase names the version it replaces: always read.
  if (a.version !== undefined && !(a.kind === 'pointers' && a.rebase)) return undefined;
  let held: number | undefined;
  let seen!: () => void;
  const got = new Promise<void>((resolve) => (seen = resolve));
  const onMessage = (topic: string, payload: Buffer, packet: { retain?: boolean }): void => {
    if (topic !== statusTopic || packet.retain !== true) return;
    try {
      const v = (JSON.parse(payload.toString('utf8')) as Record<string, unknown>)[field];
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) held = v;
    } catch {
      // Not JSON: no version to go by; the phone will say what it makes of ours.
    }
    seen();
  };
  client.on('message', onMessage);
  try {
    await subscribe(client, [statusTopic]);
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    await Promise.race([got, new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, RETAINED_GRACE_MS)))]);
    if (timer !== undefined) clock.clearTimeout(timer);
    await client.unsubscribeAsync(statusTopic);
  } finally {
    client.removeListener('message', onMessage);
  }
  return held;
}

/** `config`: sign and send a config patch and wait for its result. Returns the exit code. */
export async function sendConfig(a: ConfigArgs, io: AdminIo, clock: Clock = systemClock): Promise<number> {
  const key = loadSigningKey(a.key);
  const patch = loadConfigPatch(a.file);
  const t = topics(a.conn.prefix);
  const client = await connectBroker(a.conn);
  try {
    const held = await heldVersion(client, t.phoneStatus(a.phone), 'configVersion', a, clock);
    await subscribe(client, [t.phoneConfigResult(a.phone)]);
    const body = configBody(patch, bodyOptions(a, clock, held));
    const resultTopic = t.phoneConfigResult(a.phone);
    const wait = waitOutcome(
      client,
      (topic, payload) => (topic === resultTopic ? configOutcome(body.version, payload, (why) => io.stderr(`ipphone-admin: ignoring a malformed config result: ${why}\n`)) : undefined),
      a.timeoutMs,
      `no config result for version ${body.version} from phone ${a.phone} within ${a.timeoutMs} ms (is it online on ${safeUrl(a.conn.broker)}?)`,
      clock,
    );
    await client.publishAsync(t.phoneConfig(a.phone), JSON.stringify(signEnvelope(body, key, a.kid)), { qos: 1 });
    io.stderr(`ipphone-admin: sent config version ${body.version} to phone ${a.phone}; waiting up to ${a.timeoutMs} ms for its result\n`);
    return report(await wait.ready, io, `config version ${body.version} not applied by phone ${a.phone}`);
  } finally {
    await client.endAsync();
  }
}

/**
 * `pointers`: check the list, sign and push it; with `wait`, wait for the
 * phone's status to show the version or for its rejection. Returns the exit code.
 * A list with problems throws CONFIG_INVALID (every problem in `context.problems`) before connecting.
 */
export async function sendPointers(a: PointersArgs, io: AdminIo, clock: Clock = systemClock): Promise<number> {
  const key = loadSigningKey(a.key);
  const list = loadPointerList(a.list);
  const t = topics(a.conn.prefix);
  const client = await connectBroker(a.conn);
  try {
    const held = await heldVersion(client, t.phoneStatus(a.phone), 'pointersVersion', a, clock);
    // A rebase replaces the version the phone shows (its retained status) with a lower one: bound, short-lived, one-time.
    const body = a.rebase ? rebaseBody(list, a.reason, { ...bodyOptions(a, clock, held), held, expiresInMs: a.expiresInMs ?? REBASE_DEFAULT_EXPIRES_MS }) : pointersBody(list, a.reason, bodyOptions(a, clock, held));
    const pointersTopic = t.phonePointers(a.phone);
    let wait: { ready: Promise<Outcome> } | undefined;
    if (a.wait) {
      const statusTopic = t.phoneStatus(a.phone);
      const eventTopic = t.phoneEvent(a.phone);
      const waiter = new PointersWaiter(body.version, pointersTopic);
      // Listen before subscribing: the retained status must be seen as retained, not missed.
      wait = waitOutcome(
        client,
        (topic, payload, retained) => {
          if (topic === statusTopic) return waiter.onStatus(payload, retained);
          if (topic === eventTopic) return waiter.onEvent(payload);
          return undefined;
        },
        a.timeoutMs,
        `phone ${a.phone} did not show pointers version ${body.version} within ${a.timeoutMs} ms (is it online on ${safeUrl(a.conn.broker)}?)`,
        clock,
      );
      await subscribe(client, [statusTopic, eventTopic]);
    }
    await client.publishAsync(pointersTopic, JSON.stringify(signEnvelope(body, key, a.kid)), { qos: 1 });
    io.stderr(`ipphone-admin: sent pointers version ${body.version} (${body.list.map((p) => p.id).join(', ')}) to phone ${a.phone}${body.rebase !== undefined ? `, a rebase of version ${body.rebase}` : ''}\n`);
    if (wait === undefined) {
      io.stdout(`${JSON.stringify({ phone: a.phone, version: body.version, reason: body.reason, list: body.list.map((p) => p.id), sent: true })}\n`);
      return 0;
    }
    const o = await wait.ready;
    if (o.ok) return report({ ok: true, line: { phone: a.phone, ...o.line } }, io, '');
    return report(o.line !== undefined ? { ...o, line: { phone: a.phone, ...o.line } } : o, io, `pointers version ${body.version} not taken by phone ${a.phone}`);
  } finally {
    await client.endAsync();
  }
}
