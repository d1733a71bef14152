// Test certificates made with the `openssl` command in a temp dir: a CA, certificates it signs
// (servers with 127.0.0.1/localhost SANs, usable as client certificates too; clients with a
// chosen CommonName) and, for the negative cases, a second CA that nobody trusts.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertPair {
  cert: string;
  key: string;
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const openssl = (dir: string, args: string[]): void => {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
};

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A certificate authority in its own directory; `issue` makes certificates it signs. */
export class TestCA {
  readonly cert: string;
  private readonly key: string;
  private serial = 1;

  constructor(
    readonly dir: string,
    readonly name: string,
  ) {
    this.cert = join(dir, `${name}.crt`);
    this.key = join(dir, `${name}.key`);
    openssl(dir, ['req', '-x509', ...EC, '-keyout', this.key, '-out', this.cert, '-days', '2', '-subj', `/CN=${name}`]);
  }

  /**
   * A certificate for `cn`, signed by this CA, for server and client use, with SANs 127.0.0.1
   * and localhost unless `sans` says otherwise.
   */
  issue(file: string, cn: string, sans = ['IP:127.0.0.1', 'DNS:localhost']): CertPair {
    const base = join(this.dir, file);
    const ext = `${base}.ext`;
    writeFileSync(
      ext,
      [
        'basicConstraints=CA:FALSE',
        'keyUsage=digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
      ].join('\n'),
    );
    openssl(this.dir, ['req', ...EC, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${cn}`]);
    openssl(this.dir, [
      'x509', '-req', '-in', `${base}.csr`, '-CA', this.cert, '-CAkey', this.key,
      '-set_serial', String(this.serial++), '-out', `${base}.crt`, '-days', '2', '-extfile', ext,
    ]);
    return { cert: `${base}.crt`, key: `${base}.key` };
  }

  /** The serial `openssl` wrote into a certificate file (hex, as `openssl x509 -serial` prints it). */
  static serialOf(certFile: string): string {
    return execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-serial'], { encoding: 'utf8' }).trim().replace(/^serial=/, '');
  }

  /** A CRL (PEM) signed by this CA that revokes `revoked`, written to `file` in the CA's directory. */
  crl(file: string, revoked: CertPair[]): string {
    const db = join(this.dir, `${file}.index`);
    const stamp = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
    const now = new Date();
    const later = new Date(now.getTime() + 2 * 86_400_000);
    writeFileSync(db, revoked.map((c) => `R\t${stamp(later)}\t${stamp(now)}\t${TestCA.serialOf(c.cert)}\tunknown\t/CN=revoked\n`).join(''));
    const cnf = join(this.dir, `${file}.cnf`);
    writeFileSync(cnf, ['[ca]', 'default_ca = test', '[test]', `database = ${db}`, 'default_md = sha256', 'default_crl_days = 2', ''].join('\n'));
    const out = join(this.dir, file);
    openssl(this.dir, ['ca', '-gencrl', '-config', cnf, '-keyfile', this.key, '-cert', this.cert, '-out', out]);
    return out;
  }
}

/** Everything a TLS test needs, in one temp dir (remove with `cleanup`). */
export interface TestCerts {
  dir: string;
  ca: TestCA;
  /** Members' certificate (client and peer side; CN "member"). */
  server: CertPair;
  /** A client certificate (CN "client") from the trusted CA. */
  client: CertPair;
  /** A CA nobody trusts, and a certificate (same SANs, CN "member") it signed. */
  otherCa: TestCA;
  otherServer: CertPair;
  cleanup(): void;
}

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-certs-'));
  const ca = new TestCA(dir, 'ca');
  const otherCa = new TestCA(dir, 'other-ca');
  return {
    dir,
    ca,
    server: ca.issue('server', 'member'),
    client: ca.issue('client', 'client', []),
    otherCa,
    otherServer: otherCa.issue('other-server', 'member'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Client and peer mTLS flags for members (etcd's names; raftkv takes the same): the members'
 * certificate on both links, `--client-cert-auth` and `--peer-client-cert-auth` against the CA.
 */
export function memberTlsArgs(certs: TestCerts): string[] {
  const [cert, key, ca] = [certs.server.cert, certs.server.key, certs.ca.cert];
  return [
    '--cert-file', cert, '--key-file', key, '--trusted-ca-file', ca, '--client-cert-auth',
    '--peer-cert-file', cert, '--peer-key-file', key, '--peer-trusted-ca-file', ca, '--peer-client-cert-auth',
  ];
}

/** etcdctl's flags to talk to such members with the client certificate. */
export function etcdctlTlsArgs(certs: TestCerts): string[] {
  return [`--cacert=${certs.ca.cert}`, `--cert=${certs.client.cert}`, `--key=${certs.client.key}`];
}
