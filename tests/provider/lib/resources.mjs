// API resources and organizations as oidc-provider sees them (LT oidc/resource.ts,
// oidc/grants/utils.ts).

import { errors } from 'oidc-provider';

import {
  ORGANIZATIONS_RESOURCE, ORGANIZATION_URN_PREFIX, RESERVED_RESOURCE_TTL,
} from './directory.mjs';

/** JWT access token settings shared by every resource (signed with the current alg). */
export const sharedResourceServerData = (keyRing) => ({
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: keyRing.current.alg } },
});

/**
 * Scopes of `indicator` available to the subject of the request (Logto `findResourceScopes`):
 * the reserved organizations resource has every organization scope; a user has the scopes of
 * their roles plus those of their organization roles (narrowed to `organizationId` when given);
 * an app has the scopes of its machine-to-machine roles (or its organization roles).
 */
function findResourceScopes(directory, {
  indicator, userId, clientId, organizationId,
}) {
  if (indicator === ORGANIZATIONS_RESOURCE) return directory.allOrganizationScopes();
  if (userId) return directory.userResourceScopes(userId, indicator, organizationId);
  if (clientId && organizationId) {
    return directory.clientOrganizationResourceScopes(clientId, indicator, organizationId);
  }
  if (clientId) return directory.clientResourceScopes(clientId, indicator);
  return [];
}

/** oidc-provider `features.resourceIndicators.getResourceServerInfo`. */
export const makeGetResourceServerInfo = (directory, keyRing) => async (ctx, indicator, client) => {
  const resource = directory.findResource(indicator);
  if (!resource) throw new errors.InvalidTarget();

  const { params, session, entities } = ctx.oidc;
  const userId = session?.accountId ?? entities.Account?.accountId;
  const organizationId = typeof params?.organization_id === 'string' && params.organization_id
    ? params.organization_id : undefined;
  const scopes = findResourceScopes(directory, {
    indicator, userId, clientId: client?.clientId, organizationId,
  });

  return {
    ...sharedResourceServerData(keyRing),
    accessTokenTTL: resource.accessTokenTtl ?? 3600,
    scope: scopes.join(' '),
  };
};

/** An oidc-provider error with Logto's 403 status for organization checks. */
export function forbidden(error) {
  error.status = 403; // eslint-disable-line no-param-reassign
  error.statusCode = 403; // eslint-disable-line no-param-reassign
  return error;
}

/** The `organization_id` parameter of the current request, or undefined. */
export function requestedOrganizationId(ctx) {
  const value = ctx.oidc.params?.organization_id;
  return typeof value === 'string' && value ? value : undefined;
}

/** Logto `checkOrganizationAccess` for a user (membership; no MFA or third-party apps here). */
export function checkUserOrganizationAccess(directory, ctx, accountId) {
  const organizationId = requestedOrganizationId(ctx);
  if (organizationId && !directory.isMember(accountId, organizationId)) {
    throw forbidden(new errors.AccessDenied('user is not a member of the organization'));
  }
  return organizationId;
}

/**
 * Logto `handleOrganizationToken`: turn an access token (AccessToken or ClientCredentials) into
 * an organization token `aud=urn:logto:organization:<id>` holding the available scopes that were
 * asked for.
 */
export function makeOrganizationToken(token, {
  keyRing, organizationId, availableScopes, requestedScopes,
}) {
  const audience = `${ORGANIZATION_URN_PREFIX}${organizationId}`;
  /* eslint-disable no-param-reassign */
  token.aud = audience;
  token.resourceServer = {
    ...sharedResourceServerData(keyRing),
    accessTokenTTL: RESERVED_RESOURCE_TTL,
    audience,
    scope: availableScopes.join(' '),
  };
  token.scope = availableScopes.filter((name) => requestedScopes.has(name)).join(' ');
  /* eslint-enable no-param-reassign */
}
