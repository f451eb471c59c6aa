/**
 * An in-memory {@link SipUserAgent} for unit tests: it records every command,
 * and the test scripts the outside world — how the registrar answers a new
 * account (`ok`, `fail` or `never`), calls coming in, the far end ringing,
 * answering, hanging up, the user agent dying and coming back. Events are
 * delivered synchronously from the scripting calls (or, for registrations,
 * from `addAccount` on a microtask), so a test decides their order.
 */
import type { SipEvent, SipUserAgent } from './user-agent.js';

/** `unauthorized`: the registrar refuses the phone's credentials (401 after they were sent). */
export type RegistrarAnswer = 'ok' | 'fail' | 'never' | 'unauthorized';

export type FakeCommand =
  | { cmd: 'add'; aor: string; regintS: number }
  | { cmd: 'remove'; aor: string }
  | { cmd: 'dial'; aor: string; uri: string }
  | { cmd: 'answer' }
  | { cmd: 'hangup' };

export class FakeSipUserAgent implements SipUserAgent {
  /** Every command, in order. */
  readonly commands: FakeCommand[] = [];
  /** Accounts the user agent holds now. */
  readonly accounts = new Set<string>();
  /** How a registrar answers a new account, by the host:port in its AOR; default `ok`. */
  readonly answers = new Map<string, RegistrarAnswer>();
  /** Make the next command of this kind reject. */
  refuse: Partial<Record<FakeCommand['cmd'], string>> = {};
  #listener: ((e: SipEvent) => void) | null = null;
  #up = false;
  #closed = false;

  start(listener: (e: SipEvent) => void): void {
    this.#listener = listener;
    this.comeUp();
  }

  connected(): boolean {
    return this.#up;
  }

  async addAccount(aor: string, regintS: number): Promise<void> {
    this.#check('add', { cmd: 'add', aor, regintS });
    this.accounts.add(aor);
    const answer = this.answers.get(hostOf(aor)) ?? 'ok';
    if (answer === 'never') return;
    queueMicrotask(() => {
      if (!this.accounts.has(aor) || !this.#up) return;
      this.emit(
        answer === 'ok'
          ? { type: 'registered', aor }
          : answer === 'unauthorized'
            ? { type: 'register-failed', aor, reason: '401 Unauthorized', status: 401 }
            : { type: 'register-failed', aor, reason: '503 Service Unavailable', status: 503 },
      );
    });
  }

  async removeAccount(aor: string): Promise<void> {
    this.#check('remove', { cmd: 'remove', aor });
    this.accounts.delete(aor);
  }

  async dial(aor: string, uri: string): Promise<void> {
    this.#check('dial', { cmd: 'dial', aor, uri });
  }

  async answer(): Promise<void> {
    this.#check('answer', { cmd: 'answer' });
  }

  async hangup(): Promise<void> {
    this.#check('hangup', { cmd: 'hangup' });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#up = false;
  }

  // ---- scripting -------------------------------------------------------------

  /** Deliver an event as the user agent would. */
  emit(e: SipEvent): void {
    if (!this.#closed) this.#listener?.(e);
  }

  /** The user agent died: its accounts and calls are gone. */
  goDown(reason = 'connection closed'): void {
    this.#up = false;
    this.accounts.clear();
    this.emit({ type: 'down', reason });
  }

  /** The control connection is (back) up, holding no accounts. */
  comeUp(): void {
    if (this.#closed) return;
    this.#up = true;
    this.emit({ type: 'up' });
  }

  /** Commands of one kind, for assertions. */
  of<K extends FakeCommand['cmd']>(cmd: K): Extract<FakeCommand, { cmd: K }>[] {
    return this.commands.filter((c): c is Extract<FakeCommand, { cmd: K }> => c.cmd === cmd);
  }

  #check(kind: FakeCommand['cmd'], c: FakeCommand): void {
    this.commands.push(c);
    if (!this.#up) throw new Error('user agent not connected');
    const why = this.refuse[kind];
    if (why !== undefined) {
      delete this.refuse[kind];
      throw new Error(why);
    }
  }
}

/** `sip:1001@127.0.0.1:5071;transport=tcp` → `127.0.0.1:5071`. */
function hostOf(aor: string): string {
  return /@([^;>]+)/.exec(aor)?.[1] ?? aor;
}
