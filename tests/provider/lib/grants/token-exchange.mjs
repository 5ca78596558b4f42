// RFC 8693 token exchange the way Logto runs it (LT oidc/grants/token-exchange/*, RFC 0005).
//
// Only first-party clients with `allowTokenExchange: true` in the seed get the grant type
// (lib/provider.mjs; Logto refuses the switch to third-party apps), so the others are refused by
// oidc-provider itself: 400 invalid_request "requested grant type is not allowed for this client".
//
// subject_token_type
//   urn:logto:token-type:personal_access_token   a user's PAT ("pat_..."), reusable; unknown or
//                                                expired -> invalid_grant
//   urn:logto:token-type:impersonation_token     a subject token from POST /api/subject-tokens
//                                                ("sub_...", lib/subject-tokens.mjs): single-use,
//                                                600 s; consumed once the token is issued
//   urn:ietf:params:oauth:token-type:access_token a "sub_..." subject token (Logto's older form of
//                                                the above), or (service-to-service delegation)
//                                                an unexpired opaque access token of this provider
//                                                or a JWT access token it signed (typ at+jwt,
//                                                client_id present), reusable, issued to any of
//                                                its apps for a user (Logto 1.42 accepts a
//                                                third-party app's token too: the user's roles
//                                                decide the scopes)
//   anything else                                invalid_grant
// Result: only an access token. organization_id=O (no resource) -> organization token;
// resource=R -> JWT for R with requested ∩ the user's scopes for R; neither -> opaque token with
// requested ∩ OIDC scopes. No scope is inherited from the subject token.
// actor_token (opaque access token with openid) adds `act: {sub}`.

import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import presence from 'oidc-provider/lib/helpers/validate_presence.js';
import { InvalidGrant, InvalidTarget } from 'oidc-provider/lib/helpers/errors.js';

import { checkUserOrganizationAccess, makeOrganizationToken } from '../resources.mjs';
import { SUBJECT_TOKEN_PREFIX } from '../subject-tokens.mjs';

export const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const PAT_TOKEN_TYPE = 'urn:logto:token-type:personal_access_token';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const IMPERSONATION_TOKEN_TYPE = 'urn:logto:token-type:impersonation_token';

export const parameters = new Set([
  'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'organization_id', 'scope',
]);

/** The user id behind an opaque or JWT access token this provider issued to a user, or undefined. */
async function accessTokenSubject(ctx, value, { directory, keyRing }) {
  if (value.split('.').length === 3) {
    try {
      if (decodeProtectedHeader(value).typ !== 'at+jwt') return undefined;
      const { payload } = await jwtVerify(value, createLocalJWKSet(keyRing.publicJwks()), {
        issuer: ctx.oidc.provider.issuer,
      });
      if (!payload.client_id || !directory.clients.has(payload.client_id)) return undefined;
      return payload.client_id === payload.sub ? undefined : payload.sub;
    } catch {
      return undefined;
    }
  }
  const token = await ctx.oidc.provider.AccessToken.find(value);
  if (!token || !token.accountId) return undefined;
  return token.accountId;
}

/** `{userId, subjectTokenId}` (the id only for a single-use impersonation token), or invalid_grant. */
async function validateSubjectToken(ctx, deps) {
  const { subject_token: value, subject_token_type: type } = ctx.oidc.params;
  if (type === IMPERSONATION_TOKEN_TYPE
    || (type === ACCESS_TOKEN_TYPE && value.startsWith(SUBJECT_TOKEN_PREFIX))) {
    const { id, userId } = deps.directory.subjectTokens.validate(value);
    return { userId, subjectTokenId: id };
  }
  if (type === PAT_TOKEN_TYPE) {
    const pat = deps.directory.findPersonalAccessToken(value);
    if (!pat) throw new InvalidGrant('subject token not found');
    if (pat.expiresAt !== null && pat.expiresAt <= Date.now()) {
      throw new InvalidGrant('subject token is expired');
    }
    return { userId: pat.userId };
  }
  if (type === ACCESS_TOKEN_TYPE) {
    const userId = await accessTokenSubject(ctx, value, deps);
    if (!userId) throw new InvalidGrant('invalid subject token');
    return { userId };
  }
  throw new InvalidGrant('unsupported subject token type');
}

/** The actor's user id (Logto `handleActorToken`), or undefined without an actor token. */
async function validateActorToken(ctx) {
  const { actor_token: value, actor_token_type: type } = ctx.oidc.params;
  if (!value) return undefined;
  if (type !== ACCESS_TOKEN_TYPE) throw new InvalidGrant('unsupported actor token type');
  const token = await ctx.oidc.provider.AccessToken.find(value);
  if (!token || !token.accountId) throw new InvalidGrant('invalid actor token');
  if (!token.scopes.has('openid')) throw new InvalidGrant('actor token must have openid scope');
  return token.accountId;
}

export const makeHandler = (directory, keyRing) => async function tokenExchangeHandler(ctx, next) {
  presence(ctx, 'subject_token', 'subject_token_type');

  const { provider, client, params } = ctx.oidc;
  const { AccessToken, Grant, ResourceServer } = provider;
  const {
    findAccount,
    scopes: oidcScopes,
    features: { resourceIndicators },
  } = instance(provider).configuration();

  const { userId, subjectTokenId } = await validateSubjectToken(ctx, { directory, keyRing });
  const account = await findAccount(ctx, userId);
  if (!account) throw new InvalidGrant('subject token invalid (referenced account not found)');
  ctx.oidc.entity('Account', account);

  const organizationId = checkUserOrganizationAccess(directory, ctx, account.accountId);
  const actorId = await validateActorToken(ctx);

  const grant = new Grant({ accountId: account.accountId, clientId: client.clientId });
  const grantId = await grant.save();

  const at = new AccessToken({
    accountId: account.accountId,
    client,
    gty: GRANT_TYPE,
    grantId,
    ...(actorId ? { extra: { act: { sub: actorId } } } : {}),
  });

  const scope = ctx.oidc.requestParamScopes;
  if (Array.isArray(params.resource)) {
    throw new InvalidTarget('only a single resource indicator value is supported for this grant type');
  }
  const { resource } = params;

  if (organizationId && !resource) {
    makeOrganizationToken(at, {
      keyRing,
      organizationId,
      availableScopes: directory.userOrganizationScopes(account.accountId, organizationId),
      requestedScopes: scope,
    });
    grant.addResourceScope(at.aud, at.scope);
  } else if (resource) {
    const info = await resourceIndicators.getResourceServerInfo(ctx, resource, client);
    at.resourceServer = new ResourceServer(resource, info);
    at.scope = [...scope].filter(Set.prototype.has.bind(at.resourceServer.scopes)).join(' ');
    grant.addResourceScope(resource, at.scope);
  } else {
    at.scope = [...scope].filter(Set.prototype.has.bind(oidcScopes)).join(' ');
    grant.addOIDCScope(at.scope);
  }

  await grant.save();
  ctx.oidc.entity('Grant', grant);
  ctx.oidc.entity('AccessToken', at);
  const accessToken = await at.save();
  if (subjectTokenId) directory.subjectTokens.consume(subjectTokenId);

  ctx.body = {
    access_token: accessToken,
    expires_in: at.expiration,
    scope: at.scope,
    token_type: at.tokenType,
  };

  await next();
};
