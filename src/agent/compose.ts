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
import type { PhoneHardware } from '../hw/types.js';
import { Agent } from './agent.js';
import { fetchServices } from './http-services.js';
import { MqttTransport, type MqttTransportOptions } from './mqtt-transport.js';
import type { ServicesFetcher } from './ports.js';

export interface ComposeOptions {
  config: AgentConfig;
  log: Logger;
  hardware: PhoneHardware;
  clock?: Clock;
  random?: Random;
  fetch?: ServicesFetcher;
  /** mqtt-packet's number cache ({@link MqttTransportOptions.writeCache}); default off. */
  writeCache?: boolean;
}

export function composeAgent(o: ComposeOptions): Agent {
  const c = o.config;
  const clock = o.clock ?? systemClock;
  return new Agent({
    config: c,
    log: o.log,
    clock,
    random: o.random ?? Math.random,
    keys: trustedKeys(c.trust.keys),
    store: new FileStateStore({ dir: c.stateDir, log: o.log }),
    fetchServices: o.fetch ?? fetchServices,
    display: o.hardware.display,
    keypad: o.hardware.keypad,
    noServiceLed: o.hardware.leds?.noService ?? null,
    hook: o.hardware.hook,
    hrNow: () => performance.now(),
    transport: (events, will) =>
      new MqttTransport({
        clientId: `ipphone-${c.phoneId}`,
        events,
        log: o.log,
        clock,
        will,
        protocolVersion: c.mqtt.protocolVersion,
        connectTimeoutMs: c.mqtt.connectTimeoutMs,
        keepaliveSec: c.mqtt.keepaliveSec,
        username: c.mqtt.username,
        password: c.mqtt.password,
        passwordFile: c.mqtt.passwordFile,
        ca: c.mqtt.ca,
        cert: c.mqtt.cert,
        key: c.mqtt.key,
        maxQueue: c.mqtt.maxQueue,
        writeCache: o.writeCache ?? false,
      }),
  });
}
