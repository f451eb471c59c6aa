/** The example configs of shared/CONTRACT.md, shared by the config tests and the hostile-input properties. */

/** The agent example, with a real public key in place of the placeholder. */
export function agentExample(publicPem: string) {
  return {
    phoneId: 'p-0001',
    pointers: [
      { id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services' },
      { id: 'cm-b', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8082/services' },
    ],
    keepalive: { intervalMs: 1000, missLimit: 3 },
    fallback: { holdMs: 30000 },
    services: { timeoutMs: 2000 },
    topicPrefix: 'ipphone/v1',
    stateDir: '/var/lib/ipphone-agent',
    board: 'hw/boards/headless.json',
    trust: { requireSigned: true, keys: { 'ops-1': publicPem } },
    mqtt: { username: null, password: null, ca: null, cert: null, key: null },
    log: { level: 'info' },
  };
}

/** The call-manager example. */
export function cmExample() {
  return {
    cmId: 'cm-a',
    broker: 'mqtt://127.0.0.1:1883',
    http: { host: '127.0.0.1', port: 8081 },
    group: [
      { id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services', capacity: 1000 },
      { id: 'cm-b', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8082/services', capacity: 1000 },
    ],
    rebalance: { enabled: true, periodMs: 5000, threshold: 0.1, maxMovesPerSec: 100 },
    signingKey: '/etc/ipphone-cm/ops-1.pem',
    keyId: 'ops-1',
    topicPrefix: 'ipphone/v1',
  };
}
