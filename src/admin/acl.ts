/**
 * The mosquitto `acl_file` for one call-manager group (`ipphone-admin acl`,
 * shared/CONTRACT.md "A real broker"). Pure: ids in, text out.
 *
 * The broker takes identities from client certificates
 * (`use_identity_as_username true`), so a rule names a certificate CN:
 * a `user` block per call manager and per operator, and `pattern` lines on
 * `%u` for phones — every CN that is not listed is a phone, and a pattern can
 * only ever reach that phone's own topics. Topics are exactly those the code
 * uses: src/protocol/topics.ts, the call manager's subscriptions in
 * src/callmanager/ (its keep-alives, each peer's `state` and `load`), the
 * agent's (its own `ack`, `pointers`, `config`; every pointer's `state`; its
 * own liveness challenges and their answers).
 */
import { IpphoneError } from '../lib/errors.js';

/** What the file is made from. */
export interface AclGroup {
  /** Topic prefix (`topicPrefix` of the call manager config); trailing `/` ignored. */
  prefix: string;
  /** The group's call manager ids (certificate CNs of the call managers). */
  callManagers: readonly string[];
  /** Operators' certificate CNs (`--operator`). */
  operators: readonly string[];
}

export type Access = 'read' | 'write';

/** One `topic` (for a user) or `pattern` (for every client) line. */
export interface AclRule {
  access: Access;
  topic: string;
}

/** The rules of the file, by identity: what the text is printed from. */
export interface AclRules {
  /** `pattern` lines: apply to every identity, `%u` being its CN (phones). */
  phone: AclRule[];
  /** `user` blocks, in group order. */
  callManagers: { id: string; rules: AclRule[] }[];
  operators: { id: string; rules: AclRule[] }[];
}

/** X.509's upper bound for a common name (RFC 5280 ub-common-name). */
const MAX_CN = 64;

/** Why `id` cannot be an identity in the file, or undefined when it can. */
function idProblem(id: string): string | undefined {
  if (id === '') return 'is empty';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) return 'contains a control character (NUL, newline, …): it would end or split an ACL line';
  if (/\s/.test(id)) return 'contains whitespace: mosquitto trims and splits ACL lines on it';
  const wild = [...new Set([...id].filter((ch) => ch === '+' || ch === '#' || ch === '/'))];
  if (wild.length > 0) {
    return `contains ${wild.map((ch) => JSON.stringify(ch)).join(', ')}: mosquitto cannot pattern-match it safely (a topic wildcard or level separator in an identity, CVE-2017-7650)`;
  }
  if (id.length > MAX_CN) return `is longer than ${MAX_CN} characters (the most a certificate CN may hold)`;
  return undefined;
}

/** Every reason the group cannot be turned into a safe ACL; empty when it can. */
export function aclProblems(g: AclGroup): string[] {
  const out: string[] = [];
  const p = g.prefix.replace(/\/+$/, '');
  // eslint-disable-next-line no-control-regex
  if (p === '' || /[+#%\s\u0000-\u001f\u007f]/.test(p)) {
    out.push(`topicPrefix ${JSON.stringify(g.prefix)}: must be a topic without + # % whitespace or control characters (% would be substituted in pattern lines)`);
  }
  if (g.callManagers.length === 0) out.push('the group has no call managers');
  const seen = new Map<string, string>();
  const check = (role: 'call manager' | 'operator', id: string): void => {
    const why = idProblem(id);
    if (why !== undefined) {
      out.push(`${role} id ${JSON.stringify(id)}: ${why}`);
      return;
    }
    const before = seen.get(id);
    if (before !== undefined) {
      out.push(before === role ? `${role} id ${JSON.stringify(id)}: given twice` : `${role} id ${JSON.stringify(id)}: is also a ${before} id; one certificate CN can hold one role`);
      return;
    }
    seen.set(id, role);
  };
  for (const id of g.callManagers) check('call manager', id);
  for (const id of g.operators) check('operator', id);
  return out;
}

/** The rules by role. Throws CONFIG_INVALID with every problem (context `{ problems }`). */
export function aclRules(g: AclGroup): AclRules {
  const problems = aclProblems(g);
  if (problems.length > 0) throw new IpphoneError(`cannot make an ACL: ${problems.length} problem(s)`, 'CONFIG_INVALID', { problems });
  const p = g.prefix.replace(/\/+$/, '');
  const w = (topic: string): AclRule => ({ access: 'write', topic });
  const r = (topic: string): AclRule => ({ access: 'read', topic });
  return {
    phone: [
      // Its will is its status ({"online":false}); the will's topic is checked when it is sent.
      w(`${p}/phone/%u/status`),
      w(`${p}/phone/%u/event`),
      w(`${p}/phone/%u/config/result`),
      // Keep-alives that name the phone in the topic: the call manager trusts the topic's id,
      // so a phone can only ever keep itself alive. The id-less P/cm/{cmId}/keepalive is not
      // writable by phones: its payload's phone id could name anyone.
      w(`${p}/cm/+/keepalive/%u`),
      // Liveness challenges (cm-liveness.ts) on the topic that names the phone: its own only, so
      // the call manager's per-challenger limit is a per-certificate limit. It reads only the
      // answers to its own; answers are written by the call managers alone.
      w(`${p}/cm/+/challenge/%u`),
      // Exactly the agent's subscriptions: its own ack, pointers, config; its own status (a
      // retained status of another run overwriting ours is how a cloned phone id shows: mosquitto
      // 2.0 sends no MQTT 5 "session taken over"); every pointer's state.
      r(`${p}/phone/%u/ack`),
      r(`${p}/phone/%u/pointers`),
      r(`${p}/phone/%u/config`),
      r(`${p}/phone/%u/status`),
      r(`${p}/cm/+/state`),
      r(`${p}/cm/+/challenge/%u/answer`),
    ],
    callManagers: g.callManagers.map((id) => ({
      id,
      rules: [
        // Its will is its own offline state.
        w(`${p}/cm/${id}/state`),
        w(`${p}/cm/${id}/load`),
        w(`${p}/phone/+/ack`),
        w(`${p}/phone/+/pointers`),
        // Its keep-alives (the contract's topic and the per-phone one), also when taken
        // through a $share/… group subscription: delivery is checked on the message's topic.
        r(`${p}/cm/${id}/keepalive`),
        r(`${p}/cm/${id}/keepalive/+`),
        // Its peers' (and its own) retained state and load, for failover and rebalancing.
        r(`${p}/cm/+/state`),
        r(`${p}/cm/+/load`),
        // Liveness challenges: those of it (from phones and peers), answered with its signed state;
        // its own of its peers (the phones' pattern lines give it these two as well, spelled out here).
        r(`${p}/cm/${id}/challenge/+`),
        w(`${p}/cm/${id}/challenge/+/answer`),
        w(`${p}/cm/+/challenge/${id}`),
        r(`${p}/cm/+/challenge/${id}/answer`),
        // Phones' status and events, for the read-only operator console (console.ts: the
        // rehomes it shows, the phone lookup). Reading them lets it speak for no one.
        r(`${p}/phone/+/status`),
        r(`${p}/phone/+/event`),
      ],
    })),
    operators: g.operators.map((id) => ({
      id,
      rules: [w(`${p}/phone/+/config`), w(`${p}/phone/+/pointers`), r(`${p}/#`)],
    })),
  };
}

const line = (kind: 'topic' | 'pattern', rule: AclRule): string => `${kind} ${rule.access} ${rule.topic}`;

/** The header: what the file assumes of the broker, and mosquitto's known traps. */
function header(g: AclGroup): string[] {
  return [
    `# mosquitto acl_file for the ipphone call-manager group ${g.callManagers.join(', ')}`,
    `# (topic prefix ${g.prefix.replace(/\/+$/, '')}), made by \`ipphone-admin acl\`. Regenerate it when the group changes.`,
    '#',
    '# It assumes TLS listeners with client certificates and these settings (deploy/mosquitto/mosquitto.conf):',
    '#   require_certificate true, use_identity_as_username true (the CN is the user name, %u),',
    '#   use_username_as_clientid true, allow_anonymous false.',
    '# Every CN that is not a call manager or an operator below is a phone: the pattern lines apply to',
    '# every client, with %u its own CN, so a phone can reach only its own topics. (%u rather than %c:',
    '# the CN is the identity; with use_username_as_clientid the client id is the same string.)',
    '# Anything not allowed here is denied. mosquitto warns at start that the phones\' pattern on',
    '# P/cm/+/state has no %u or %c: it is meant for every client.',
    '#',
    '# Known mosquitto caveats:',
    '# - acl_file does not check SUBSCRIBE, only delivery: a client may subscribe to any filter and is',
    '#   simply never sent what it may not read (retained messages included).',
    '# - A will\'s topic is checked when the broker sends the will, not at CONNECT',
    '#   (eclipse-mosquitto/mosquitto#3552): a forged will is accepted and then dropped when it fires.',
    '# - use_username_as_clientid true is what stops a client that connects with another\'s client id',
    '#   from taking over that session, disconnecting it and firing its genuine will. Keep it on.',
    '#   It also means one certificate = one connection per broker: a second one replaces the first.',
    '# - Identities with + # / are refused by the generator (CVE-2017-7650). The CA must not issue a',
    '#   phone a CN with them either: mosquitto >= 1.4.12 denies patterns to + and #, but a / in a CN',
    '#   would put the phone\'s %u topics one level deeper, where no rule above expects them.',
    '# - Phone ids must not equal a call manager or operator name: the pattern lines apply to them too.',
  ];
}

/** The whole `acl_file` text. Throws CONFIG_INVALID with every problem. */
export function aclFile(g: AclGroup): string {
  const rules = aclRules(g);
  const out = [...header(g), '', '# Phones (every identity; %u = its certificate CN)'];
  for (const rule of rules.phone) out.push(line('pattern', rule));
  for (const cm of rules.callManagers) {
    out.push('', `# Call manager ${cm.id}`, `user ${cm.id}`);
    for (const rule of cm.rules) out.push(line('topic', rule));
  }
  for (const op of rules.operators) {
    out.push('', `# Operator ${op.id}: configures phones and pushes lists; reads everything under the prefix`, `user ${op.id}`);
    for (const rule of op.rules) out.push(line('topic', rule));
  }
  return `${out.join('\n')}\n`;
}
