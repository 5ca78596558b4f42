// The provider's "database": seed.json loaded into memory, plus the lookups that Logto answers
// from its tables (users, roles, organizations, API resources, personal access tokens).
//
// Everything mutable at run time (personal access tokens, subject tokens) lives here too, so a provider rebuild
// (key rotation) keeps it.

import { readFileSync } from 'node:fs';

import { SubjectTokens } from './subject-tokens.mjs';

export const ORGANIZATIONS_RESOURCE = 'urn:logto:resource:organizations';
export const ORGANIZATIONS_SCOPE = 'urn:logto:scope:organizations';
export const ORGANIZATION_ROLES_SCOPE = 'urn:logto:scope:organization_roles';
export const ORGANIZATION_URN_PREFIX = 'urn:logto:organization:';
/** TTL of reserved resources and organization tokens (Logto `reversedResourceAccessTokenTtl`). */
export const RESERVED_RESOURCE_TTL = 3600;

const unique = (values) => [...new Set(values)];

export class Directory {
  constructor(seed) {
    this.seed = seed;
    this.users = new Map(seed.users.map((user) => [user.id, user]));
    this.roles = new Map(seed.roles.map((role) => [role.name, role]));
    this.resources = new Map(seed.resources.map((r) => [r.indicator, r]));
    this.organizations = new Map(seed.organizations.map((org) => [org.id, org]));
    this.organizationRoles = new Map(seed.organizationRoles.map((role) => [role.name, role]));
    this.clients = new Map(seed.clients.map((client) => [client.client_id, client]));
    /** userId -> PersonalAccessToken[] (mutable through the Management API routes). */
    this.personalAccessTokens = new Map(seed.users.map((user) => [
      user.id,
      (user.personal_access_tokens ?? []).map((pat) => ({
        tenantId: 'default',
        userId: user.id,
        name: pat.name,
        value: pat.value,
        createdAt: pat.createdAt ?? Date.now(),
        expiresAt: pat.expiresAt ?? null,
      })),
    ]));
    /** Impersonation subject tokens (created through the Management API, single-use). */
    this.subjectTokens = new SubjectTokens();
  }

  static load(path) {
    return new Directory(JSON.parse(readFileSync(path, 'utf8')));
  }

  /** The user signing in with this identifier (username, or email like Logto allows). */
  findUserByIdentifier(identifier) {
    return this.seed.users.find((user) => user.username === identifier
      || (user.email && user.email === identifier));
  }

  // --- API resources ---------------------------------------------------------------------------

  /** `{indicator, accessTokenTtl}` of a seeded or reserved resource, or undefined. */
  findResource(indicator) {
    if (indicator === ORGANIZATIONS_RESOURCE) {
      return { indicator, accessTokenTtl: RESERVED_RESOURCE_TTL };
    }
    return this.resources.get(indicator);
  }

  /** Every organization scope (the scopes of the reserved organizations resource). */
  allOrganizationScopes() {
    return unique([
      ...(this.seed.organizationScopes ?? []),
      ...this.seed.organizationRoles.flatMap((role) => role.scopes ?? []),
    ]);
  }

  /** Scopes of `indicator` granted by a list of (user or machine-to-machine) role names. */
  roleScopesFor(roleNames, indicator) {
    return roleNames.flatMap((name) => this.roles.get(name)?.scopes?.[indicator] ?? []);
  }

  // --- Organizations -----------------------------------------------------------------------------

  /** The user's memberships `[{id, roles}]`. */
  membershipsOf(userId) {
    return this.users.get(userId)?.organizations ?? [];
  }

  isMember(userId, organizationId) {
    return this.membershipsOf(userId).some(({ id }) => id === organizationId);
  }

  /** Organization scopes the user holds in `organizationId` through organization roles. */
  userOrganizationScopes(userId, organizationId) {
    const membership = this.membershipsOf(userId).find(({ id }) => id === organizationId);
    return unique((membership?.roles ?? [])
      .flatMap((name) => this.organizationRoles.get(name)?.scopes ?? []));
  }

  /**
   * API resource scopes the user holds through organization roles, in one organization or (when
   * `organizationId` is undefined) in all of them.
   */
  userOrganizationResourceScopes(userId, indicator, organizationId) {
    return this.membershipsOf(userId)
      .filter(({ id }) => organizationId === undefined || id === organizationId)
      .flatMap(({ roles }) => roles)
      .flatMap((name) => this.organizationRoles.get(name)?.resourceScopes?.[indicator] ?? []);
  }

  /** Logto `findUserScopesForResourceIndicator(userId, indicator, true, organizationId)`. */
  userResourceScopes(userId, indicator, organizationId) {
    const user = this.users.get(userId);
    if (!user) return [];
    return unique([
      ...this.roleScopesFor(user.roles ?? [], indicator),
      ...this.userOrganizationResourceScopes(userId, indicator, organizationId),
    ]);
  }

  /** A machine-to-machine app's association with an organization, or undefined. */
  clientOrganization(clientId, organizationId) {
    return (this.clients.get(clientId)?.organizations ?? [])
      .find(({ id }) => id === organizationId);
  }

  /** Organization scopes an app holds in an organization through its organization roles. */
  clientOrganizationScopes(clientId, organizationId) {
    const association = this.clientOrganization(clientId, organizationId);
    return unique((association?.roles ?? [])
      .flatMap((name) => this.organizationRoles.get(name)?.scopes ?? []));
  }

  /** API resource scopes an app holds through its roles in one organization. */
  clientOrganizationResourceScopes(clientId, indicator, organizationId) {
    const association = this.clientOrganization(clientId, organizationId);
    return unique((association?.roles ?? [])
      .flatMap((name) => this.organizationRoles.get(name)?.resourceScopes?.[indicator] ?? []));
  }

  /** API resource scopes an app holds through its machine-to-machine roles. */
  clientResourceScopes(clientId, indicator) {
    return unique(this.roleScopesFor(this.clients.get(clientId)?.roles ?? [], indicator));
  }

  // --- Personal access tokens --------------------------------------------------------------------

  findPersonalAccessToken(value) {
    for (const tokens of this.personalAccessTokens.values()) {
      const found = tokens.find((pat) => pat.value === value);
      if (found) return found;
    }
    return undefined;
  }
}
