// The part of Logto's Management API this provider serves: personal access tokens
// (LT routes/admin-user/personal-access-token.ts; logto-protocol.md §6.5) and impersonation
// subject tokens (LT routes/subject-token.ts; lib/subject-tokens.mjs).
//
// Every call needs `Authorization: Bearer <JWT>` from client_credentials with
// aud=https://default.logto.app/api and a scope containing `all` (LT middleware/koa-auth):
// 401 without/with a bad token, 403 without the scope. Errors are `{code, message}`.
//
//   GET    /api/users/:userId/personal-access-tokens           200 [PAT]
//   POST   /api/users/:userId/personal-access-tokens           201 PAT; 422 name taken;
//                                                              400 expiresAt not in the future
//   PATCH  /api/users/:userId/personal-access-tokens           {name, currentName?} -> 200 PAT
//   POST   /api/users/:userId/personal-access-tokens/delete    {name} -> 204
//   PATCH  /api/users/:userId/personal-access-tokens/:name     (legacy) {name} -> 200 PAT
//   DELETE /api/users/:userId/personal-access-tokens/:name     (legacy) -> 204
//   POST   /api/subject-tokens                                 {userId, context?} -> 201
//                                                              {subjectToken: "sub_…", expiresIn: 600}
//   GET    /api/users                                          200 [User], paginated with `page` and
//                                                              `page_size` (then `Total-Number`)
//   GET    /api/users/:userId                                  200 User
// Unknown user or token -> 404.
//
// And the Account API's `GET /api/my-account` (LT routes/account), with the signed-in user's
// opaque access token (LT koa-oidc-auth: 401 unknown token, 403 without `openid`).

import { randomBytes } from 'node:crypto';

import { createLocalJWKSet, jwtVerify } from 'jose';

import { matchPath, sendEmpty, sendJson } from './http.mjs';

export const MANAGEMENT_API_RESOURCE = 'https://default.logto.app/api';

class RequestError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Logto `generateStandardSecret()`: 32 random alphanumeric characters. */
function generateSecret() {
  return [...randomBytes(32)].map((byte) => ALPHANUMERIC[byte % ALPHANUMERIC.length]).join('');
}

async function authenticate(req, { issuer, keyRing }) {
  const [scheme, token] = (req.headers.authorization ?? '').split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || !token) {
    throw new RequestError(401, 'auth.authorization_header_missing', 'Authorization header is missing.');
  }
  let payload;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet(keyRing.publicJwks()), {
      issuer,
      audience: MANAGEMENT_API_RESOURCE,
    }));
  } catch (error) {
    throw new RequestError(401, 'auth.unauthorized', `Unauthorized. ${error.message}`);
  }
  const scopes = String(payload.scope ?? '').split(' ');
  if (!scopes.includes('all')) {
    throw new RequestError(403, 'auth.forbidden', 'Forbidden. The token is missing the `all` scope.');
  }
}

/** A seed user as Logto's Management API and Account API show it. */
function logtoUser(user) {
  const profile = user.profile ?? {};
  return {
    id: user.id,
    username: user.username ?? null,
    primaryEmail: user.email ?? null,
    primaryPhone: user.phone_number ?? null,
    name: user.name ?? null,
    avatar: user.picture ?? null,
    customData: user.custom_data ?? {},
    identities: user.identities ?? {},
    lastSignInAt: null,
    createdAt: user.created_at ?? 0,
    updatedAt: user.updated_at ?? user.created_at ?? 0,
    profile: {
      ...(profile.given_name && { givenName: profile.given_name }),
      ...(profile.family_name && { familyName: profile.family_name }),
      ...(profile.nickname && { nickname: profile.nickname }),
    },
    applicationId: null,
    isSuspended: false,
    hasPassword: Boolean(user.password),
  };
}

/** LT koa-pagination: `page` (from 1) and `page_size` (1–100); none given: everything. */
function paginate(url, items) {
  if (!url.searchParams.has('page') && !url.searchParams.has('page_size')) return [items, {}];
  const page = Number(url.searchParams.get('page') ?? 1);
  const size = Number(url.searchParams.get('page_size') ?? 20);
  if (!Number.isInteger(page) || page < 1 || !Number.isInteger(size) || size < 1 || size > 100) {
    throw new RequestError(400, 'guard.invalid_pagination', 'The pagination value is not valid.');
  }
  return [items.slice((page - 1) * size, page * size), { 'Total-Number': String(items.length) }];
}

async function authenticateUser(req, provider) {
  const [scheme, token] = (req.headers.authorization ?? '').split(' ');
  const accessToken = scheme?.toLowerCase() === 'bearer' && token
    ? await provider.AccessToken.find(token) : undefined;
  if (!accessToken?.accountId) throw new RequestError(401, 'auth.unauthorized', 'Unauthorized.');
  if (!accessToken.scopes.has('openid')) throw new RequestError(403, 'auth.forbidden', 'Forbidden.');
  return accessToken.accountId;
}

function requireName(value, field = 'name') {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) {
    throw new RequestError(400, 'guard.invalid_input', `\`${field}\` must be a non-empty string (at most 256 characters).`);
  }
  return value;
}

export function makeManagementApiHandler({
  directory, keyRing, issuer, getProvider,
}) {
  const tokensOf = (userId) => {
    if (!directory.users.has(userId)) {
      throw new RequestError(404, 'entity.not_exists_with_id', `The user with ID \`${userId}\` does not exist.`);
    }
    return directory.personalAccessTokens.get(userId);
  };
  const findByName = (tokens, name) => {
    const found = tokens.find((pat) => pat.name === name);
    if (!found) {
      throw new RequestError(404, 'entity.not_found', `The personal access token \`${name}\` does not exist.`);
    }
    return found;
  };
  const assertNameFree = (tokens, name) => {
    if (tokens.some((pat) => pat.name === name)) {
      throw new RequestError(422, 'entity.unique_integrity_violation', `The personal access token name \`${name}\` is already in use.`);
    }
  };
  const rename = (tokens, currentName, newName) => {
    const pat = findByName(tokens, currentName);
    if (newName !== currentName) assertNameFree(tokens, newName);
    pat.name = newName;
    return pat;
  };
  const remove = (tokens, name) => {
    const pat = findByName(tokens, name);
    tokens.splice(tokens.indexOf(pat), 1);
  };

  const createSubjectToken = (body) => {
    const { userId, context = {} } = body;
    if (typeof userId !== 'string') {
      throw new RequestError(400, 'guard.invalid_input', 'The request body is invalid: `userId` is required.');
    }
    if (typeof context !== 'object' || context === null || Array.isArray(context)) {
      throw new RequestError(400, 'guard.invalid_input', 'The request body is invalid: `context` must be an object.');
    }
    if (!directory.users.has(userId)) {
      throw new RequestError(404, 'entity.relation_foreign_key_not_found', 'Cannot find one or more foreign keys. Please check the input and ensure that all referenced entities exist.');
    }
    return [201, directory.subjectTokens.create(userId, context)];
  };

  const routes = [
    ['POST', '/api/subject-tokens', (_, body) => createSubjectToken(body)],
    ['GET', '/api/users', (_, __, url) => {
      const [page, headers] = paginate(url, [...directory.users.values()].map(logtoUser));
      return [200, page, headers];
    }],
    ['GET', '/api/users/:userId', ({ userId }) => {
      tokensOf(userId); // 404 for an unknown user
      return [200, logtoUser(directory.users.get(userId))];
    }],
    ['GET', '/api/users/:userId/personal-access-tokens', ({ userId }) => [200, tokensOf(userId)]],
    ['POST', '/api/users/:userId/personal-access-tokens', ({ userId }, body) => {
      const tokens = tokensOf(userId);
      const name = requireName(body.name);
      const { expiresAt = null } = body;
      if (expiresAt !== null && (typeof expiresAt !== 'number' || expiresAt <= Date.now())) {
        throw new RequestError(400, 'request.invalid_input', 'The value of `expiresAt` must be in the future.');
      }
      assertNameFree(tokens, name);
      const pat = {
        tenantId: 'default', userId, name, value: `pat_${generateSecret()}`, createdAt: Date.now(), expiresAt,
      };
      tokens.push(pat);
      return [201, pat];
    }],
    ['PATCH', '/api/users/:userId/personal-access-tokens', ({ userId }, body) => {
      const tokens = tokensOf(userId);
      const name = requireName(body.name);
      const currentName = body.currentName === undefined ? name : requireName(body.currentName, 'currentName');
      return [200, rename(tokens, currentName, name)];
    }],
    ['POST', '/api/users/:userId/personal-access-tokens/delete', ({ userId }, body) => {
      remove(tokensOf(userId), requireName(body.name));
      return [204];
    }],
    ['PATCH', '/api/users/:userId/personal-access-tokens/:name', ({ userId, name }, body) => [
      200, rename(tokensOf(userId), name, requireName(body.name)),
    ]],
    ['DELETE', '/api/users/:userId/personal-access-tokens/:name', ({ userId, name }) => {
      remove(tokensOf(userId), name);
      return [204];
    }],
  ];

  return async function handleManagementApi(req, res, url, body) {
    const route = routes
      .map(([method, pattern, handler]) => [method, matchPath(pattern, url.pathname), handler])
      .find(([method, params]) => params && method === req.method);
    try {
      if (req.method === 'GET' && url.pathname === '/api/my-account') {
        const userId = await authenticateUser(req, getProvider());
        sendJson(res, 200, logtoUser(directory.users.get(userId)));
        return;
      }
      if (!route) throw new RequestError(404, 'guard.invalid_path', 'Not found.');
      await authenticate(req, { issuer, keyRing });
      const [, params, handler] = route;
      if (['POST', 'PATCH'].includes(req.method) && (typeof body !== 'object' || body === null)) {
        throw new RequestError(400, 'guard.invalid_input', 'The request body must be a JSON object.');
      }
      const [status, result, headers = {}] = handler(params, body ?? {}, url);
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      if (result === undefined) sendEmpty(res, status);
      else sendJson(res, status, result);
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      sendJson(res, error.status, { code: error.code, message: error.message });
    }
  };
}
