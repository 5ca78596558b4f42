// Accounts and Logto's scope -> claims mapping (LT oidc/scope.ts, core-kit openid.ts).
//
// Userinfo returns every claim of the granted scopes. The ID token gets the base claims of
// profile/email/phone/address plus the "extended" claims enabled in seed.provider
// .idTokenExtendedClaims (new Logto tenants: roles, organizations, organization_roles).

import { ORGANIZATIONS_SCOPE, ORGANIZATION_ROLES_SCOPE } from './directory.mjs';

/** Base claims that the ID token includes for each scope (core-kit `idTokenClaims`). */
const ID_TOKEN_CLAIMS = {
  profile: [
    'name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username',
    'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
    'username', 'created_at',
  ],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
  address: ['address'],
  roles: [],
  [ORGANIZATIONS_SCOPE]: [],
  [ORGANIZATION_ROLES_SCOPE]: [],
  custom_data: [],
  identities: [],
};

/** Claims the tenant may add to the ID token (core-kit `extendedIdTokenClaimsByScope`). */
const EXTENDED_ID_TOKEN_CLAIMS = {
  custom_data: ['custom_data'],
  identities: ['identities', 'sso_identities'],
  roles: ['roles'],
  [ORGANIZATIONS_SCOPE]: ['organizations', 'organization_data'],
  [ORGANIZATION_ROLES_SCOPE]: ['organization_roles'],
};

/** All claims per scope: what userinfo returns (core-kit `userClaims`). */
export const USER_CLAIMS = Object.fromEntries(Object.keys(ID_TOKEN_CLAIMS).map((scope) => [
  scope,
  [...ID_TOKEN_CLAIMS[scope], ...(EXTENDED_ID_TOKEN_CLAIMS[scope] ?? [])],
]));

/** Claims stored in the user's `profile` object (undefined, not null, when absent). */
const PROFILE_CLAIMS = new Set([
  'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile',
  'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'address',
]);

/** Logto `getAcceptedUserClaims`. */
function acceptedClaims(use, scope, rejected, extendedIdTokenClaims) {
  return scope.split(' ')
    .filter((name) => Object.hasOwn(USER_CLAIMS, name))
    .flatMap((name) => (use === 'userinfo'
      ? USER_CLAIMS[name]
      : [
        ...ID_TOKEN_CLAIMS[name],
        ...(EXTENDED_ID_TOKEN_CLAIMS[name] ?? []).filter((c) => extendedIdTokenClaims.includes(c)),
      ]))
    .filter((claim) => !rejected.includes(claim));
}

/** Logto `getUserClaimsData`: the value of one claim for a seed user. */
function claimValue(directory, user, claim) {
  const organizations = () => user.organizations ?? [];
  switch (claim) {
    case 'email_verified':
      return Boolean(user.email);
    case 'phone_number_verified':
      return Boolean(user.phone_number);
    case 'roles':
      return user.roles ?? [];
    case 'organizations':
      return organizations().map(({ id }) => id);
    case 'organization_roles':
      return organizations().flatMap(({ id, roles }) => roles.map((role) => `${id}:${role}`));
    case 'organization_data':
      return organizations().map(({ id }) => {
        const org = directory.organizations.get(id) ?? { id };
        return { id: org.id, name: org.name ?? null, description: org.description ?? null };
      });
    case 'sso_identities':
      return (user.sso_identities ?? [])
        .map(({ issuer, identityId, detail }) => ({ issuer, identityId, detail }));
    case 'custom_data':
      return user.custom_data ?? {};
    case 'identities':
      return user.identities ?? {};
    default:
      if (PROFILE_CLAIMS.has(claim)) return user.profile?.[claim];
      // Database columns (name, picture, username, email, phone_number, created_at, updated_at)
      return user[claim] ?? null;
  }
}

/** oidc-provider `findAccount`. */
export function makeFindAccount(directory, extendedIdTokenClaims) {
  return async function findAccount(ctx, sub) {
    const user = directory.users.get(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims(use, scope, _claims, rejected = []) {
        const claims = { sub };
        for (const claim of acceptedClaims(use, scope, rejected, extendedIdTokenClaims)) {
          const value = claimValue(directory, user, claim);
          if (value !== undefined) claims[claim] = value;
        }
        return claims;
      },
    };
  };
}
