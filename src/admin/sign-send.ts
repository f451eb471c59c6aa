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
import { configBody, loadConfigPatch, loadPointerList, loadSigningKey, pointersBody } from './bodies.js';
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

/** Phone, time, and the optional version and expiry a signed body takes from the arguments. */
function bodyOptions(a: ConfigArgs | PointersArgs, clock: Clock) {
  return { phone: a.phone, now: clock.now(), ...(a.version !== undefined ? { version: a.version } : {}), ...(a.expiresInMs !== undefined ? { expiresInMs: a.expiresInMs } : {}) };
}

/** `config`: sign and send a config patch and wait for its result. Returns the exit code. */
export async function sendConfig(a: ConfigArgs, io: AdminIo, clock: Clock = systemClock): Promise<number> {
  const key = loadSigningKey(a.key);
  const patch = loadConfigPatch(a.file);
  const t = topics(a.conn.prefix);
  const client = await connectBroker(a.conn);
  try {
    await subscribe(client, [t.phoneConfigResult(a.phone)]);
    const body = configBody(patch, bodyOptions(a, clock));
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
    const body = pointersBody(list, a.reason, bodyOptions(a, clock));
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
    io.stderr(`ipphone-admin: sent pointers version ${body.version} (${body.list.map((p) => p.id).join(', ')}) to phone ${a.phone}\n`);
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
