/**
 * The shipped units started as systemd starts them, on every supported Node
 * line: each unit's `ExecStart=` and `Environment=` parsed with systemd's
 * rules (test/helpers/systemd-unit.ts) and run literally, with that
 * environment only, as the unit's user, under W^X where the unit asks for it,
 * against the staged image with the native addons built for that runtime,
 * inside a private mount namespace that puts the image, the runtime and the
 * test's configs at the absolute paths the units name
 * (test/helpers/unit-exec.ts says what is and is not applied).
 *
 * Two call managers from ipphone-cm.service serve /healthz; an agent from
 * ipphone-agent.service homes on cm-a, keeps its state in its StateDirectory,
 * and rehomes on cm-b after a real kill -9 of cm-a. One test per Node line,
 * so a failure names the runtime; a runtime that cannot be had fails.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type Proc } from '../helpers/cluster.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { ensureImage, nodeRuntime, stageRuntimeImage, SUPPORTED_MAJORS } from '../helpers/node-runtimes.js';
import { ROOT } from '../helpers/programs.js';
import { expectedOf, procView, startUnit, unitIdentity } from '../helpers/unit-exec.js';

const CREDENTIAL = '/run/credentials/ipphone-cm.service/signing-key.pem';

test.before(() => {
  ensureImage();
  const u = spawnSync('unshare', ['--mount', '--propagation', 'private', 'true'], { encoding: 'utf8' });
  if (u.status !== 0) throw new Error(`this test needs root and mount namespaces (unshare --mount): ${u.stderr}`);
});

/** A directory the service's user can read (mkdtemp makes 0700 ones). */
function readableDir(parent: string, name: string): string {
  const d = join(parent, name);
  mkdirSync(d, { mode: 0o755 });
  return d;
}

for (const major of SUPPORTED_MAJORS) {
  test.serial(`Node ${major}: both units' own command lines start; the CM serves /healthz, the agent homes and rehomes after kill -9`, async (t) => {
    t.timeout(180_000);
    const rt = nodeRuntime(major);
    const lib = stageRuntimeImage(rt);
    t.log(`node ${rt.version} (${rt.node}), image ${lib}`);
    const agentId = unitIdentity('ipphone-agent.service');
    if (agentId.standIns.length > 0) t.log(`not on this machine, replaced by stand-in ids: ${agentId.standIns.join(', ')}`);

    const mosq = await startMosquitto();
    t.teardown(() => mosq.stop());
    const c = new Cluster();
    t.teardown(() => c.close());
    const top = mkdtempSync(join(tmpdir(), `unit-exec-${major}-`));
    t.teardown(() => rmSync(top, { recursive: true, force: true }));
    await c.defineGroup(['cm-a', 'cm-b'].map((id) => ({ id, broker: mosq.url })));
    await c.observe(mosq.url);
    const started: [string, Proc][] = [];

    for (const g of c.group) {
      const etc = readableDir(top, `etc-${g.id}`);
      copyFileSync(c.keyPath, join(etc, 'signing-key.pem'));
      const port = Number(new URL(g.services).port);
      const cfg = { cmId: g.id, broker: g.broker, http: { host: '127.0.0.1', port }, group: c.group, signingKey: CREDENTIAL, keyId: 'ops-1', topicPrefix: c.prefix, keepalive: { phoneIntervalMs: 1000 }, rebalance: { enabled: false }, log: { level: 'info' } };
      writeFileSync(join(etc, 'cm.json'), JSON.stringify(cfg, null, 2), { mode: 0o644 });
      const name = `${g.id} (ipphone-cm.service, node ${major})`;
      const p = startUnit({ unit: 'ipphone-cm.service', node: rt.node, lib, binds: { '/etc/ipphone-cm': etc }, name });
      c.cms.set(g.id, p);
      started.push([name, p]);
      const health = `http://127.0.0.1:${port}/healthz`;
      await waitFor(async () => (await fetch(health).catch(() => undefined))?.status === 200 || p.child.exitCode !== null, { timeoutMs: 30_000, intervalMs: 200, what: `${g.id} /healthz 200` }).catch((err: Error) => {
        throw new Error(`${err.message}\n${p.output()}`);
      });
      t.is(p.child.exitCode, null, p.output());
      t.is((await fetch(health)).status, 200, `${g.id}: ${health}`);
    }

    const etc = readableDir(top, 'etc-agent');
    const agentCfg = JSON.parse(readFileSync(c.agentConfig('p-unit'), 'utf8')) as Record<string, unknown>;
    delete agentCfg.stateDir; // the unit's --state-dir gives it
    writeFileSync(join(etc, 'agent.json'), JSON.stringify(agentCfg, null, 2), { mode: 0o644 });
    copyFileSync(join(ROOT, 'hw/boards/headless.json'), join(etc, 'board.json'));
    const state = readableDir(top, 'state');
    const agentName = `p-unit (ipphone-agent.service, node ${major})`;
    const agent = startUnit({ unit: 'ipphone-agent.service', node: rt.node, lib, binds: { '/etc/ipphone-agent': etc, '/var/lib/ipphone-agent': state }, name: agentName });
    c.agents.set('p-unit', agent);
    started.push([agentName, agent]);
    await c.waitHome('p-unit', 'cm-a', 60_000);
    for (const [name, p] of started) {
      // The process systemd would have started: the unit's argv, exactly the environment, its user, no new privileges, no capabilities.
      const want = expectedOf(name);
      const seen = procView(p.pid);
      t.deepEqual(seen.argv, want.argv, `${name}: argv`);
      t.deepEqual(seen.env, want.env, `${name}: environment`);
      t.deepEqual([seen.uid, seen.gid, [...seen.groups].sort()], [want.identity.uid, want.identity.gid, [...want.identity.groups].sort()], `${name}: credentials`);
      t.true(seen.noNewPrivs, `${name}: NoNewPrivileges=yes`);
      t.is(seen.capBnd, '0000000000000000', `${name}: CapabilityBoundingSet= (empty)`);
    }
    t.is(procView(agent.pid).env.NODE_OPTIONS, undefined, 'the agent unit sets no NODE_OPTIONS');
    // The agent saves the group's list once an ack has carried it, after homing: wait for the file.
    await waitFor(() => readdirSync(state).length > 0, { timeoutMs: 30_000, what: 'a state file in the StateDirectory' }).catch(() => undefined);
    t.true(readdirSync(state).length > 0, 'the agent keeps its state in its StateDirectory');

    c.cms.get('cm-a')!.signal('SIGKILL');
    await c.waitHome('p-unit', 'cm-b', 30_000);
    t.like(await c.lastMove('p-unit', 'cm-b'), { from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
    t.is(agent.child.exitCode, null, agent.output());
    // Node 20/22 say once that --jitless turns WebAssembly off; nothing else from V8.
    t.notRegex(agent.output(), /Check failed|Fatal error|ReferenceError|bad option|is not allowed in NODE_OPTIONS/, agent.output());
    t.notRegex(c.cms.get('cm-b')!.output(), /Check failed|Fatal error|bad option|is not allowed in NODE_OPTIONS/);
    t.true(existsSync(lib));
  });
}
