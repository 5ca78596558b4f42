// One-shot tampering of the next ID token returned by the token endpoint (POST /__admin/id-token).
//
//   sign: "provider"         re-signed with the provider's current key (valid signature, altered claims)
//         "attacker"         signed with a fresh key of the same alg, header kid = the provider's kid
//         "none"             alg "none", empty signature
//         "hs256_public"     HS256 keyed with the provider's PUBLIC key (`secret_form`: "pem"
//                            (default) or "jwk" = the public JWK JSON bytes); header kid kept
//         "provider_no_kid"  re-signed with the provider's current key, no kid header

import {
  CompactSign, decodeJwt, decodeProtectedHeader, generateKeyPair,
} from 'jose';

export const SIGN_MODES = ['provider', 'attacker', 'none', 'hs256_public', 'provider_no_kid'];

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const encoder = new TextEncoder();

/** Validate the JSON body of POST /__admin/id-token; returns the normalized mutation. */
export function parseMutation(body) {
  const {
    claims = {}, remove_claims: removeClaims = [], sign = 'provider', header = {},
    secret_form: secretForm = 'pem',
  } = body ?? {};
  if (typeof claims !== 'object' || Array.isArray(claims) || claims === null) {
    throw new TypeError('claims must be an object');
  }
  if (!Array.isArray(removeClaims) || removeClaims.some((c) => typeof c !== 'string')) {
    throw new TypeError('remove_claims must be a list of claim names');
  }
  if (!SIGN_MODES.includes(sign)) {
    throw new TypeError(`sign must be one of ${SIGN_MODES.join(', ')}`);
  }
  if (typeof header !== 'object' || Array.isArray(header) || header === null) {
    throw new TypeError('header must be an object');
  }
  if (!['pem', 'jwk'].includes(secretForm)) {
    throw new TypeError('secret_form must be "pem" or "jwk"');
  }
  return {
    claims, removeClaims, sign, header, secretForm,
  };
}

/** Rebuild `idToken` according to `mutation`, using `key` (KeyRing.current) where needed. */
export async function tamperIdToken(idToken, mutation, key) {
  const original = decodeProtectedHeader(idToken);
  for (const name of mutation.removeHeader ?? []) delete original[name];
  const payload = { ...decodeJwt(idToken), ...mutation.claims };
  for (const claim of mutation.removeClaims) delete payload[claim];
  const body = encoder.encode(JSON.stringify(payload));

  switch (mutation.sign) {
    case 'none': {
      const header = { ...original, alg: 'none', ...mutation.header };
      return `${b64url(header)}.${b64url(payload)}.`;
    }
    case 'provider':
      return new CompactSign(body)
        .setProtectedHeader({
          ...original, alg: key.alg, kid: key.kid, ...mutation.header,
        })
        // A `crit` in `header` is signed as given (jose is told it understands those names).
        .sign(key.privateKey, {
          crit: Object.fromEntries((mutation.header.crit || []).map((name) => [name, true])),
        });
    case 'provider_no_kid': {
      const header = { ...original, alg: key.alg, ...mutation.header };
      delete header.kid;
      return new CompactSign(body).setProtectedHeader(header).sign(key.privateKey);
    }
    case 'attacker': {
      const { privateKey } = await generateKeyPair(key.alg, key.alg.startsWith('ES') ? {} : { modulusLength: 2048 });
      return new CompactSign(body)
        .setProtectedHeader({
          ...original, alg: key.alg, kid: key.kid, ...mutation.header,
        })
        .sign(privateKey);
    }
    case 'hs256_public': {
      const secret = mutation.secretForm === 'jwk'
        ? encoder.encode(JSON.stringify(key.publicJwk))
        : encoder.encode(key.publicPem);
      return new CompactSign(body)
        .setProtectedHeader({ ...original, alg: 'HS256', ...mutation.header })
        .sign(secret);
    }
    default:
      throw new TypeError(`unknown sign mode ${mutation.sign}`);
  }
}
