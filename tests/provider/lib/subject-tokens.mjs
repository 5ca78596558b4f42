// Impersonation subject tokens (LT routes/subject-token.ts, queries/subject-token.ts and
// oidc/grants/token-exchange/account.ts `validateImpersonationToken`).
//
// The Management API's `POST /api/subject-tokens` {userId, context?} creates one for a user:
// `sub_` + a random id, valid 600 s. The token exchange grant takes it (subject_token_type
// urn:logto:token-type:impersonation_token, or the older ...:access_token with the `sub_`
// prefix) exactly once: Logto marks it consumed after issuing the access token.

import { randomBytes } from 'node:crypto';

import { InvalidGrant } from 'oidc-provider/lib/helpers/errors.js';

/** Logto `subjectTokenPrefix` and `subjectTokenExpiresIn` (constants/index.ts). */
export const SUBJECT_TOKEN_PREFIX = 'sub_';
export const SUBJECT_TOKEN_EXPIRES_IN = 600;

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** Logto `generateStandardId()`: 21 random lowercase alphanumeric characters. */
function generateStandardId() {
  return [...randomBytes(21)].map((byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join('');
}

export class SubjectTokens {
  /** id ("sub_…") -> {id, userId, context, expiresAt (ms), consumedAt (ms | null)} */
  #tokens = new Map();

  /** A new subject token of `userId` (the caller checked that the user exists). */
  create(userId, context) {
    const now = Date.now();
    for (const [id, token] of this.#tokens) {
      if (token.expiresAt <= now) this.#tokens.delete(id);
    }
    const token = {
      id: `${SUBJECT_TOKEN_PREFIX}${generateStandardId()}`,
      userId,
      context,
      expiresAt: now + SUBJECT_TOKEN_EXPIRES_IN * 1000,
      consumedAt: null,
    };
    this.#tokens.set(token.id, token);
    return { subjectToken: token.id, expiresIn: SUBJECT_TOKEN_EXPIRES_IN };
  }

  /** The unexpired, unconsumed token `value`; else invalid_grant, as Logto answers. */
  validate(value) {
    const token = this.#tokens.get(value);
    if (!token) throw new InvalidGrant('subject token not found');
    if (token.expiresAt <= Date.now()) throw new InvalidGrant('subject token is expired');
    if (token.consumedAt !== null) throw new InvalidGrant('subject token is already consumed');
    return token;
  }

  /** Marks the token used: it can never be exchanged again. */
  consume(id) {
    const token = this.#tokens.get(id);
    if (token) token.consumedAt = Date.now();
  }
}
