/**
 * Issue 17: the phone's SIP credentials reach baresip's account and nowhere else. What baresip
 * 1.0.0 sends was captured against Kamailio with digest auth (deploy/kamailio, WITH_AUTH): a
 * refused password is `REGISTER_FAIL` with `param` "401 Unauthorized", and the answer to `uanew`
 * echoes its parameters, the password among them.
 */
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { BaresipUserAgent } from '../../../src/sip/baresip.js';
import { redactSecrets, sipEventOf, sipStatusOf, uanewParams, type CtrlEvent } from '../../../src/sip/baresip-messages.js';
import { NetstringDecoder, encodeNetstring } from '../../../src/sip/netstring.js';
import { capturingLogger } from '../../helpers/log-capture.js';
import net from 'node:net';

const SECRET = 'Zq7-s3cret!pw';

test('uanew carries auth_user and auth_pass when the phone has credentials, nothing when not', (t) => {
  t.is(uanewParams('sip:1001@127.0.0.1:5061;transport=tcp', 120, { user: 'u1001', password: SECRET }), `<sip:1001@127.0.0.1:5061;transport=tcp>;auth_user=u1001;auth_pass=${SECRET};regint=120`);
  t.is(uanewParams('sip:1001@127.0.0.1:5061;transport=tcp', 120, null), '<sip:1001@127.0.0.1:5061;transport=tcp>;regint=120');
});

test('redactSecrets hides every auth_pass value, as baresip echoes it in its answer to uanew', (t) => {
  const echoed = `Creating UA for <sip:1001@127.0.0.1:15061;transport=tcp>;auth_user=1001;auth_pass=${SECRET};regint=60 ...\n`;
  const r = redactSecrets(echoed);
  t.false(r.includes(SECRET));
  t.true(r.includes('auth_pass=(hidden);regint=60'));
  t.is(redactSecrets('<sip:1@h>;auth_pass="a b";x=1'), '<sip:1@h>;auth_pass=(hidden);x=1');
  t.is(redactSecrets(undefined), undefined);
});

test('REGISTER_FAIL carries the registrar\'s status code when it answered (401, 403, 408, 503), none for a transport error', (t) => {
  const ev = (param: string): CtrlEvent => ({ kind: 'event', type: 'REGISTER_FAIL', accountaor: 'sip:1001@127.0.0.1:5061', peeruri: undefined, param });
  t.deepEqual(sipEventOf(ev('401 Unauthorized'), (a) => a), { type: 'register-failed', aor: 'sip:1001@127.0.0.1:5061', reason: '401 Unauthorized', status: 401 });
  t.is((sipEventOf(ev('403 Forbidden'), (a) => a) as { status?: number }).status, 403);
  t.deepEqual(sipEventOf(ev('Connection refused'), (a) => a), { type: 'register-failed', aor: 'sip:1001@127.0.0.1:5061', reason: 'Connection refused' });
  t.is(sipStatusOf('408 Request Timeout'), 408);
  t.is(sipStatusOf('503 Service Unavailable'), 503);
  t.is(sipStatusOf('4011 nonsense'), undefined);
  t.is(sipStatusOf(undefined), undefined);
});

/** A ctrl_tcp stand-in that answers every command as baresip 1.0.0 does (uanew echoes its params; an error for dial). */
async function echoingCtrl(): Promise<{ port: number; commands: Record<string, string>[]; close(): void }> {
  const commands: Record<string, string>[] = [];
  const conns: net.Socket[] = [];
  const server = net.createServer((s) => {
    conns.push(s);
    const d = new NetstringDecoder();
    s.on('error', () => undefined);
    s.on('data', (c) =>
      d.push(c, (p) => {
        const cmd = JSON.parse(p.toString()) as Record<string, string>;
        commands.push(cmd);
        const failing = cmd.command === 'uanew' && commands.filter((x) => x.command === 'uanew').length > 1;
        const data = cmd.command === 'uanew' ? `Creating UA for ${cmd.params} ...\n` : '';
        s.write(encodeNetstring(JSON.stringify({ response: true, ok: cmd.command !== 'uadel' && !failing, data: failing ? `could not create ${cmd.params}` : data, token: cmd.token })));
        if (cmd.command === 'uanew' && !failing) {
          s.write(encodeNetstring(JSON.stringify({ event: true, type: 'REGISTER_FAIL', class: 'register', accountaor: 'sip:1001@127.0.0.1:5061', param: '401 Unauthorized' })));
        }
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, commands, close: () => (conns.forEach((c) => c.destroy()), server.close()) };
}

test('the password reaches baresip\'s uanew and never a log line (debug level, pino output captured) nor an error', async (t) => {
  const srv = await echoingCtrl();
  const { log, lines } = capturingLogger();
  const ua = new BaresipUserAgent({ port: srv.port, log, clock: new FakeClock(), auth: { user: '1001', password: SECRET } });
  t.teardown(() => (void ua.close(), srv.close()));
  const failed = new Promise<unknown>((resolve) =>
    ua.start((e) => {
      if (e.type === 'up') void ua.addAccount('sip:1001@127.0.0.1:5061;transport=tcp', 120);
      if (e.type === 'register-failed') resolve(e);
    }),
  );
  t.like(await failed, { type: 'register-failed', status: 401 });
  t.true(srv.commands.some((c) => c.command === 'uanew' && c.params?.includes(`auth_pass=${SECRET}`)), 'baresip got the password');
  // An account baresip refuses: the error's context carries baresip's answer, redacted.
  const err = await ua.addAccount('sip:1001@127.0.0.1:5061;transport=tcp', 120).catch((e: unknown) => e);
  t.true(isIpphoneError(err, 'SIP_REFUSED'));
  t.false(JSON.stringify((err as { context?: unknown }).context ?? {}).includes(SECRET), 'not in the error');
  t.false(String((err as Error).message).includes(SECRET));
  t.true(lines.length > 3, `debug lines were written (${lines.length})`);
  t.true(lines.some((l) => JSON.stringify(l).includes('auth_pass=(hidden)')), 'the command is logged, redacted');
  for (const l of lines) t.false(JSON.stringify(l).includes(SECRET), `not in: ${JSON.stringify(l)}`);
});
