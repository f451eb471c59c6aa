/**
 * The test-port allocator (test/helpers/ports.ts): ports outside the kernel's
 * ephemeral range, claimed by lock files that a dead owner's run gives up.
 */
import test from 'ava';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  canBind,
  claimPort,
  isAddressInUse,
  lockIsStale,
  lockText,
  parseEphemeralRange,
  parseLock,
  parseProcStart,
  pickCandidate,
  portPool,
  POOL_FLOOR,
  type PortRange,
} from '../../helpers/ports.js';

test('the ephemeral range is read as /proc prints it; anything else is not a range', (t) => {
  t.deepEqual(parseEphemeralRange('32768\t60999\n'), { low: 32768, high: 60999 });
  t.deepEqual(parseEphemeralRange(' 1024 65535 '), { low: 1024, high: 65535 });
  for (const bad of ['', '32768', '60999 32768', '0 100', '1 70000', 'a b']) t.is(parseEphemeralRange(bad), undefined, bad);
});

test('ports are never drawn from the ephemeral range: the pool is what lies below and above it', (t) => {
  t.deepEqual(portPool({ low: 32768, high: 60999 }), [
    { low: POOL_FLOOR, high: 32767 },
    { low: 61000, high: 65535 },
  ]);
  t.deepEqual(portPool({ low: 10000, high: 60999 }), [{ low: 61000, high: 65535 }], 'an ephemeral range below the floor leaves the top');
  t.deepEqual(portPool({ low: 40000, high: 65535 }), [{ low: POOL_FLOOR, high: 39999 }]);
  t.deepEqual(portPool({ low: 1024, high: 65535 }), [{ low: POOL_FLOOR, high: 65535 }], 'nothing outside: the locks alone keep tests apart');
});

test('a candidate run of span ports lies inside one range of the pool, and every start can come out', (t) => {
  const pool: PortRange[] = [
    { low: 100, high: 103 },
    { low: 200, high: 200 },
    { low: 300, high: 302 },
  ];
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const p = pickCandidate(pool, 2, () => i / 1000)!;
    t.true(pool.some((r) => p >= r.low && p + 1 <= r.high), `run ${p}..${p + 1} inside one range`);
    seen.add(p);
  }
  t.deepEqual([...seen].sort((a, b) => a - b), [100, 101, 102, 300, 301]);
  t.is(pickCandidate(pool, 1, () => 0), 100);
  t.is(pickCandidate(pool, 1, () => 0.999_999), 302);
  t.is(pickCandidate(pool, 5, () => 0.5), undefined, 'no range is 5 long');
});

test('a lock names its owner by pid and start time; a reused pid or a gone process makes it stale', (t) => {
  const text = lockText({ pid: 4242, start: '123456' });
  t.deepEqual(parseLock(text), { pid: 4242, start: '123456' });
  t.false(lockIsStale(text, 60_000, () => '123456'), 'owner alive');
  t.true(lockIsStale(text, 0, () => undefined), 'owner gone');
  t.true(lockIsStale(text, 0, () => '999999'), 'pid reused by another process');
  t.false(lockIsStale('', 5_000, () => undefined), 'a foreign or torn text is left alone for a while');
  t.true(lockIsStale('garbage', 60_000, () => undefined), '…then cleared');
});

test("a process's start time is read past a command name holding spaces and parentheses", (t) => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3)).join(' ');
  t.is(parseProcStart(`77 (a b) (c)) ${fields}`), '22');
});

test('the child output that means "pick another port" is recognised', (t) => {
  t.true(isAddressInUse('1733580000: Error: Address already in use'));
  t.true(isAddressInUse(' 0(123) ERROR: <core> [core/tcp_main.c:2985]: tcp_init(): bind(7, 0x7f, 16) on 127.0.0.1: Address already in use'));
  t.true(isAddressInUse('listen EADDRINUSE: address already in use 127.0.0.1:20001'));
  t.false(isAddressInUse('Connection refused'));
});

/** A lock dir of its own, and two ports held in the machine-wide scheme so nothing else binds them meanwhile. */
async function sandbox(t: { teardown(fn: () => void): void }): Promise<{ dir: string; x: number; y: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-ports-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // x and x+1 both, for the span test.
  return { dir, x: await claimPort({ span: 2, udp: true }), y: await claimPort() };
}

test('claims never hand one port out twice, and each claim is a lock file naming this process', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-ports-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Three ports held in the machine-wide scheme (nothing else binds them), as the whole pool.
  const pool = await Promise.all([0, 1, 2].map(async () => claimPort().then((p) => ({ low: p, high: p }))));
  // A random source that keeps proposing the same candidates: the locks must steer claims apart.
  let i = 0;
  const random = (): number => [0, 0, 0, 0.5, 0.5, 0.9][i++ % 6]!;
  const got: number[] = [];
  for (let k = 0; k < 3; k++) got.push(await claimPort({ dir, pool, random }));
  t.deepEqual([...got].sort(), pool.map((r) => r.low).sort());
  for (const p of got) t.deepEqual(parseLock(readFileSync(path.join(dir, String(p)), 'utf8'))?.pid, process.pid);
  t.deepEqual(readdirSync(dir).sort(), got.map(String).sort(), 'no temp files left behind');
  await t.throwsAsync(claimPort({ dir, pool, random, attempts: 10 }), { message: /no free run of 1/ }, 'all taken');
});

test("a live process's lock is respected; a dead one's is taken over", async (t) => {
  const { dir, x, y } = await sandbox(t);
  const pool = [
    { low: x, high: x },
    { low: y, high: y },
  ];
  // Our own start time on x: a live owner.
  const mine = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
  writeFileSync(path.join(dir, String(x)), lockText({ pid: process.pid, start: parseProcStart(mine)! }));
  let n = 0;
  t.is(await claimPort({ dir, pool, random: () => (n++ === 0 ? 0 : 0.9) }), y, 'the live lock on x is skipped');

  rmSync(path.join(dir, String(y)));
  writeFileSync(path.join(dir, String(x)), lockText({ pid: process.pid, start: 'another-life' }));
  t.is(await claimPort({ dir, pool, random: () => 0 }), x, 'the lock of a pid now someone else is reclaimed');
  t.deepEqual(parseLock(readFileSync(path.join(dir, String(x)), 'utf8'))?.pid, process.pid);
});

test('a port something else listens on is skipped (TCP, and UDP when asked), and its lock given back', async (t) => {
  const { dir, x, y } = await sandbox(t);
  const pool = [
    { low: x, high: x },
    { low: y, high: y },
  ];
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(x, '127.0.0.1', r));
  t.teardown(() => udp.close());
  t.true(await canBind(x, false), 'UDP alone does not block TCP');
  t.false(await canBind(x, true));
  let n = 0;
  t.is(await claimPort({ dir, pool, udp: true, random: () => (n++ === 0 ? 0 : 0.9) }), y);
  t.deepEqual(readdirSync(dir), [String(y)], "x's lock given back");

  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  t.false(await canBind((server.address() as net.AddressInfo).port, false));
});

test('a span claims adjacent ports, all or none', async (t) => {
  const { dir, x } = await sandbox(t);
  const pool = [{ low: x, high: x + 1 }];
  const live = lockText({ pid: process.pid, start: parseProcStart(readFileSync(`/proc/${process.pid}/stat`, 'utf8'))! });
  writeFileSync(path.join(dir, String(x + 1)), live);
  await t.throwsAsync(claimPort({ dir, span: 2, pool, attempts: 3 }), { message: /no free run of 2/ });
  t.deepEqual(readdirSync(dir), [String(x + 1)], "x's lock given back when x+1 is taken");
  rmSync(path.join(dir, String(x + 1)));
  t.is(await claimPort({ dir, span: 2, udp: true, pool }), x);
  t.deepEqual(readdirSync(dir).sort(), [String(x), String(x + 1)].sort());
  await t.throwsAsync(claimPort({ dir, span: 3, pool }), { message: /no free run of 3/ });
});
