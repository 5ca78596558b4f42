// Builds the oidc-provider instance, configured like Logto's (LT oidc/init.ts). A new instance
// is built after every key rotation; all grants, sessions and tokens survive because they live
// in the adapter's module-level storage.

import Provider from 'oidc-provider';
import { setStorage } from 'oidc-provider/lib/adapters/memory_adapter.js';

import { USER_CLAIMS, makeFindAccount } from './accounts.mjs';
import { makeGetResourceServerInfo } from './resources.mjs';
import { tamperIdToken } from './id-token-tamper.mjs';
import * as refreshToken from './grants/refresh-token.mjs';
import * as clientCredentials from './grants/client-credentials.mjs';
import * as tokenExchange from './grants/token-exchange.mjs';
import { escapeHtml, parseUrl } from './http.mjs';
import { logtoErrorBody } from './logto-errors.mjs';
import { makeRefreshTokenTtl, makeRotateRefreshToken } from './refresh-policy.mjs';
import { deviceFlowFeature, deviceFlowMiddleware, deviceGrantTypes } from './device-flow.mjs';

// The default MemoryAdapter keeps at most 1000 entries (an LRU); a test run can create more, and
// an evicted grant or session would look like a provider bug. A Map keeps everything.
setStorage(new Map());

const SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'ES384', 'ES512'];
const DAY = 24 * 60 * 60;
const LOOPBACKS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Logto's extension parameters of the authorization request (packages/schemas ExtraParamsKey). */
const LOGTO_EXTRA_PARAMS = [
  'interaction_mode', 'first_screen', 'identifier', 'direct_sign_in', 'organization_id',
  'one_time_token', 'google_one_tap_credential',
];

/** Seed-only client fields that oidc-provider keeps as extra client metadata. */
const CUSTOM_CLIENT_METADATA = [
  'rotateRefreshToken', 'allowTokenExchange', 'alwaysIssueRefreshToken', 'loopbackAnyPort',
  'roles', 'organizations', 'idTokenTtl', 'refreshTokenTtl', 'refreshTokenTtlInDays',
  'isThirdParty', 'deviceFlow',
];

/**
 * Seed client -> oidc-provider client metadata (token exchange added when allowed; never for a
 * third-party app, to which Logto refuses the switch).
 */
function clientMetadata(seedClient) {
  const grantTypes = [...(seedClient.grant_types ?? ['authorization_code'])];
  if (seedClient.allowTokenExchange && !seedClient.isThirdParty
    && !grantTypes.includes(tokenExchange.GRANT_TYPE)) {
    grantTypes.push(tokenExchange.GRANT_TYPE);
  }
  return { ...seedClient, grant_types: deviceGrantTypes(seedClient, grantTypes) };
}

/** Is `value` a loopback http URL equal to one of `registered` once ports are ignored? */
function loopbackMatch(value, registered) {
  const parsed = parseUrl(value);
  if (!parsed || parsed.protocol !== 'http:' || !LOOPBACKS.has(parsed.hostname)) return false;
  parsed.port = '';
  return registered.some((uri) => {
    const candidate = parseUrl(uri);
    if (!candidate || candidate.hostname !== parsed.hostname) return false;
    candidate.port = '';
    return candidate.href === parsed.href;
  });
}

/**
 * Redirect URI matching: exact (oidc-provider), plus the URIs added through the admin route, plus
 * any port on a registered loopback URI for clients with `loopbackAnyPort: true`.
 */
function extendRedirectUriMatching(provider, control) {
  const { prototype } = provider.Client;
  const exactRedirect = prototype.redirectUriAllowed;
  const exactPostLogout = prototype.postLogoutRedirectUriAllowed;

  prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    const added = [...(control.redirectUris.get(this.clientId) ?? [])];
    return exactRedirect.call(this, value)
      || added.includes(value)
      || (this.loopbackAnyPort === true && loopbackMatch(value, [...this.redirectUris, ...added]));
  };
  prototype.postLogoutRedirectUriAllowed = function postLogoutRedirectUriAllowed(value) {
    const registered = this.postLogoutRedirectUris ?? [];
    const added = [...(control.postLogoutRedirectUris.get(this.clientId) ?? [])];
    return exactPostLogout.call(this, value)
      || added.includes(value)
      || (this.loopbackAnyPort === true && loopbackMatch(value, [...registered, ...added]));
  };
}

const SEEDED_BACKCHANNEL = Symbol('seeded back-channel logout settings');

/**
 * The back-channel logout URI and "is session required" of a client as set through the admin
 * route (Logto: the application's settings), applied to the client every time it is looked up.
 */
function applyBackchannelSettings(provider, control) {
  const { Client } = provider;
  const find = Client.find.bind(Client);
  Client.find = async function findWithSettings(id, ...rest) {
    const client = await find(id, ...rest);
    if (!client) return client;
    client[SEEDED_BACKCHANNEL] ??= {
      uri: client.backchannelLogoutUri,
      sessionRequired: client.backchannelLogoutSessionRequired,
    };
    const settings = control.backchannelLogout.get(client.clientId) ?? client[SEEDED_BACKCHANNEL];
    client.backchannelLogoutUri = settings.uri;
    client.backchannelLogoutSessionRequired = settings.sessionRequired;
    return client;
  };
}

/** LT extra-token-claims.ts: organization_id on organization-scoped API tokens, `act`. */
async function extraTokenClaims(ctx, token) {
  if (!ctx?.oidc) return undefined;
  const { AccessToken, ClientCredentials } = ctx.oidc.provider;
  if (!(token instanceof AccessToken) && !(token instanceof ClientCredentials)) return undefined;
  const claims = {};
  const { organization_id: organizationId, resource } = ctx.oidc.params ?? {};
  if (organizationId && resource) claims.organization_id = organizationId;
  if (token.gty === tokenExchange.GRANT_TYPE && token.extra?.act) claims.act = token.extra.act;
  return Object.keys(claims).length ? claims : undefined;
}

/**
 * Logto's oidc-provider fork writes `scope` into every JWT access token, empty when nothing was
 * granted (upstream leaves an empty scope out).
 */
function jwtAccessTokenCustomizer(ctx, token, jwt) {
  if (jwt.payload.scope === undefined && typeof token.scope === 'string') {
    // eslint-disable-next-line no-param-reassign
    jwt.payload.scope = token.scope;
  }
}

function logoutSource(ctx, form) {
  const confirmForm = form.replace(
    '</form>',
    '<input type="hidden" name="logout" value="yes"/>'
      + '<button type="submit" id="sign-out">Sign out</button></form>',
  );
  ctx.body = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign out</title></head>
<body><h1>Sign out</h1><p>Signing you out&hellip;</p>
${confirmForm}
<script>document.getElementById('op.logoutForm').submit();</script>
</body></html>`;
}

function postLogoutSuccessSource(ctx) {
  const client = ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;
  ctx.body = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Signed out</title></head>
<body><h1>Signed out</h1><p>You have signed out${client ? ` of ${escapeHtml(client)}` : ''}.</p></body></html>`;
}

/** What Logto 1.42 leaves out of oidc-provider 8's token-endpoint ID tokens (see below). */
const LOGTO_ID_TOKEN = {
  claims: {}, removeClaims: ['at_hash'], removeHeader: ['typ'], sign: 'provider', header: {},
};

/**
 * Koa middleware in front of oidc-provider's routes: Logto's error body shape, the one-shot ID
 * token tampering and the JWKS modes.
 */
function testControlMiddleware(control, keyRing) {
  return async function controlled(ctx, next) {
    await next();

    const { body } = ctx;
    if (ctx.status >= 400 && body && typeof body === 'object' && typeof body.error === 'string'
      && ctx.query.parse_error !== 'false') {
      ctx.body = logtoErrorBody(body);
    }

    if (ctx.path === '/token' && ctx.status === 200 && body?.id_token) {
      // Logto 1.42 (oidc-provider v9): the token endpoint's ID tokens have no at_hash and no
      // `typ` header; oidc-provider 8 sets both, so they are re-signed without them.
      let idToken = await tamperIdToken(body.id_token, LOGTO_ID_TOKEN, keyRing.current);
      if (control.idTokenMutation) {
        idToken = await tamperIdToken(idToken, control.takeIdTokenMutation(), keyRing.current);
      }
      ctx.body = { ...body, id_token: idToken };
    }

    if (ctx.path === '/jwks' && ctx.status === 200 && control.jwksMode !== 'normal') {
      const { kid, ...withoutKid } = keyRing.current.publicJwk;
      ctx.body = { keys: control.jwksMode === 'strip_kid' ? [withoutKid] : [] };
    }
  };
}

export function buildProvider({
  issuer, directory, keyRing, control,
}) {
  const settings = directory.seed.provider ?? {};
  const cookie = {
    sameSite: 'lax', path: '/', signed: true, overwrite: true,
  };

  const provider = new Provider(issuer, {
    clients: directory.seed.clients.map(clientMetadata),
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: keyRing.current.alg,
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    extraClientMetadata: { properties: CUSTOM_CLIENT_METADATA, validator() {} },
    jwks: keyRing.privateJwks(),
    cookies: { keys: settings.cookieKeys, long: cookie, short: cookie },
    renderError(ctx, out) { ctx.body = out; },
    enabledJWA: {
      authorizationSigningAlgValues: SIGNING_ALGS,
      userinfoSigningAlgValues: SIGNING_ALGS,
      idTokenSigningAlgValues: SIGNING_ALGS,
      introspectionSigningAlgValues: SIGNING_ALGS,
    },
    conformIdTokenClaims: false,
    claims: USER_CLAIMS,
    scopes: ['openid', 'offline_access', ...Object.keys(USER_CLAIMS)],
    extraParams: LOGTO_EXTRA_PARAMS,
    findAccount: makeFindAccount(directory, settings.idTokenExtendedClaims ?? []),
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: deviceFlowFeature,
      // LT oidc/init.ts: Back-Channel Logout 1.0; each client's backchannel_logout_uri and
      // backchannel_logout_session_required come from its metadata (Console: "Backchannel logout").
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => false,
        getResourceServerInfo: makeGetResourceServerInfo(directory, keyRing),
      },
    },
    interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
    issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
      && (code.scopes.has('offline_access')
        || (client.applicationType === 'web' && client.alwaysIssueRefreshToken === true)),
    rotateRefreshToken: makeRotateRefreshToken(control),
    extraTokenClaims,
    formats: { customizers: { jwt: jwtAccessTokenCustomizer } },
    pkce: { required: () => true, methods: ['S256'] },
    clientBasedCORS: () => true,
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 3600,
      AuthorizationCode: 60,
      DeviceCode: () => control.deviceFlow.ttl,
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 3600,
      IdToken: (ctx, token, client) => client.idTokenTtl ?? 3600,
      RefreshToken: makeRefreshTokenTtl(control),
      Interaction: 3600,
      Session: 14 * DAY,
      Grant: 180 * DAY,
    },
  });

  extendRedirectUriMatching(provider, control);
  applyBackchannelSettings(provider, control);
  provider.on('backchannel.error', (ctx, error, client) => {
    console.error(`[provider] back-channel logout to ${client.clientId} failed: ${error.message}`);
  });

  // Logto's grant handlers replace oidc-provider's; `resource` may repeat, as in the originals.
  const grants = [
    ['refresh_token', refreshToken],
    ['client_credentials', clientCredentials],
    [tokenExchange.GRANT_TYPE, tokenExchange],
  ];
  for (const [grantType, grant] of grants) {
    const parameters = new Set([...grant.parameters, 'resource']);
    provider.registerGrantType(grantType, grant.makeHandler(directory, keyRing, control), parameters, ['resource']);
  }

  provider.use(testControlMiddleware(control, keyRing));
  provider.use(deviceFlowMiddleware(control));
  provider.on('server_error', (ctx, error) => {
    console.error(`[provider] server_error on ${ctx.method} ${ctx.path}:`, error);
  });

  return provider;
}
