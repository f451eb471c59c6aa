/**
 * Builds one agent from a validated config: the composition root shared by
 * `ipphone-agent`, the fleet and the demo. Only here (and in the fleet) are
 * the real adapters chosen.
 */
import type { AgentConfig } from '../config/agent-config.js';
import type { Clock, Random } from '../lib/clock.js';
import { performance } from 'node:perf_hooks';
import { systemClock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { trustedKeys } from '../protocol/envelope.js';
import { FileStateStore } from '../store/agent-state-store.js';
import { RetryingStore } from '../store/retrying-store.js';
import type { PhoneHardware } from '../hw/types.js';
import { Agent } from './agent.js';
import { fetchServices } from './http-services.js';
import { MqttTransport, type MqttTransportOptions } from './mqtt-transport.js';
import type { ServicesFetcher, StateStore } from './ports.js';
import type { SipUserAgent } from '../sip/user-agent.js';
import { BaresipUserAgent } from '../sip/baresip.js';
import { readSipCredentials, type SipCredentials } from '../config/sip-credentials.js';

/**
 * Builds the phone's SIP user agent from `config.sip` (issue 11); `auth`: the digest credentials
 * read from `sip.passwordFile` at start (issue 17), null without one.
 */
export type SipUserAgentFactory = (
  sip: NonNullable<AgentConfig['sip']>,
  deps: { host: string; port: number; clock: Clock; random: Random; log: Logger; auth: SipCredentials | null },
) => SipUserAgent;

/** The built-in SIP driver: baresip over its `ctrl_tcp` socket (src/sip/baresip.ts). */
export const defaultSipUserAgent: SipUserAgentFactory = (_sip, deps) => new BaresipUserAgent(deps);

/** `127.0.0.1:4444` / `[::1]:4444` → host and port (the config schema checked the shape). */
export function ctrlAddress(ctrl: string): { host: string; port: number } {
  const i = ctrl.lastIndexOf(':');
  return { host: ctrl.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(ctrl.slice(i + 1)) };
}

export interface ComposeOptions {
  config: AgentConfig;
  log: Logger;
  hardware: PhoneHardware;
  clock?: Clock;
  random?: Random;
  fetch?: ServicesFetcher;
  /** mqtt-packet's number cache ({@link MqttTransportOptions.writeCache}); default off. */
  writeCache?: boolean;
  /** The flash state; default {@link agentStore} on `config.stateDir` (main.ts passes the one it read the board from). */
  store?: StateStore;
  /** Fail the start on an unusable `stateDir` instead of running without flash (the fleet). */
  stateDirRequired?: boolean;
  /** Builds the SIP user agent when `config.sip` is set; default {@link defaultSipUserAgent}. */
  sipUserAgent?: SipUserAgentFactory;
}

/** The agent's flash state: A/B slots in `stateDir`, saves retried, an unusable directory survived. */
export function agentStore(config: AgentConfig, log: Logger, clock: Clock = systemClock, strict = false): StateStore {
  return new RetryingStore({ inner: new FileStateStore({ dir: config.stateDir, log }), clock, log, strict });
}

export function composeAgent(o: ComposeOptions): Agent {
  const c = o.config;
  const clock = o.clock ?? systemClock;
  const random = o.random ?? Math.random;
  // The password is read here, once: an unreadable file stops the start with its reason (CONFIG_INVALID).
  const sip = c.sip === undefined ? null : (o.sipUserAgent ?? defaultSipUserAgent)(c.sip, { ...ctrlAddress(c.sip.ctrl), clock, random, log: o.log, auth: readSipCredentials(c.sip) });
  return new Agent({
    config: c,
    log: o.log,
    clock,
    random,
    keys: trustedKeys(c.trust.keys),
    store: o.store ?? agentStore(c, o.log, clock, o.stateDirRequired ?? false),
    fetchServices: o.fetch ?? fetchServices,
    display: o.hardware.display,
    keypad: o.hardware.keypad,
    noServiceLed: o.hardware.leds?.noService ?? null,
    hook: o.hardware.hook,
    sip,
    messageLed: o.hardware.leds?.message ?? null,
    hrNow: () => performance.now(),
    // Built from the effective config (file + saved overlay), so a remote credential change takes effect at the restart it asked for.
    transport: (events, will, eff) =>
      new MqttTransport({
        clientId: `ipphone-${c.phoneId}`,
        events,
        log: o.log,
        clock,
        will,
        protocolVersion: eff.mqtt.protocolVersion,
        connectTimeoutMs: eff.mqtt.connectTimeoutMs,
        keepaliveSec: eff.mqtt.keepaliveSec,
        username: eff.mqtt.username,
        password: eff.mqtt.password,
        passwordFile: eff.mqtt.passwordFile,
        ca: eff.mqtt.ca,
        cert: eff.mqtt.cert,
        key: eff.mqtt.key,
        maxQueue: eff.mqtt.maxQueue,
        writeCache: o.writeCache ?? false,
      }),
  });
}
