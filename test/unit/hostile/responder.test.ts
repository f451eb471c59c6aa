/**
 * The call manager's keep-alive responder on hostile payloads: `handle` never
 * throws; it returns a response or a reason string, and counts every refusal
 * in `invalid` (and every answer in `keepalives`). A response's ack is JSON
 * the phone's decoder accepts.
 */
import test from 'ava';
import fc from 'fast-check';
import { ListBook } from '../../../src/callmanager/list-book.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';
import { Responder } from '../../../src/callmanager/responder.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { decodeAck } from '../../../src/protocol/codec.js';
import { generateKeyPair, parsePrivateKey, signEnvelope } from '../../../src/protocol/envelope.js';
import { hostileBytes, pointer } from '../../helpers/arbitraries.js';

const RUNS = 10_000;
const key = parsePrivateKey(generateKeyPair().privatePem);
const VALID: Record<string, unknown>[] = [
  { phone: 'p1', seq: 7, pointersVersion: 0, busy: false },
  { phone: 'p2', seq: 9, pointersVersion: 3, busy: true, probe: true, prev: null, intervalMs: 1000 },
  { phone: 'p3', seq: 1, pointersVersion: 1, busy: false, prev: 'cm-b', intervalMs: 60 },
];

test(`Responder.handle on hostile payloads never throws; refusals are strings and counted (${RUNS} runs)`, (t) => {
  const clock = new FakeClock();
  const book = new ListBook({ group: [pointer('cm-a'), pointer('cm-b')], baseVersion: 3, clock, sign: (b) => signEnvelope(b, key, 'ops-1') });
  const r = new Responder({ cmId: 'cm-a', book, table: new PhoneTable(1000), clock });
  let answered = 0;
  let refused = 0;
  fc.assert(
    fc.property(hostileBytes(VALID), (payload) => {
      let res: ReturnType<Responder['handle']>;
      try {
        res = r.handle(payload);
      } catch (err) {
        throw new Error(`handle threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
      }
      if (typeof res === 'string') {
        if (res.trim() === '') throw new Error('empty reason');
        refused++;
      } else {
        answered++;
        const ack = decodeAck(Buffer.from(res.ack, 'utf8'));
        if (ack.cm !== 'cm-a') throw new Error(`bad ack ${res.ack}`);
        if (typeof res.phone !== 'string') throw new Error('no phone');
      }
      if (r.invalid !== refused || r.keepalives !== answered) throw new Error(`counters ${r.invalid}/${r.keepalives} vs ${refused}/${answered}`);
    }),
    { numRuns: RUNS, seed: 6_0009 },
  );
  t.true(refused > RUNS / 2, `refused ${refused}`);
  t.true(answered > 100, `answered ${answered}`);
});
