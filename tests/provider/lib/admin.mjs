// Loopback-only test-control routes under /__admin (the server binds 127.0.0.1 only).
//
//   POST /__admin/fault                      {endpoint, mode, times?, delay_ms?, status?}
//   GET  /__admin/faults                     armed faults
//   POST /__admin/id-token                   {claims?, remove_claims?, sign?, header?, secret_form?}
//   POST /__admin/jwks-mode                  {mode: normal | strip_kid | empty}
//   POST /__admin/rotate-keys                {alg?} -> new signing key, old keys stay published
//   GET  /__admin/keys                       {alg, kid, kids, jwks}
//   GET  /__admin/requests?path=&method=&grant_type=   the request log
//   POST /__admin/reset                      clears faults, ID token mutation, log, JWKS mode,
//                                            refresh-token overrides, back-channel logout settings
//   POST /__admin/clients/:id/redirect-uris  {redirect_uris?: [..], post_logout_redirect_uris?: [..]}
//   POST /__admin/clients/:id/refresh-tokens {rotation?: logto | always | never, ttl?: seconds}
//   POST /__admin/clients/:id/backchannel-logout {uri: "http://..." | null, session_required?: true}
//   POST /__admin/sign-jwt                   {claims, header?, sign?: provider | attacker | ...} -> {token}
//   POST /__admin/refresh-token-reuse        {seconds}: how long a rotated token is still accepted
//   POST /__admin/device-flow                {interval?, min_poll_interval?, slow_down?, ttl?}
//   GET  /__admin/seed                       the seed data (users, clients, secrets, ...)

import { FAULT_ENDPOINTS, FAULT_MODES } from './faults.mjs';
import { JWKS_MODES } from './control.mjs';
import { parseMutation, SIGN_MODES, tamperIdToken } from './id-token-tamper.mjs';
import { SUPPORTED_ALGS } from './keys.mjs';
import { matchPath, parseUrl, sendJson } from './http.mjs';
import { parseRefreshTokenSettings } from './refresh-policy.mjs';

class BadRequest extends Error {}

const asObject = (body) => {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequest('body must be a JSON object');
  }
  return body;
};

const keyInfo = (keyRing) => ({
  alg: keyRing.current.alg,
  kid: keyRing.current.kid,
  kids: keyRing.keys.map((key) => key.kid),
  jwks: keyRing.publicJwks(),
});

export function makeAdminHandler({
  control, keyRing, directory, rotateKeys,
}) {
  const routes = {
    'POST /__admin/fault': (body) => {
      try {
        return { armed: control.faults.arm(asObject(body)) };
      } catch (error) {
        throw new BadRequest(error.message);
      }
    },
    'GET /__admin/faults': () => ({ faults: control.faults.pending() }),
    'POST /__admin/id-token': (body) => {
      try {
        control.idTokenMutation = parseMutation(asObject(body));
      } catch (error) {
        throw new BadRequest(error.message);
      }
      return { armed: control.idTokenMutation };
    },
    'POST /__admin/jwks-mode': (body) => {
      const { mode } = asObject(body);
      if (!JWKS_MODES.includes(mode)) throw new BadRequest(`mode must be one of ${JWKS_MODES.join(', ')}`);
      control.jwksMode = mode;
      return { mode };
    },
    'POST /__admin/rotate-keys': async (body) => {
      const { alg } = asObject(body);
      if (alg !== undefined && !SUPPORTED_ALGS.includes(alg)) {
        throw new BadRequest(`alg must be one of ${SUPPORTED_ALGS.join(', ')}`);
      }
      await rotateKeys(alg);
      return keyInfo(keyRing);
    },
    'GET /__admin/keys': () => keyInfo(keyRing),
    // Any JWT signed as the provider would (or by an attacker with the provider's kid), e.g. a
    // logout token for a test to send to an application's back-channel logout URI.
    'POST /__admin/sign-jwt': async (body) => {
      const { claims = {}, header = {}, sign = 'provider' } = asObject(body);
      let mutation;
      try {
        mutation = parseMutation({ claims, header, sign });
      } catch (error) {
        throw new BadRequest(error.message);
      }
      const blank = `${Buffer.from('{"typ":"JWT"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`;
      return { token: await tamperIdToken(blank, mutation, keyRing.current) };
    },
    'GET /__admin/requests': (body, url) => ({
      requests: control.log.list({
        path: url.searchParams.get('path') ?? undefined,
        method: url.searchParams.get('method') ?? undefined,
        grantType: url.searchParams.get('grant_type') ?? undefined,
      }),
    }),
    'POST /__admin/reset': () => {
      control.reset();
      return { reset: true };
    },
    'POST /__admin/refresh-token-reuse': (body) => {
      const { seconds } = asObject(body);
      if (typeof seconds !== 'number' || seconds < 0) throw new BadRequest('seconds must be a number >= 0');
      control.refreshTokenReuseInterval = seconds;
      return { seconds };
    },
    'POST /__admin/device-flow': (body) => {
      try {
        return control.deviceFlow.configure(asObject(body));
      } catch (error) {
        throw new BadRequest(error.message);
      }
    },
    'GET /__admin/seed': () => directory.seed,
    'GET /__admin': () => ({
      fault_endpoints: Object.keys(FAULT_ENDPOINTS),
      fault_modes: FAULT_MODES,
      sign_modes: SIGN_MODES,
      jwks_modes: JWKS_MODES,
      algs: SUPPORTED_ALGS,
    }),
  };

  function addRedirectUris(clientId, body) {
    if (!directory.clients.has(clientId)) throw new BadRequest(`unknown client ${clientId}`);
    const {
      redirect_uri: one, redirect_uris: many = [], post_logout_redirect_uris: logout = [],
    } = asObject(body);
    const uris = one ? [one, ...many] : many;
    for (const uri of [...uris, ...logout]) {
      if (typeof uri !== 'string' || !parseUrl(uri)) throw new BadRequest(`invalid URI ${uri}`);
    }
    return {
      client_id: clientId,
      redirect_uris: control.addUris(control.redirectUris, clientId, uris),
      post_logout_redirect_uris: control.addUris(control.postLogoutRedirectUris, clientId, logout),
    };
  }

  function setBackchannelLogout(clientId, body) {
    if (!directory.clients.has(clientId)) throw new BadRequest(`unknown client ${clientId}`);
    const { uri = null, session_required: sessionRequired = true } = asObject(body);
    if (uri === null) {
      control.backchannelLogout.delete(clientId);
    } else {
      if (typeof uri !== 'string' || !parseUrl(uri)) throw new BadRequest(`invalid URI ${uri}`);
      control.backchannelLogout.set(clientId, { uri, sessionRequired: sessionRequired === true });
    }
    return { client_id: clientId, uri, session_required: uri !== null && sessionRequired === true };
  }

  function setRefreshTokens(clientId, body) {
    if (!directory.clients.has(clientId)) throw new BadRequest(`unknown client ${clientId}`);
    let settings;
    try {
      settings = parseRefreshTokenSettings(asObject(body));
    } catch (error) {
      throw new BadRequest(error.message);
    }
    control.refreshTokens.set(clientId, { ...control.refreshTokens.get(clientId), ...settings });
    const { rotateRefreshToken: rotation, ttl } = control.refreshTokens.get(clientId);
    return { client_id: clientId, rotation, ttl };
  }

  return async function handleAdmin(req, res, url, body) {
    try {
      const refreshRoute = matchPath('/__admin/clients/:id/refresh-tokens', url.pathname);
      if (refreshRoute && req.method === 'POST') {
        sendJson(res, 200, setRefreshTokens(refreshRoute.id, body));
        return;
      }
      const backchannelRoute = matchPath('/__admin/clients/:id/backchannel-logout', url.pathname);
      if (backchannelRoute && req.method === 'POST') {
        sendJson(res, 200, setBackchannelLogout(backchannelRoute.id, body));
        return;
      }
      const clientRoute = matchPath('/__admin/clients/:id/redirect-uris', url.pathname);
      if (clientRoute && req.method === 'POST') {
        sendJson(res, 200, addRedirectUris(clientRoute.id, body));
        return;
      }
      const route = routes[`${req.method} ${url.pathname.replace(/\/$/, '')}`];
      if (!route) {
        sendJson(res, 404, { error: 'not_found', error_description: `no admin route ${req.method} ${url.pathname}` });
        return;
      }
      sendJson(res, 200, await route(body, url));
    } catch (error) {
      if (error instanceof BadRequest) {
        sendJson(res, 400, { error: 'invalid_request', error_description: error.message });
        return;
      }
      throw error;
    }
  };
}
