import test from 'ava';
import { aclFile, aclProblems, aclRules, type AclGroup } from '../../../src/admin/acl.js';
import { isIpphoneError } from '../../../src/lib/errors.js';

const G: AclGroup = { prefix: 'ipphone/v1', callManagers: ['cm-a', 'cm-b'], operators: ['ops-1'] };

/** The file's rule lines (no comments, no blanks). */
const ruleLines = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

test('the whole rule set of a two-member group with one operator', (t) => {
  t.deepEqual(ruleLines(aclFile(G)), [
    'pattern write ipphone/v1/phone/%u/status',
    'pattern write ipphone/v1/phone/%u/event',
    'pattern write ipphone/v1/phone/%u/config/result',
    'pattern write ipphone/v1/cm/+/keepalive/%u',
    'pattern write ipphone/v1/cm/+/challenge/%u',
    'pattern read ipphone/v1/phone/%u/ack',
    'pattern read ipphone/v1/phone/%u/pointers',
    'pattern read ipphone/v1/phone/%u/config',
    'pattern read ipphone/v1/phone/%u/status',
    'pattern read ipphone/v1/cm/+/state',
    'pattern read ipphone/v1/cm/+/challenge/%u/answer',
    'user cm-a',
    'topic write ipphone/v1/cm/cm-a/state',
    'topic write ipphone/v1/cm/cm-a/load',
    'topic write ipphone/v1/phone/+/ack',
    'topic write ipphone/v1/phone/+/pointers',
    'topic read ipphone/v1/cm/cm-a/keepalive',
    'topic read ipphone/v1/cm/cm-a/keepalive/+',
    'topic read ipphone/v1/cm/+/state',
    'topic read ipphone/v1/cm/+/load',
    'topic read ipphone/v1/cm/cm-a/challenge/+',
    'topic write ipphone/v1/cm/cm-a/challenge/+/answer',
    'topic write ipphone/v1/cm/+/challenge/cm-a',
    'topic read ipphone/v1/cm/+/challenge/cm-a/answer',
    'topic read ipphone/v1/phone/+/status',
    'topic read ipphone/v1/phone/+/event',
    'user cm-b',
    'topic write ipphone/v1/cm/cm-b/state',
    'topic write ipphone/v1/cm/cm-b/load',
    'topic write ipphone/v1/phone/+/ack',
    'topic write ipphone/v1/phone/+/pointers',
    'topic read ipphone/v1/cm/cm-b/keepalive',
    'topic read ipphone/v1/cm/cm-b/keepalive/+',
    'topic read ipphone/v1/cm/+/state',
    'topic read ipphone/v1/cm/+/load',
    'topic read ipphone/v1/cm/cm-b/challenge/+',
    'topic write ipphone/v1/cm/cm-b/challenge/+/answer',
    'topic write ipphone/v1/cm/+/challenge/cm-b',
    'topic read ipphone/v1/cm/+/challenge/cm-b/answer',
    'topic read ipphone/v1/phone/+/status',
    'topic read ipphone/v1/phone/+/event',
    'user ops-1',
    'topic write ipphone/v1/phone/+/config',
    'topic write ipphone/v1/phone/+/pointers',
    'topic read ipphone/v1/#',
  ]);
});

test('no rule precedes the first user line but patterns (topic lines there would be for anonymous clients)', (t) => {
  const lines = ruleLines(aclFile(G));
  const firstUser = lines.findIndex((l) => l.startsWith('user '));
  t.true(lines.slice(0, firstUser).every((l) => l.startsWith('pattern ')));
});

test('a phone may never write a call manager\'s state/load, an ack, a push or a config; nor the id-less keep-alive', (t) => {
  const phone = aclRules(G).phone;
  const writes = phone.filter((r) => r.access === 'write').map((r) => r.topic);
  for (const w of writes) t.true(w.includes('%u'), `every phone write names the phone itself: ${w}`);
  t.false(writes.some((w) => /\/(state|load|ack|pointers|config)$/.test(w)));
  t.false(writes.includes('ipphone/v1/cm/+/keepalive'));
  const reads = phone.filter((r) => r.access === 'read').map((r) => r.topic);
  t.false(reads.some((r) => r.includes('#')), 'no multi-level read for phones');
  t.deepEqual(reads.filter((r) => !r.includes('%u')), ['ipphone/v1/cm/+/state']);
});

test('acl-challenge-own-topic-only: a phone writes only its own challenge topic and reads only the answers to it; only the call manager writes its answers', (t) => {
  const rules = aclRules(G);
  const phone = rules.phone.map((r) => `${r.access} ${r.topic}`);
  t.true(phone.includes('write ipphone/v1/cm/+/challenge/%u'));
  t.true(phone.includes('read ipphone/v1/cm/+/challenge/%u/answer'));
  t.false(phone.some((r) => r.startsWith('write') && r.endsWith('/answer')), 'no phone writes an answer');
  for (const cm of rules.callManagers) {
    const writes = cm.rules.filter((r) => r.access === 'write').map((r) => r.topic);
    t.true(writes.includes(`ipphone/v1/cm/${cm.id}/challenge/+/answer`));
    t.false(writes.some((w) => w.endsWith('/answer') && !w.startsWith(`ipphone/v1/cm/${cm.id}/`)), 'answers only for itself');
  }
});

test('the header carries the known mosquitto caveats', (t) => {
  const text = aclFile(G);
  t.regex(text, /eclipse-mosquitto\/mosquitto#3552/);
  t.regex(text, /does not check SUBSCRIBE, only delivery/);
  t.regex(text, /use_username_as_clientid true is what stops/);
  t.regex(text, /CVE-2017-7650/);
  t.regex(text, /use_identity_as_username true/);
  t.true(text.endsWith('\n'));
});

test('the topic prefix is the config\'s, a trailing slash ignored', (t) => {
  const lines = ruleLines(aclFile({ ...G, prefix: 'lab/phones/' }));
  t.true(lines.filter((l) => !l.startsWith('user ')).every((l) => / lab\/phones\/(phone|cm|#)/.test(l)));
  t.true(lines.includes('topic read lab/phones/#'));
});

test('no operators: phones and call managers only', (t) => {
  const text = aclFile({ ...G, operators: [] });
  t.deepEqual(ruleLines(text).filter((l) => l.startsWith('user ')), ['user cm-a', 'user cm-b']);
});

const bad: [string, Partial<AclGroup>, RegExp[]][] = [
  ['plus in an operator', { operators: ['ops+1'] }, [/operator id "ops\+1": contains "\+": mosquitto cannot pattern-match it safely .*CVE-2017-7650/]],
  ['hash in an operator', { operators: ['#'] }, [/operator id "#": contains "#"/]],
  ['slash in a call manager', { callManagers: ['cm/a'] }, [/call manager id "cm\/a": contains "\/"/]],
  ['several wildcards in one id', { operators: ['a+/#'] }, [/contains "\+", "\/", "#"/]],
  ['empty operator', { operators: [''] }, [/operator id "": is empty/]],
  ['space', { operators: ['jane doe'] }, [/operator id "jane doe": contains whitespace/]],
  ['tab', { operators: ['ops\t1'] }, [/contains whitespace|control character/]],
  ['NUL', { operators: ['ops\u00001'] }, [/contains a control character/]],
  ['newline (would inject an ACL line)', { operators: ['ops\ntopic readwrite #'] }, [/control character/]],
  ['too long', { operators: ['o'.repeat(65)] }, [/longer than 64/]],
  ['operator twice', { operators: ['ops-1', 'ops-1'] }, [/operator id "ops-1": given twice/]],
  ['operator with a call manager\'s id', { operators: ['cm-a'] }, [/operator id "cm-a": is also a call manager id/]],
  ['no call managers', { callManagers: [] }, [/no call managers/]],
  ['wildcard prefix', { prefix: 'a/+' }, [/topicPrefix "a\/\+"/]],
  ['percent in prefix', { prefix: 'a/%u' }, [/topicPrefix "a\/%u".*substituted/]],
  ['empty prefix', { prefix: '/' }, [/topicPrefix/]],
];

for (const [name, change, expected] of bad) {
  test(`refused: ${name}`, (t) => {
    const g = { ...G, ...change };
    const problems = aclProblems(g);
    for (const re of expected) t.true(problems.some((p) => re.test(p)), `${re} in ${JSON.stringify(problems)}`);
    const err = t.throws(() => aclFile(g));
    t.true(isIpphoneError(err, 'CONFIG_INVALID'));
    t.deepEqual((err as { context?: { problems?: unknown } }).context?.problems, problems);
  });
}

test('every bad id is named, not only the first', (t) => {
  const problems = aclProblems({ prefix: 'ipphone/v1', callManagers: ['cm+a', 'cm-b', 'cm/c'], operators: ['', 'o#'] });
  t.is(problems.length, 4);
  for (const id of ['"cm+a"', '"cm/c"', '""', '"o#"']) t.true(problems.some((p) => p.includes(id)), id);
});

test('good ids pass: dots, underscores, @, capitals', (t) => {
  t.deepEqual(aclProblems({ prefix: 'ipphone/v1', callManagers: ['CM_1.east'], operators: ['ops@example.com', 'Ops.2'] }), []);
});
