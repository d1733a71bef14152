// The serial numbers a certificate revocation list revokes, for --client-crl-file and
// --peer-crl-file. etcd (pkg/transport/listener_tls.go, checkCRL) parses the CRL with Go's
// x509.ParseCRL — PEM or DER — and refuses a connection whose certificates carry a listed serial;
// it checks neither the CRL's signature nor its dates, and neither does this. Node has no CRL
// parser of its own (its TLS `crl` option makes OpenSSL check the CRL itself, with stricter
// rules: an expired CRL would refuse every client), so the few DER structures involved are read
// here:
//
//   CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm, signatureValue }
//   TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature AlgorithmIdentifier,
//     issuer Name, thisUpdate Time, nextUpdate Time OPTIONAL,
//     revokedCertificates SEQUENCE OF SEQUENCE { userCertificate INTEGER, revocationDate Time,
//       crlEntryExtensions Extensions OPTIONAL } OPTIONAL,
//     crlExtensions [0] EXPLICIT Extensions OPTIONAL }

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

interface Tlv {
  tag: number;
  /** Where the value starts and ends in the buffer. */
  start: number;
  end: number;
}

/** The DER element at `at` (short-form tags only, definite lengths: DER allows nothing else). */
function tlv(b: Buffer, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new Error('truncated');
  const tag = b[at]!;
  let len = b[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i]!;
    start += n;
  }
  if (start + len > limit) throw new Error('truncated');
  return { tag, start, end: start + len };
}

/** The elements inside a constructed element. */
function children(b: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const c = tlv(b, at, parent.end);
    out.push(c);
    at = c.end;
  }
  return out;
}

/** A serial number as lower-case hex without leading zeros (Go's SerialNumber.Bytes(), in hex). */
export function normalizeSerial(hex: string): string {
  const s = hex.toLowerCase().replace(/[^0-9a-f]/g, '').replace(/^0+/, '');
  return s === '' ? '0' : s;
}

/** DER bytes of a CRL file: PEM ("X509 CRL") is decoded, anything else is taken as DER. */
function der(file: Buffer): Buffer {
  const text = file.toString('latin1');
  const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(text);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : file;
}

/**
 * The serials `file` (a CRL, PEM or DER) revokes, normalized (normalizeSerial). Throws for
 * anything that is not a CRL, as x509.ParseCRL fails.
 */
export function revokedSerials(file: Buffer): Set<string> {
  const b = der(file);
  try {
    const list = tlv(b, 0, b.length);
    if (list.tag !== SEQUENCE) throw new Error('not a SEQUENCE');
    const tbs = children(b, list)[0];
    if (!tbs || tbs.tag !== SEQUENCE) throw new Error('no TBSCertList');
    const fields = children(b, tbs);
    let i = fields[0]?.tag === INTEGER ? 1 : 0; // version
    i += 2; // signature, issuer
    if (fields[i]?.tag !== UTC_TIME && fields[i]?.tag !== GENERALIZED_TIME) throw new Error('no thisUpdate');
    i++;
    if (fields[i]?.tag === UTC_TIME || fields[i]?.tag === GENERALIZED_TIME) i++; // nextUpdate
    const serials = new Set<string>();
    const revoked = fields[i];
    if (revoked?.tag === SEQUENCE) {
      for (const entry of children(b, revoked)) {
        const serial = entry.tag === SEQUENCE ? children(b, entry)[0] : undefined;
        if (!serial || serial.tag !== INTEGER) throw new Error('bad revoked certificate entry');
        serials.add(normalizeSerial(b.subarray(serial.start, serial.end).toString('hex')));
      }
    }
    return serials;
  } catch (e) {
    throw new Error(`x509: malformed crl (${(e as Error).message})`);
  }
}
