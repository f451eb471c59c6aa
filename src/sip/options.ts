/**
 * The SIP bits of the call manager's registrar probe (RFC 3261): an OPTIONS
 * request and a reader of the responses on a TCP stream. Pure: bytes in,
 * responses out; the probe (callmanager/sip-probe.ts) owns the socket.
 */
import type { SipUri } from '../protocol/sip-uri.js';

/** What identifies one probe and goes into its request. */
export interface OptionsRequest {
  target: SipUri;
  /** Our end of the TCP connection, for Via's sent-by. */
  local: { host: string; port: number };
  /** Random token (letters, digits): the branch is `z9hG4bK` + this (RFC 3261 §8.1.1.7). */
  branch: string;
  /** Random From tag. */
  tag: string;
  callId: string;
  cseq: number;
  /** From's user part, e.g. the call manager id. */
  user: string;
}

const hostOf = (h: string): string => (h.includes(':') ? `[${h}]` : h);

/** The bytes of one OPTIONS request over TCP, with `Content-Length: 0`. */
export function buildOptions(r: OptionsRequest): string {
  const hp = `${hostOf(r.target.host)}:${r.target.port}`;
  return [
    `OPTIONS sip:${hp};transport=tcp SIP/2.0`,
    `Via: SIP/2.0/TCP ${hostOf(r.local.host)}:${r.local.port};branch=z9hG4bK${r.branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:${r.user}@${hostOf(r.local.host)}>;tag=${r.tag}`,
    `To: <sip:${hp}>`,
    `Call-ID: ${r.callId}`,
    `CSeq: ${r.cseq} OPTIONS`,
    'User-Agent: ipphone-cm',
    'Accept: application/sdp',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** One response read off the stream. */
export interface SipResponse {
  status: number;
  reason: string;
  callId: string | undefined;
  /** CSeq number and method, e.g. `{ seq: 3, method: 'OPTIONS' }`. */
  cseq: { seq: number; method: string } | undefined;
}

/** Most bytes buffered waiting for the end of one message; beyond it the stream is not SIP. */
export const MAX_MESSAGE_BYTES = 65536;

/** Compact header forms (RFC 3261 §7.3.3) of the headers read here. */
const COMPACT: Record<string, string> = { i: 'call-id', l: 'content-length' };

/**
 * Splits a TCP byte stream into SIP messages and returns the responses
 * (requests the server might send, and CRLF keep-alives, are skipped).
 * Throws PAYLOAD_INVALID-free plain errors: the caller drops the connection.
 */
export class SipStreamReader {
  #buf = '';

  /** Feed bytes; returns the complete responses they end. Throws when the stream is not SIP. */
  push(chunk: string): SipResponse[] {
    this.#buf += chunk;
    const out: SipResponse[] = [];
    for (;;) {
      this.#buf = this.#buf.replace(/^(\r\n)+/, '');
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.#buf.length > MAX_MESSAGE_BYTES) throw new Error(`no end of SIP headers in ${this.#buf.length} bytes`);
        return out;
      }
      const lines = this.#buf.slice(0, end).split('\r\n');
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        headers.set(COMPACT[name] ?? name, line.slice(colon + 1).trim());
      }
      const length = Number(headers.get('content-length') ?? '0');
      if (!Number.isSafeInteger(length) || length < 0 || length > MAX_MESSAGE_BYTES) throw new Error(`bad Content-Length ${headers.get('content-length')}`);
      if (this.#buf.length < end + 4 + length) return out;
      this.#buf = this.#buf.slice(end + 4 + length);
      const status = /^SIP\/2\.0 ([1-6]\d\d)(?: (.*))?$/.exec(lines[0] ?? '');
      if (status === null) {
        if (/ SIP\/2\.0$/.test(lines[0] ?? '')) continue; // a request: not ours to answer
        throw new Error(`not a SIP status line: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`);
      }
      const cseq = /^(\d{1,10})\s+([A-Za-z]+)$/.exec(headers.get('cseq') ?? '');
      out.push({
        status: Number(status[1]),
        reason: status[2] ?? '',
        callId: headers.get('call-id'),
        cseq: cseq === null ? undefined : { seq: Number(cseq[1]), method: cseq[2]!.toUpperCase() },
      });
    }
  }
}
