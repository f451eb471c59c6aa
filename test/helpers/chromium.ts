/**
 * A real headless Chromium driven over the DevTools protocol, for tests of
 * pages the programs serve (the operator console). Chromium runs in its own
 * process group (its renderers and helpers die with a kill of the group) with
 * a throw-away profile; the protocol runs over `ws` (already installed with
 * mqtt; Node 20 has no global WebSocket without a flag).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { waitFor } from './net.js';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** One page (tab): send protocol commands, evaluate expressions, take screenshots. */
export class CdpPage {
  readonly #ws: WebSocket;
  #next = 1;
  readonly #pending = new Map<number, { done(v: unknown): void; fail(e: Error): void }>();
  /** Console messages and uncaught exceptions of the page (for failure output and CSP checks). */
  readonly logs: string[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: any };
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.fail(new Error(msg.error.message));
        else p?.done(msg.result);
      } else if (msg.method === 'Runtime.consoleAPICalled') {
        this.logs.push(`console.${msg.params.type}: ${msg.params.args.map((a: { value?: unknown; description?: string }) => a.value ?? a.description).join(' ')}`);
      } else if (msg.method === 'Runtime.exceptionThrown') {
        this.logs.push(`exception: ${msg.params.exceptionDetails.exception?.description ?? msg.params.exceptionDetails.text}`);
      } else if (msg.method === 'Log.entryAdded') {
        this.logs.push(`log.${msg.params.entry.level}: ${msg.params.entry.text}`);
      }
    });
    ws.on('close', () => {
      for (const p of this.#pending.values()) p.fail(new Error('DevTools connection closed'));
      this.#pending.clear();
    });
  }

  static async open(wsUrl: string): Promise<CdpPage> {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    await new Promise<void>((done, fail) => {
      ws.once('open', () => done());
      ws.once('error', fail);
    });
    const page = new CdpPage(ws);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Log.enable');
    return page;
  }

  send<T = any>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((done, fail) => {
      this.#pending.set(id, { done: done as (v: unknown) => void, fail });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** The value of `expression` in the page (JSON-serialisable). */
  async eval<T = unknown>(expression: string): Promise<T> {
    const r = await this.send<{ result: { value?: T }; exceptionDetails?: { text: string } }>('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`evaluate failed: ${r.exceptionDetails.text}: ${expression}`);
    return r.result.value as T;
  }

  async goto(url: string): Promise<void> {
    await this.send('Page.navigate', { url });
    await waitFor(async () => (await this.eval<string>('document.readyState')) === 'complete', { timeoutMs: 20_000, what: `${url} loaded` });
  }

  /** Poll `expression` until it is truthy (its description in the error otherwise). */
  async until(expression: string, what: string, timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => Boolean(await this.eval(expression).catch(() => false)), { timeoutMs, intervalMs: 100, what });
  }

  /**
   * Type `text` into the element `selector` as a user would: focus it, then
   * the characters through the DevTools input domain (key events the page
   * sees as typing, not a value set by script).
   */
  async type(selector: string, text: string): Promise<void> {
    const focused = await this.eval<boolean>(`(() => { const e = document.querySelector(${JSON.stringify(selector)}); if (!e) return false; e.focus(); return document.activeElement === e; })()`);
    if (!focused) throw new Error(`type: no focusable ${selector}`);
    await this.send('Input.insertText', { text });
  }

  /** Press a key (e.g. `Enter`) on the focused element, down and up. */
  async press(key: 'Enter' | 'Tab'): Promise<void> {
    const code = key === 'Enter' ? 13 : 9;
    await this.send('Input.dispatchKeyEvent', { type: 'keyDown', key, code: key, windowsVirtualKeyCode: code, ...(key === 'Enter' ? { text: '\r' } : {}) });
    await this.send('Input.dispatchKeyEvent', { type: 'keyUp', key, code: key, windowsVirtualKeyCode: code });
  }

  /** Write a PNG of the viewport to `dir/name.png`; returns its path. */
  async screenshot(dir: string, name: string): Promise<string> {
    const r = await this.send<{ data: string }>('Page.captureScreenshot', { format: 'png' });
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${name}.png`);
    writeFileSync(path, Buffer.from(r.data, 'base64'));
    return path;
  }

  close(): void {
    this.#ws.close();
  }
}

/** A headless Chromium process. */
export class Chromium {
  readonly #child: ChildProcess;
  readonly #profile: string;
  #stderr = '';
  readonly #browserWs: Promise<string>;

  private constructor() {
    this.#profile = mkdtempSync(join(tmpdir(), 'ipphone-chromium-'));
    this.#child = spawn(
      CHROMIUM,
      ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-background-networking', '--disable-dev-shm-usage', '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', `--user-data-dir=${this.#profile}`, '--window-size=1200,900', 'about:blank'],
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    );
    this.#browserWs = new Promise<string>((done, fail) => {
      this.#child.stderr!.on('data', (b: Buffer) => {
        this.#stderr += b.toString();
        if (this.#stderr.length > 100_000) this.#stderr = this.#stderr.slice(-50_000);
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(this.#stderr);
        if (m) done(m[1]!);
      });
      this.#child.once('exit', (code) => fail(new Error(`chromium exited (${code}) before DevTools was listening\n${this.#stderr}`)));
      this.#child.once('error', fail);
    });
  }

  static available(): boolean {
    return existsSync(CHROMIUM);
  }

  static async start(): Promise<Chromium> {
    const c = new Chromium();
    await c.#browserWs;
    return c;
  }

  /** Its stderr so far (for failure output). */
  get output(): string {
    return this.#stderr;
  }

  /** A new tab on `about:blank`. */
  async newPage(): Promise<CdpPage> {
    const browserUrl = await this.#browserWs;
    const port = new URL(browserUrl).port;
    const res = await fetch(`http://127.0.0.1:${port}/json/new?about:blank`, { method: 'PUT' });
    const target = (await res.json()) as { webSocketDebuggerUrl: string };
    return CdpPage.open(target.webSocketDebuggerUrl);
  }

  /** kill -9 of its whole process group, then the profile removed. */
  async close(): Promise<void> {
    const exited = new Promise<void>((done) => (this.#child.exitCode !== null || this.#child.signalCode !== null ? done() : this.#child.once('exit', () => done())));
    try {
      process.kill(-this.#child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
    await exited;
    rmSync(this.#profile, { recursive: true, force: true });
  }
}
