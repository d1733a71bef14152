// etcd's JWT tokens (auth/jwt.go; --auth-token jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...):
// signed (jsonwebtoken) by the member that authenticated the user, verifiable by any member
// with the public key, with etcd's claims: username, revision (the auth revision when signed:
// a token older than a permission change gets `revision of auth store is old`) and exp.

import { createRequire } from 'node:module';
import type jwtModule from 'jsonwebtoken';

// Loaded when a member uses JWT tokens: the package and its dependencies are ~70 files, a tenth of
// a member's start-up time, for a feature most clusters do not turn on.
let loaded: typeof jwtModule | undefined;
const jwt = (): typeof jwtModule => (loaded ??= createRequire(import.meta.url)('jsonwebtoken') as typeof jwtModule);

export interface JwtConfig {
  /** PEM of the public key (verification). */
  pubKey: string;
  /** PEM of the private key (signing). */
  privKey: string;
  signMethod: jwtModule.Algorithm;
  ttlSec: number;
}

/** The sign methods etcd 3.4 accepts for JWT (RSA, RSA-PSS, ECDSA). */
export const JWT_SIGN_METHODS: readonly jwtModule.Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

export class JwtTokens {
  constructor(private readonly cfg: JwtConfig) {
    jwt(); // now rather than on the first request
  }

  sign(username: string, revision: bigint): string {
    // etcd's claims exactly: username, revision, exp (no iat).
    return jwt().sign({ username, revision: Number(revision) }, this.cfg.privKey, { algorithm: this.cfg.signMethod, expiresIn: this.cfg.ttlSec, noTimestamp: true });
  }

  /** The claims of a valid, unexpired token signed with our key, or undefined. */
  verify(token: string): { username: string; revision: bigint } | undefined {
    try {
      const c = jwt().verify(token, this.cfg.pubKey, { algorithms: [this.cfg.signMethod] });
      if (typeof c !== 'object' || c === null) return undefined;
      const { username, revision } = c as { username?: unknown; revision?: unknown };
      if (typeof username !== 'string' || typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 1) return undefined;
      return { username, revision: BigInt(revision) };
    } catch {
      return undefined;
    }
  }
}
