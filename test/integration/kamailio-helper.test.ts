/**
 * The Kamailio the SIP tests stand on (test/helpers/kamailio.ts with
 * deploy/kamailio/kamailio.cfg): it answers OPTIONS to itself with 200 over
 * TCP, and a kill -9 leaves nothing on its port (its workers die with it).
 */
import test from 'ava';
import net from 'node:net';
import { startKamailio } from '../helpers/kamailio.js';

function options(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(
        [
          `OPTIONS sip:127.0.0.1:${port};transport=tcp SIP/2.0`,
          'Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKhelper1',
          'Max-Forwards: 70',
          'From: <sip:probe@127.0.0.1>;tag=1',
          `To: <sip:127.0.0.1:${port}>`,
          'Call-ID: helper-1@127.0.0.1',
          'CSeq: 1 OPTIONS',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
    });
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.includes('\r\n\r\n')) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

const refused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });

test('kamailio answers OPTIONS with 200; kill -9 leaves the port refusing; restart serves again', async (t) => {
  const k = await startKamailio();
  t.teardown(() => k.stop());
  t.regex(await options(k.port), /^SIP\/2\.0 200 /);
  await k.kill('SIGKILL');
  t.true(await refused(k.port), `nothing answers on ${k.port} after kill -9\n${k.logTail()}`);
  await k.restart();
  t.regex(await options(k.port), /^SIP\/2\.0 200 /);
});
