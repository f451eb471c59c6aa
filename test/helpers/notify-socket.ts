/**
 * A real NOTIFY_SOCKET for tests: a unix datagram socket bound by a perl
 * one-liner (perl-base is Essential on Debian; Node has no unix datagram
 * sockets) that prints every datagram. It reads with plain recv(), so the
 * kernel closes systemd-notify's BARRIER=1 fd as PID 1 would.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { until } from './pty.js';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export function need(cmd: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) throw new Error(`${cmd} is not installed (Debian package ${pkg}); these tests need it`);
}

const PERL_RECEIVER = `
use Socket;
$| = 1;
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
bind($s, pack_sockaddr_un($ARGV[0])) or die "bind: $!";
print "LISTENING\\n";
while (defined(recv($s, my $buf, 65536, 0))) { print unpack("H*", $buf), "\\n"; }
`;

export interface Receiver {
  socket: string;
  /** Everything received so far, as text. */
  text(): string;
  close(): void;
}

export async function perlReceiver(t: { teardown(fn: () => void): void }): Promise<Receiver & { datagrams(): string[][] }> {
  need('perl', 'perl-base');
  need('systemd-notify', 'systemd');
  const dir = mkdtempSync(path.join(tmpdir(), 'sdn-'));
  const socket = path.join(dir, 'notify');
  const child = spawn('perl', ['-e', PERL_RECEIVER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  live.add(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const close = (): void => {
    child.kill('SIGKILL');
    live.delete(child);
    rmSync(dir, { recursive: true, force: true });
  };
  t.teardown(close);
  await until(() => out.startsWith('LISTENING\n'), 10_000, 'the perl receiver');
  const datagrams = (): string[][] =>
    out
      .split('\n')
      .slice(1)
      .filter((l) => l !== '')
      .map((hex) => Buffer.from(hex, 'hex').toString('utf8').split('\n'));
  return { socket, close, datagrams, text: () => datagrams().map((d) => d.join('\n')).join('\n') };
}

