/**
 * Start a shipped unit's service the way systemd would, without systemd: its
 * `ExecStart=` argv and `Environment=` exactly as parsed from the unit file
 * (test/helpers/systemd-unit.ts), the absolute paths it names made real
 * inside a private mount namespace, its user and a few process attributes
 * applied. We run as root, so:
 *
 *   unshare --mount --propagation private  (a mount namespace of our own: nothing leaks to the host)
 *     bash: bind the staged image onto /usr/lib/ipphone, the chosen node onto
 *           /usr/bin/node, test directories onto /etc/…, /var/lib/…; copy
 *           LoadCredential= files into /run/credentials/UNIT (a tmpfs);
 *           UMask=, WorkingDirectory=, LimitNOFILE=
 *       perl  PR_SET_MDWE                   (MemoryDenyWriteExecute=yes, as systemd ≥ 253 does)
 *         setpriv  User=/Group=/SupplementaryGroups= (or a DynamicUser= id), NoNewPrivileges=,
 *                  an empty CapabilityBoundingSet=
 *           env -i: exec the unit's argv with exactly the unit's environment
 *
 * A mount point that does not exist on the host (/usr/lib/ipphone, /etc/ipphone-agent …)
 * is made inside an overlay of its nearest existing parent, private to the
 * namespace, so the host's file system is never written.
 *
 * The environment is the unit's `Environment=` over what systemd itself sets
 * for these settings (PATH; HOME, USER, LOGNAME, SHELL for User=;
 * STATE_DIRECTORY for StateDirectory=; CREDENTIALS_DIRECTORY for
 * LoadCredential=). Left out because nothing here can receive it:
 * NOTIFY_SOCKET and WATCHDOG_USEC (the sd_notify tests cover them),
 * JOURNAL_STREAM, INVOCATION_ID. Not applied: the cgroup settings (MemoryMax=,
 * DeviceAllow=), the seccomp filters and ProtectSystem= and its kin: those
 * are checked by systemd-analyze (test/integration/systemd-units).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { procOf, type Proc } from './cluster.js';
import { serviceList, serviceSetting } from './systemd-unit.js';
import { shippedUnit, wxWrapper } from './unit-runtime.js';

/** systemd's default PATH for system services (systemd.exec(7), "Environment variables in spawned processes"). */
const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';
/** A stand-in for a DynamicUser= id: systemd allocates from 61184–65519. */
const DYNAMIC_ID = 61_184 + (process.pid % 4000);
/** Stand-ins for names the image creates (sysusers.d, systemd/README.md) but this machine lacks. */
const STAND_IN_BASE = 60_100;

export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
  user: string;
  home: string;
  /** Names this machine lacks, replaced by stand-in ids (said in the test log). */
  standIns: string[];
}

function getent(db: 'passwd' | 'group', name: string): string[] | undefined {
  const r = spawnSync('getent', [db, name], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split(':') : undefined;
}

/** The credentials the unit's User=, Group=, SupplementaryGroups= and DynamicUser= ask for, resolved on this machine. */
export function unitIdentity(unit: string): Identity {
  const { settings } = shippedUnit(unit);
  const standIns: string[] = [];
  const standIn = (name: string, i: number): number => (standIns.push(name), STAND_IN_BASE + i);
  if (serviceSetting(settings, 'DynamicUser') === 'yes') return { uid: DYNAMIC_ID, gid: DYNAMIC_ID, groups: [], user: unit.replace(/\.service$/, ''), home: '/', standIns: [] };
  const user = serviceSetting(settings, 'User');
  if (user === undefined) return { uid: 0, gid: 0, groups: [], user: 'root', home: '/root', standIns: [] };
  const pw = getent('passwd', user);
  const uid = pw ? Number(pw[2]) : standIn(`user ${user}`, 0);
  const groupName = serviceSetting(settings, 'Group');
  const gid = groupName === undefined ? (pw ? Number(pw[3]) : uid) : Number(getent('group', groupName)?.[2] ?? standIn(`group ${groupName}`, 1));
  const groups = serviceList(settings, 'SupplementaryGroups').map((g, i) => Number(getent('group', g)?.[2] ?? standIn(`group ${g}`, 10 + i)));
  return { uid, gid, groups, user, home: pw?.[5] ?? `/var/lib/${serviceSetting(settings, 'StateDirectory') ?? ''}`, standIns };
}

export interface UnitRun {
  /** The unit file under systemd/. */
  unit: string;
  /** The node binary the image's /usr/bin/node is for this run. */
  node: string;
  /** A staged usr/lib/ipphone (test/helpers/node-runtimes.ts stageRuntimeImage). */
  lib: string;
  /** Absolute path in the service's view → host directory or file (configs; the StateDirectory=). */
  binds: Record<string, string>;
  /** Name in failure output. */
  name: string;
}

const expected = new Map<string, { env: Record<string, string>; argv: string[]; identity: Identity }>();

/** What the service started as `name` must see: its environment, argv and credentials (for checks against /proc). */
export function expectedOf(name: string): { env: Record<string, string>; argv: string[]; identity: Identity } {
  const e = expected.get(name);
  if (e === undefined) throw new Error(`no unit started as ${name}`);
  return e;
}

/** The environment, argv and ids of a running process, from /proc. */
export function procView(pid: number): { env: Record<string, string>; argv: string[]; uid: number; gid: number; groups: number[]; noNewPrivs: boolean; capBnd: string } {
  const env = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((e) => e !== '')
      .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k: string): string => new RegExp(`^${k}:[ \\t]*(.*)$`, 'm').exec(status)?.[1] ?? '';
  return {
    env,
    argv,
    uid: Number(field('Uid').split(/\s+/)[0]),
    gid: Number(field('Gid').split(/\s+/)[0]),
    groups: field('Groups').trim() === '' ? [] : field('Groups').trim().split(/\s+/).map(Number),
    noNewPrivs: field('NoNewPrivs') === '1',
    capBnd: field('CapBnd'),
  };
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Start the unit's service as described above; the Proc's pid is the
 * service's main process (unshare, bash, perl and setpriv each exec the
 * next), so a signal to it is a signal to the service.
 */
export function startUnit(o: UnitRun, spawnIt = spawnNamed): Proc {
  const { settings, env, exec } = shippedUnit(o.unit);
  if (exec.path !== '/usr/bin/node') throw new Error(`${o.unit}: ExecStart= runs ${exec.path}, not /usr/bin/node`);
  const id = unitIdentity(o.unit);
  const scratch = mkdtempSync(join(tmpdir(), 'unit-exec-'));
  const state = serviceSetting(settings, 'StateDirectory');
  const creds = serviceList(settings, 'LoadCredential');
  // systemd creates a StateDirectory= that does not exist yet: a fresh one under scratch stands in unless the test binds its own.
  const binds = { ...o.binds };
  if (state !== undefined && binds[`/var/lib/${state}`] === undefined) {
    binds[`/var/lib/${state}`] = join(scratch, 'state-directory');
    mkdirSync(binds[`/var/lib/${state}`]!);
  }
  const lines = [
    'set -eu',
    `scratch=${q(scratch)}`,
    // Make $1 mountable: create it inside a namespace-private overlay of its nearest existing parent.
    'mountpoint_for() { local dst=$1 kind=$2 a; [ -e "$dst" ] && return 0; a=$(dirname "$dst"); while [ ! -e "$a" ]; do a=$(dirname "$a"); done',
    '  [ "$a" = / ] && { echo "unit-exec: will not overlay / for $dst" >&2; exit 97; }',
    '  local n; n=$scratch/ov$(echo "$a" | tr / _); if [ ! -d "$n" ]; then mkdir -p "$n/u" "$n/w"; mount -t overlay overlay -o "lowerdir=$a,upperdir=$n/u,workdir=$n/w" "$a"; fi',
    '  if [ "$kind" = dir ]; then mkdir -p "$dst"; else mkdir -p "$(dirname "$dst")"; : > "$dst"; fi; }',
    'bind() { if [ -d "$1" ]; then mountpoint_for "$2" dir; else mountpoint_for "$2" file; fi; mount --bind "$1" "$2"; }',
    `bind ${q(o.node)} /usr/bin/node`,
    `bind ${q(o.lib)} /usr/lib/ipphone`,
    ...Object.entries(binds).map(([dst, src]) => `bind ${q(src)} ${q(dst)}`),
  ];
  if (state !== undefined) {
    const mode = serviceSetting(settings, 'StateDirectoryMode') ?? '0755';
    lines.push(`chown ${id.uid}:${id.gid} /var/lib/${state}`, `chmod ${mode} /var/lib/${state}`);
  }
  const credDir = `/run/credentials/${o.unit}`;
  if (creds.length > 0) {
    lines.push(`mountpoint_for ${q(credDir)} dir`, `mount -t tmpfs -o mode=0700,size=1m tmpfs ${q(credDir)}`);
    // A SetCredential= of the same name is the default when the LoadCredential= file cannot be read
    // (systemd.exec(5)); without one a missing file fails the start, as `cp` fails here.
    const defaults = new Map(serviceList(settings, 'SetCredential').map((c) => c.split(/:(.*)/s) as [string, string]));
    for (const c of creds) {
      const [name, src] = c.split(/:(.*)/s) as [string, string];
      const dst = q(`${credDir}/${name}`);
      const fallback = defaults.get(name);
      lines.push(fallback === undefined ? `cp ${q(src)} ${dst}` : `if [ -r ${q(src)} ]; then cp ${q(src)} ${dst}; else printf '%b' ${q(fallback)} > ${dst}; fi`);
      lines.push(`chmod 0400 ${dst}`, `chown ${id.uid}:${id.gid} ${dst}`);
    }
    lines.push(`chown ${id.uid}:${id.gid} ${q(credDir)}`, `chmod 0500 ${q(credDir)}`);
  }
  const umask = serviceSetting(settings, 'UMask');
  if (umask !== undefined) lines.push(`umask ${umask}`);
  const nofile = serviceSetting(settings, 'LimitNOFILE');
  // A sandbox whose hard limit is lower (no CAP_SYS_RESOURCE to raise it) gets its hard limit, said on stderr.
  if (nofile !== undefined) lines.push(`ulimit -n ${nofile} 2>/dev/null || { h=$(ulimit -Hn); echo "unit-exec: LimitNOFILE=${nofile} is above this machine's hard limit $h; using $h" >&2; ulimit -Sn "$h"; }`);
  lines.push(`cd ${q(serviceSetting(settings, 'WorkingDirectory') ?? '/')}`);

  const prefix: string[] = [];
  if (serviceSetting(settings, 'MemoryDenyWriteExecute') === 'yes') {
    const wx = wxWrapper();
    if (!wx.supported) throw new Error(`${o.unit} sets MemoryDenyWriteExecute=yes and this kernel cannot enforce it: ${wx.why}`);
    prefix.push('/usr/bin/perl', ...wx.args.slice(wx.args.indexOf('-e')));
  }
  if (!exec.privileged) {
    prefix.push('/usr/bin/setpriv', `--reuid=${id.uid}`, `--regid=${id.gid}`, id.groups.length > 0 ? `--groups=${id.groups.join(',')}` : '--clear-groups');
    if (serviceSetting(settings, 'NoNewPrivileges') === 'yes') prefix.push('--no-new-privs');
    if (serviceSetting(settings, 'CapabilityBoundingSet') === '') prefix.push('--bounding-set=-all', '--inh-caps=-all');
    prefix.push('--');
  }
  const environment: Record<string, string> = { PATH: SYSTEMD_PATH };
  if (serviceSetting(settings, 'User') !== undefined || serviceSetting(settings, 'DynamicUser') === 'yes') Object.assign(environment, { HOME: id.home, USER: id.user, LOGNAME: id.user, SHELL: '/usr/sbin/nologin' });
  if (state !== undefined) environment.STATE_DIRECTORY = `/var/lib/${state}`;
  if (creds.length > 0) environment.CREDENTIALS_DIRECTORY = credDir;
  Object.assign(environment, env);
  // setpriv and perl exec the path as argv[0]: an ExecStart=@ with another argv[0] (the units have none) is not supported.
  if (exec.argv[0] !== exec.path) throw new Error(`${o.unit}: ExecStart=@ with a different argv[0] is not supported here`);
  // env -i: bash exports PWD, OLDPWD, SHLVL of its own; the service gets exactly `environment`.
  const envArgs = ['/usr/bin/env', '-i', ...Object.entries(environment).map(([k, v]) => `${k}=${v}`)];
  lines.push(`exec ${[...envArgs, ...prefix, exec.path, ...exec.argv.slice(1)].map(q).join(' ')}`);
  expected.set(o.name, { env: environment, argv: exec.argv, identity: id });
  const p = spawnIt('/usr/bin/unshare', ['--mount', '--propagation', 'private', '--', '/usr/bin/bash', '-c', lines.join('\n')], { PATH: SYSTEMD_PATH }, o.name);
  void p.exited.then(() => rmSync(scratch, { recursive: true, force: true }));
  return p;
}

/** `command ARGS…` with exactly `env`, its output kept (as test/helpers/cluster.ts keeps its children's). */
export function spawnNamed(command: string, args: string[], env: Record<string, string>, name: string): Proc {
  return procOf(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env }), name);
}
