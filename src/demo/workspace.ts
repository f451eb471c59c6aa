/**
 * The demo's scratch space: one temp dir holding the signing key pair, the
 * operators' console token, the call managers' configs and logs, and each
 * phone's state dir; free loopback ports for the call managers' HTTP
 * servers. Removed on exit.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../protocol/envelope.js';

/** Key id the call managers sign with and the phones trust. */
export const KEY_ID = 'ops-1';

export interface CmSpec {
  id: string;
  httpPort: number;
  services: string;
  configFile: string;
  logFile: string;
}

export interface Workspace {
  readonly dir: string;
  readonly publicPem: string;
  readonly privateKeyFile: string;
  /** The operators' console token file every call manager's `console.tokenFile` names (a fresh random token). */
  readonly consoleTokenFile: string;
  /** Every call manager of the group, in priority order. */
  readonly cms: readonly CmSpec[];
  /** Pointers (`{ id, broker, services }`) for the phones, in priority order. */
  pointers(): { id: string; broker: string; services: string }[];
  /** A fresh state dir for one phone. */
  stateDir(phoneId: string): string;
  /** True when `remove()` leaves the dir in place (for debugging). */
  readonly kept: boolean;
  /** Remove everything (unless kept). Idempotent; never throws. */
  remove(): void;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = a !== null && typeof a === 'object' ? a.port : 0;
      s.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

export interface WorkspaceOptions {
  brokerUrl: string;
  cmIds: readonly string[];
  /** Leave the dir behind on remove(), for debugging. Default false. */
  keep?: boolean;
}

export async function createWorkspace(o: WorkspaceOptions): Promise<Workspace> {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-demo-'));
  let removed = false;
  const remove = (): void => {
    if (removed || o.keep === true) return;
    removed = true;
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Best effort: a leftover temp dir is not worth a crash on exit.
    }
  };
  try {
    const { privatePem, publicPem } = generateKeyPair();
    const privateKeyFile = join(dir, `${KEY_ID}.pem`);
    writeFileSync(privateKeyFile, privatePem, { mode: 0o600 });
    writeFileSync(`${privateKeyFile}.pub`, publicPem);
    // The console is for operators only (issue 15 §4): a fresh token per run, readable by this user alone.
    const consoleTokenFile = join(dir, 'console.token');
    writeFileSync(consoleTokenFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
    const cms: CmSpec[] = [];
    for (const id of o.cmIds) {
      const httpPort = await freePort();
      cms.push({ id, httpPort, services: `http://127.0.0.1:${httpPort}/services`, configFile: join(dir, `${id}.json`), logFile: join(dir, `${id}.log`) });
    }
    const group = cms.map((c) => ({ id: c.id, broker: o.brokerUrl, services: c.services, capacity: 100 }));
    for (const c of cms) {
      const config = {
        cmId: c.id,
        broker: o.brokerUrl,
        http: { host: '127.0.0.1', port: c.httpPort },
        group,
        // The story is failover and fallback; load moves would blur it.
        rebalance: { enabled: false },
        signingKey: privateKeyFile,
        keyId: KEY_ID,
        // The boot sequence of the signed state, inside the workspace.
        stateDir: join(dir, 'cms', c.id),
        mqtt: { protocolVersion: 4 },
        console: { enabled: true, tokenFile: consoleTokenFile },
        log: { level: 'info' },
      };
      writeFileSync(c.configFile, `${JSON.stringify(config, null, 2)}\n`);
    }
    return {
      dir,
      publicPem,
      privateKeyFile,
      consoleTokenFile,
      cms,
      kept: o.keep === true,
      pointers: () => cms.map((c) => ({ id: c.id, broker: o.brokerUrl, services: c.services })),
      stateDir(phoneId) {
        const d = join(dir, 'phones', phoneId);
        mkdirSync(d, { recursive: true });
        return d;
      },
      remove,
    };
  } catch (err) {
    remove();
    throw err;
  }
}
