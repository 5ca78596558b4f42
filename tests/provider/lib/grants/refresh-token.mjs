// The refresh_token grant, extended with Logto's organization tokens (RFC 0001), the way Logto
// does it (LT oidc/grants/refresh-token.ts): a copy of oidc-provider 8.8.1's
// lib/actions/grants/refresh_token.js, re-registered with `organization_id` as an extra
// parameter. Everything outside the "=== Logto ===" blocks is the original code, so rotation and
// reuse detection (consumed token => whole grant revoked => invalid_grant) stay intact, except
// that a consumed token is still accepted for Logto's 3 s leeway (refresh-policy.mjs). As in
// Logto, organization membership is checked before the token is rotated, and `resource` after
// it: a refused resource costs a public client its refresh token.
//
//   organization_id=O, no resource  -> JWT aud=urn:logto:organization:O, scope = the user's
//                                      organization-role scopes in O ∩ (requested or refresh
//                                      token) scopes, TTL 3600
//   organization_id=O + resource=R  -> JWT aud=R with claim organization_id (extraTokenClaims)
//   user not a member of O          -> 403 access_denied
//   refresh token without urn:logto:scope:organizations -> 403 insufficient_scope

import difference from 'oidc-provider/lib/helpers/_/difference.js';
import {
  InvalidRequest, InvalidGrant, InvalidScope, InsufficientScope,
} from 'oidc-provider/lib/helpers/errors.js';
import presence from 'oidc-provider/lib/helpers/validate_presence.js';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import revoke from 'oidc-provider/lib/helpers/revoke.js';
import certificateThumbprint from 'oidc-provider/lib/helpers/certificate_thumbprint.js';
import * as formatters from 'oidc-provider/lib/helpers/formatters.js';
import filterClaims from 'oidc-provider/lib/helpers/filter_claims.js';
import dpopValidate, { DPOP_OK_WINDOW } from 'oidc-provider/lib/helpers/validate_dpop.js';
import resolveResource from 'oidc-provider/lib/helpers/resolve_resource.js';
import epochTime from 'oidc-provider/lib/helpers/epoch_time.js';
import checkRar from 'oidc-provider/lib/shared/check_rar.js';

import { gty as cibaGty } from 'oidc-provider/lib/actions/grants/ciba.js';
import { gty as deviceCodeGty } from 'oidc-provider/lib/actions/grants/device_code.js';

import { ORGANIZATIONS_SCOPE } from '../directory.mjs';
import { checkUserOrganizationAccess, makeOrganizationToken } from '../resources.mjs';
import { isReused } from '../refresh-policy.mjs';

function rarSupported(token) {
  const [origin] = token.gty.split(' ');
  return origin !== cibaGty && origin !== deviceCodeGty;
}

const gty = 'refresh_token';

export const makeHandler = (directory, keyRing, control) => async function refreshTokenHandler(ctx, next) {
  presence(ctx, 'refresh_token');

  const conf = instance(ctx.oidc.provider).configuration();

  const {
    conformIdTokenClaims,
    rotateRefreshToken,
    features: {
      userinfo,
      mTLS: { getCertificate },
      dPoP: { allowReplay },
      resourceIndicators,
      richAuthorizationRequests,
    },
  } = conf;

  const {
    RefreshToken, Account, AccessToken, IdToken, ReplayDetection,
  } = ctx.oidc.provider;
  const { client } = ctx.oidc;

  const dPoP = await dpopValidate(ctx);

  let refreshTokenValue = ctx.oidc.params.refresh_token;
  let refreshToken = await RefreshToken.find(refreshTokenValue, { ignoreExpiration: true });

  if (!refreshToken) {
    throw new InvalidGrant('refresh token not found');
  }

  if (refreshToken.clientId !== client.clientId) {
    throw new InvalidGrant('client mismatch');
  }

  if (refreshToken.isExpired) {
    throw new InvalidGrant('refresh token is expired');
  }

  let cert;
  if (client.tlsClientCertificateBoundAccessTokens || refreshToken['x5t#S256']) {
    cert = getCertificate(ctx);
    if (!cert) {
      throw new InvalidGrant('mutual TLS client certificate not provided');
    }
  }

  if (!dPoP && ctx.oidc.client.dpopBoundAccessTokens) {
    throw new InvalidGrant('DPoP proof JWT not provided');
  }

  if (refreshToken['x5t#S256'] && refreshToken['x5t#S256'] !== certificateThumbprint(cert)) {
    throw new InvalidGrant('failed x5t#S256 verification');
  }

  const grant = await ctx.oidc.provider.Grant.find(refreshToken.grantId, {
    ignoreExpiration: true,
  });

  if (!grant) {
    throw new InvalidGrant('grant not found');
  }

  if (grant.isExpired) {
    throw new InvalidGrant('grant is expired');
  }

  if (grant.clientId !== client.clientId) {
    throw new InvalidGrant('client mismatch');
  }

  if (ctx.oidc.params.scope) {
    const missing = difference([...ctx.oidc.requestParamScopes], [...refreshToken.scopes]);

    if (missing.length !== 0) {
      throw new InvalidScope(`refresh token missing requested ${formatters.pluralize('scope', missing.length)}`, missing.join(' '));
    }
  }

  if (dPoP && !allowReplay) {
    const unique = await ReplayDetection.unique(
      client.clientId,
      dPoP.jti,
      epochTime() + DPOP_OK_WINDOW,
    );

    ctx.assert(unique, new InvalidGrant('DPoP proof JWT Replay detected'));
  }

  if (refreshToken.jkt && (!dPoP || refreshToken.jkt !== dPoP.thumbprint)) {
    throw new InvalidGrant('failed jkt verification');
  }

  ctx.oidc.entity('RefreshToken', refreshToken);
  ctx.oidc.entity('Grant', grant);

  const account = await Account.findAccount(ctx, refreshToken.accountId, refreshToken);

  if (!account) {
    throw new InvalidGrant('refresh token invalid (referenced account not found)');
  }

  if (refreshToken.accountId !== grant.accountId) {
    throw new InvalidGrant('accountId mismatch');
  }

  ctx.oidc.entity('Account', account);

  /* === Logto: a rotated refresh token is still accepted for a few seconds === */
  if (isReused(control, refreshToken)) {
    await Promise.all([
      refreshToken.destroy(),
      revoke(ctx, refreshToken.grantId),
    ]);
    throw new InvalidGrant('refresh token already used');
  }

  if (ctx.oidc.params.authorization_details && !rarSupported(refreshToken)) {
    throw new InvalidRequest('authorization_details is unsupported for this refresh token');
  }

  /* === Logto: organization access (RFC 0001) === */
  const organizationId = checkUserOrganizationAccess(directory, ctx, account.accountId);
  if (organizationId && !refreshToken.scopes.has(ORGANIZATIONS_SCOPE)) {
    throw new InsufficientScope('refresh token missing required scope', ORGANIZATIONS_SCOPE);
  }
  /* === End Logto === */

  if (
    rotateRefreshToken === true
    || (typeof rotateRefreshToken === 'function' && await rotateRefreshToken(ctx))
  ) {
    await refreshToken.consume();
    ctx.oidc.entity('RotatedRefreshToken', refreshToken);

    refreshToken = new RefreshToken({
      accountId: refreshToken.accountId,
      acr: refreshToken.acr,
      amr: refreshToken.amr,
      authTime: refreshToken.authTime,
      claims: refreshToken.claims,
      client,
      expiresWithSession: refreshToken.expiresWithSession,
      iiat: refreshToken.iiat,
      grantId: refreshToken.grantId,
      gty: refreshToken.gty,
      nonce: refreshToken.nonce,
      resource: refreshToken.resource,
      rotations: typeof refreshToken.rotations === 'number' ? refreshToken.rotations + 1 : 1,
      scope: refreshToken.scope,
      sessionUid: refreshToken.sessionUid,
      sid: refreshToken.sid,
      rar: refreshToken.rar,
      'x5t#S256': refreshToken['x5t#S256'],
      jkt: refreshToken.jkt,
    });

    if (refreshToken.gty && !refreshToken.gty.endsWith(gty)) {
      refreshToken.gty = `${refreshToken.gty} ${gty}`;
    }

    ctx.oidc.entity('RefreshToken', refreshToken);
    refreshTokenValue = await refreshToken.save();
  }

  const at = new AccessToken({
    accountId: account.accountId,
    client,
    expiresWithSession: refreshToken.expiresWithSession,
    grantId: refreshToken.grantId,
    gty: refreshToken.gty,
    sessionUid: refreshToken.sessionUid,
    sid: refreshToken.sid,
  });

  if (client.tlsClientCertificateBoundAccessTokens) {
    at.setThumbprint('x5t', cert);
  }

  if (dPoP) {
    at.setThumbprint('jkt', dPoP.thumbprint);
  }

  if (at.gty && !at.gty.endsWith(gty)) {
    at.gty = `${at.gty} ${gty}`;
  }

  const scope = ctx.oidc.params.scope ? ctx.oidc.requestParamScopes : refreshToken.scopes;
  await checkRar(ctx, () => {});
  /* === Logto: organization token (RFC 0001) === */
  const resource = organizationId && !ctx.oidc.params.resource
    ? undefined
    : await resolveResource(ctx, refreshToken, { userinfo, resourceIndicators }, scope);

  if (organizationId && !ctx.oidc.params.resource) {
    makeOrganizationToken(at, {
      keyRing,
      organizationId,
      availableScopes: directory.userOrganizationScopes(account.accountId, organizationId),
      requestedScopes: scope,
    });
  /* === End Logto === */
  } else if (resource) {
    const resourceServerInfo = await resourceIndicators
      .getResourceServerInfo(ctx, resource, ctx.oidc.client);
    at.resourceServer = new ctx.oidc.provider.ResourceServer(resource, resourceServerInfo);
    at.scope = grant.getResourceScopeFiltered(
      resource,
      [...scope].filter(Set.prototype.has.bind(at.resourceServer.scopes)),
    );
  } else {
    at.claims = refreshToken.claims;
    at.scope = grant.getOIDCScopeFiltered(scope);
  }

  if (richAuthorizationRequests.enabled && at.resourceServer) {
    at.rar = await richAuthorizationRequests.rarForRefreshTokenResponse(ctx, at.resourceServer);
  }

  ctx.oidc.entity('AccessToken', at);
  const accessToken = await at.save();

  let idToken;
  if (scope.has('openid')) {
    const claims = filterClaims(refreshToken.claims, 'id_token', grant);
    const rejected = grant.getRejectedOIDCClaims();
    const token = new IdToken(({
      ...await account.claims('id_token', [...scope].join(' '), claims, rejected),
      acr: refreshToken.acr,
      amr: refreshToken.amr,
      auth_time: refreshToken.authTime,
    }), { ctx });

    if (conformIdTokenClaims && userinfo.enabled && !at.aud) {
      token.scope = 'openid';
    } else {
      token.scope = grant.getOIDCScopeFiltered(scope);
    }
    token.mask = claims;
    token.rejected = rejected;

    token.set('nonce', refreshToken.nonce);
    token.set('at_hash', accessToken);
    token.set('sid', refreshToken.sid);

    idToken = await token.issue({ use: 'idtoken' });
  }

  ctx.body = {
    access_token: accessToken,
    expires_in: at.expiration,
    id_token: idToken,
    refresh_token: refreshTokenValue,
    scope: refreshToken.scope ? at.scope : (at.scope || undefined),
    token_type: at.tokenType,
    authorization_details: at.rar,
  };

  await next();
};

/* === Logto: organization_id is accepted (resource is added at registration) === */
export const parameters = new Set(['refresh_token', 'scope', 'organization_id']);
