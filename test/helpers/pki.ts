/**
 * A throw-away PKI for TLS tests, made with the openssl command line as an
 * operator would (README "Secure set-up"): a CA, a second unrelated CA, a
 * broker certificate for 127.0.0.1/localhost and client certificates whose CN
 * is the identity (`use_identity_as_username`). EC P-256 keys: fast to make.
 *
 * The directory and files are world-readable: mosquitto started as root drops
 * to user `mosquitto` and must still read its certificate, key and acl_file.
 * Test keys only; removed when the test process exits.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its key, as files. */
export interface CertFiles {
  cert: string;
  key: string;
}

/** What an mqtt.js client needs to connect with a certificate. */
export interface ClientTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export interface ClientCertOptions {
  /** Signed by the unrelated CA instead of the broker's. */
  otherCa?: boolean;
  /** Valid for one day in 2020 only: expired long ago. */
  expired?: boolean;
}

export interface Pki {
  readonly dir: string;
  /** The CA the broker trusts. */
  readonly ca: CertFiles;
  /** A CA the broker does not know. */
  readonly otherCa: CertFiles;
  /** The broker's certificate: SAN IP:127.0.0.1, DNS:localhost. */
  readonly server: CertFiles;
  /** A client certificate with CN `cn` (made once per cn and options). */
  client(cn: string, opts?: ClientCertOptions): Promise<CertFiles>;
  /** The trusted CA, `cn`'s certificate and key, read for mqtt.js. */
  clientTls(cn: string, opts?: ClientCertOptions): Promise<ClientTls>;
  /** Write a file into the PKI directory (world-readable), e.g. an acl_file; returns its path. */
  writeFile(name: string, text: string): string;
  remove(): void;
}

const dirs = new Set<string>();
let hooked = false;

/** One openssl at a time: tests ask for certificates at once, the machine has few cores. */
let queue: Promise<unknown> = Promise.resolve();

function openssl(cwd: string, args: string[]): Promise<void> {
  const next = queue.then(async () => {
    try {
      await run('openssl', args, { cwd });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
    }
  });
  queue = next.catch(() => undefined);
  return next;
}

/** A random serial: no shared serial file for concurrent signings to race on. */
const serial = (): string => `0x${randomBytes(12).toString('hex')}`;

/** A new EC key and a certificate request for `cn`. */
async function request(cwd: string, name: string, cn: string): Promise<void> {
  await openssl(cwd, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
}

async function selfSignedCa(cwd: string, name: string, cn: string): Promise<CertFiles> {
  await openssl(cwd, [
    'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert: path.join(cwd, `${name}.crt`), key: path.join(cwd, `${name}.key`) };
}

/**
 * `openssl ca` with explicit start and end dates (`openssl x509 -req` of
 * OpenSSL 3.0 cannot back-date): a minimal CA database per signing CA.
 */
async function signWithDates(cwd: string, ca: CertFiles, name: string, ext: string, start: string, end: string): Promise<void> {
  const db = `${path.basename(ca.cert, '.crt')}-db`;
  const conf = path.join(cwd, `${db}.cnf`);
  writeFileSync(path.join(cwd, `${db}.index`), '', { flag: 'a' });
  writeFileSync(
    conf,
    [
      '[ca]', 'default_ca = ca_here', '[ca_here]', `database = ${db}.index`, `new_certs_dir = .`, `serial = ${db}.serial`, 'rand_serial = yes',
      'default_md = sha256', 'policy = any', 'unique_subject = no', 'copy_extensions = none', '[any]', 'commonName = supplied', '[ext]', ext, '',
    ].join('\n'),
  );
  await openssl(cwd, ['ca', '-batch', '-notext', '-config', conf, '-cert', ca.cert, '-keyfile', ca.key, '-in', `${name}.csr`, '-out', `${name}.crt`, '-extensions', 'ext', '-startdate', start, '-enddate', end]);
}

/** Make the PKI in a new temporary directory. */
export async function makePki(): Promise<Pki> {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-pki-'));
  dirs.add(dir);
  chmodSync(dir, 0o755);
  const ca = await selfSignedCa(dir, 'ca', 'ipphone test CA');
  const otherCa = await selfSignedCa(dir, 'other-ca', 'unrelated CA');

  await request(dir, 'server', 'localhost');
  await openssl(dir, [
    'x509', '-req', '-in', 'server.csr', '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', serial(), '-days', '30', '-out', 'server.crt',
    '-extfile', writeExt(dir, 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE'),
  ]);
  const server = { cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };

  const made = new Map<string, Promise<CertFiles>>();
  let n = 0;
  const client = (cn: string, opts: ClientCertOptions = {}): Promise<CertFiles> => {
    const k = `${cn}\0${opts.otherCa === true}\0${opts.expired === true}`;
    let p = made.get(k);
    if (p === undefined) {
      const name = `client-${++n}`;
      const signer = opts.otherCa === true ? otherCa : ca;
      p = (async () => {
        await request(dir, name, cn);
        const ext = 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE';
        if (opts.expired === true) {
          await signWithDates(dir, signer, name, ext, '20200101000000Z', '20200102000000Z');
        } else {
          await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', signer.cert, '-CAkey', signer.key, '-set_serial', serial(), '-days', '30', '-out', `${name}.crt`, '-extfile', writeExt(dir, name, ext)]);
        }
        return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
      })();
      made.set(k, p);
    }
    return p;
  };
  readable(dir);

  return {
    dir,
    ca,
    otherCa,
    server,
    client,
    async clientTls(cn, opts) {
      const c = await client(cn, opts);
      return { ca: readFileSync(ca.cert), cert: readFileSync(c.cert), key: readFileSync(c.key) };
    },
    writeFile(name, text) {
      const f = path.join(dir, name);
      writeFileSync(f, text, { mode: 0o644 });
      chmodSync(f, 0o644);
      return f;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}

function writeExt(dir: string, name: string, text: string): string {
  const f = path.join(dir, `${name}.ext`);
  writeFileSync(f, `${text}\n`);
  return f;
}

/** openssl writes keys 0600; mosquitto (as user mosquitto) must read the broker's. */
function readable(dir: string): void {
  for (const f of ['ca.crt', 'server.crt', 'server.key']) {
    try {
      chmodSync(path.join(dir, f), 0o644);
    } catch {
      // not made yet
    }
  }
}
