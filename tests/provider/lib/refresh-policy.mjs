// Refresh tokens the way Logto 1.37.1 handles them (LT oidc/defaults.ts, oidc/init.ts and
// queries/oidc-model-instance.ts), with per-client overrides that tests set through
// POST /__admin/clients/:id/refresh-tokens (cleared by POST /__admin/reset).
//
//   rotation  "logto" (default): a public client (token_endpoint_auth_method none) gets a new
//             refresh token at every refresh; any other client keeps its token until 70 % of its
//             lifetime has passed; none rotates once a token has lived a year.
//             "always" | "never": the seed's or a test's override.
//   lifetime  refreshTokenTtl (s) or refreshTokenTtlInDays, else 14 days; a public web (SPA)
//             client's rotated token keeps the remaining life of the one it replaces.
//   reuse     a consumed (rotated) refresh token is still accepted for 3 s, Logto's leeway for
//             concurrent refreshes; after that, presenting it revokes the grant.

const DAY = 24 * 60 * 60;
export const ROTATION_MODES = ['logto', 'always', 'never'];
export const LOGTO_REUSE_INTERVAL = 3;

/** Per-client settings: seed fields, overridden by control.refreshTokens.get(clientId). */
function settings(control, client) {
  return { rotateRefreshToken: client.rotateRefreshToken, ...control.refreshTokens.get(client.clientId) };
}

/** LT oidc/defaults.ts rotateRefreshToken (oidc-provider's default, which Logto keeps). */
function logtoRotation(token, client) {
  if (token.totalLifetime() >= 365.25 * DAY) return false;
  if (client.clientAuthMethod === 'none' && !token.isSenderConstrained()) return true;
  return token.ttlPercentagePassed() >= 70;
}

export function makeRotateRefreshToken(control) {
  return function rotateRefreshToken(ctx) {
    const { RefreshToken: token, Client: client } = ctx.oidc.entities;
    if (!token || !client) return false;
    const mode = settings(control, client).rotateRefreshToken ?? 'logto';
    if (mode === 'never' || mode === false) return false;
    if (mode === 'always' || mode === true) return true;
    return logtoRotation(token, client);
  };
}

export function makeRefreshTokenTtl(control) {
  return function refreshTokenTtl(ctx, token, client) {
    const rotated = ctx?.oidc.entities.RotatedRefreshToken;
    if (rotated && client.applicationType === 'web' && client.clientAuthMethod === 'none'
      && !token.isSenderConstrained()) {
      return rotated.remainingTTL; // SPA tokens do not extend their life by rotating
    }
    const { ttl } = settings(control, client);
    if (ttl !== undefined) return ttl;
    if (client.refreshTokenTtlInDays !== undefined) return client.refreshTokenTtlInDays * DAY;
    return client.refreshTokenTtl ?? 14 * DAY;
  };
}

/** LT queries/oidc-model-instance.ts isConsumed: consumed = rotated more than the leeway ago. */
export function isReused(control, refreshToken) {
  if (!refreshToken.consumed) return false;
  const consumedAt = typeof refreshToken.consumed === 'number' ? refreshToken.consumed : 0;
  return Date.now() / 1000 >= consumedAt + control.refreshTokenReuseInterval;
}

/** Validate the body of POST /__admin/clients/:id/refresh-tokens. */
export function parseRefreshTokenSettings(body) {
  const out = {};
  if (body.rotation !== undefined) {
    if (!ROTATION_MODES.includes(body.rotation)) throw new Error(`rotation must be one of ${ROTATION_MODES.join(', ')}`);
    out.rotateRefreshToken = body.rotation;
  }
  if (body.ttl !== undefined) {
    if (!Number.isInteger(body.ttl) || body.ttl <= 0) throw new Error('ttl must be a positive number of seconds');
    out.ttl = body.ttl;
  }
  return out;
}
