// Signing keys. Logto generates EC P-384 keys (ES384); older tenants have RSA keys (RS256).
// The newest key signs; older keys stay published in the JWKS after a rotation.

import { randomBytes } from 'node:crypto';

import { exportJWK, exportSPKI, generateKeyPair } from 'jose';

export const SUPPORTED_ALGS = ['ES384', 'RS256', 'ES256', 'ES512', 'PS256'];

async function generateSigningKey(alg) {
  if (!SUPPORTED_ALGS.includes(alg)) {
    throw new TypeError(`unsupported signing alg ${alg}; use one of ${SUPPORTED_ALGS.join(', ')}`);
  }
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg.startsWith('RS') || alg.startsWith('PS') ? { modulusLength: 2048 } : {}),
  });
  const kid = randomBytes(12).toString('base64url');
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return {
    alg,
    kid,
    privateKey,
    publicKey,
    privateJwk,
    publicJwk,
    publicPem: await exportSPKI(publicKey),
  };
}

export class KeyRing {
  /** Newest first: `keys[0]` is the signing key. */
  keys = [];

  static async create(alg) {
    const ring = new KeyRing();
    await ring.rotate(alg);
    return ring;
  }

  /** Generate a new signing key (default: same alg as the current one) and put it first. */
  async rotate(alg = this.current?.alg) {
    const key = await generateSigningKey(alg);
    this.keys.unshift(key);
    return key;
  }

  get current() {
    return this.keys[0];
  }

  /** Private JWKS for oidc-provider's `jwks` option (fresh copies; the provider keeps them). */
  privateJwks() {
    return { keys: this.keys.map((key) => ({ ...key.privateJwk })) };
  }

  publicJwks() {
    return { keys: this.keys.map((key) => ({ ...key.publicJwk })) };
  }
}
