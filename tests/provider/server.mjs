// Development/test OpenID provider that behaves like Logto on the wire.
//
//   PORT=4000 ALG=ES384 node tests/provider/server.mjs
//
// Listens on 127.0.0.1 only and prints exactly one stdout line, "READY http://127.0.0.1:<port>",
// once it accepts requests (PORT=0 or unset picks a free port). Logs go to stderr. SIGTERM/SIGINT
// stop it cleanly. Env: PORT, ALG (ES384 | RS256 | ES256 | ES512 | PS256), SEED (seed file path).
//
//   /oidc/...         oidc-provider (issuer http://127.0.0.1:<port>/oidc)
//   /device           Logto's device page: sends the person on to the provider's (/oidc/device)
//   /interaction/...  headless-friendly sign-in pages and automatic consent (lib/interactions.mjs)
//   /api/...          Management API personal access token and user routes, the Account API's
//                     GET /api/my-account (lib/management-api.mjs)
//   /__admin/...      test control: faults, ID token tampering, keys, request log (lib/admin.mjs)

import './lib/stdout-guard.mjs';

import http from 'node:http';
import * as querystring from 'node:querystring';
import { fileURLToPath } from 'node:url';

import { Directory } from './lib/directory.mjs';
import { KeyRing } from './lib/keys.mjs';
import { Control } from './lib/control.mjs';
import { buildProvider } from './lib/provider.mjs';
import { makeAdminHandler } from './lib/admin.mjs';
import { makeInteractionHandler } from './lib/interactions.mjs';
import { makeManagementApiHandler } from './lib/management-api.mjs';
import {
  isJson, parseBody, readBody, sendJson,
} from './lib/http.mjs';

const HOST = '127.0.0.1';
const MOUNT = '/oidc';

const seedPath = process.env.SEED || fileURLToPath(new URL('./seed.json', import.meta.url));
const directory = Directory.load(seedPath);
const keyRing = await KeyRing.create(process.env.ALG || 'ES384');
const control = new Control();

const server = http.createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error('[server] unhandled error:', error);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(error.message) });
    else res.destroy();
  });
});

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(process.env.PORT || 0), HOST, resolve);
});
const origin = `http://${HOST}:${server.address().port}`;
const issuer = `${origin}${MOUNT}`;

// --- the oidc-provider instance (rebuilt, with the same storage, when keys rotate) ---------------

let provider;
let providerCallback;
function installProvider() {
  provider = buildProvider({
    issuer, directory, keyRing, control,
  });
  providerCallback = provider.callback();
}
installProvider();

const handleAdmin = makeAdminHandler({
  control,
  keyRing,
  directory,
  rotateKeys: async (alg) => {
    await keyRing.rotate(alg);
    installProvider();
  },
});
const handleInteraction = makeInteractionHandler({ getProvider: () => provider, directory });
const handleManagementApi = makeManagementApiHandler({
  directory, keyRing, issuer, getProvider: () => provider,
});

/** LT koa-resource-param: a comma-separated `resource` query value means several resources. */
function splitResourceQueryParams(req, url) {
  const resources = url.searchParams.getAll('resource');
  if (!resources.some((value) => value.includes(','))) return;
  url.searchParams.delete('resource');
  for (const value of resources.flatMap((v) => v.split(','))) url.searchParams.append('resource', value);
  req.url = `${url.pathname}${url.search}`;
}

/** Hand a request (body already read) to oidc-provider mounted at /oidc. */
function forwardToProvider(req, res, url, rawBody, body) {
  splitResourceQueryParams(req, url);
  if (isJson(req) && body && typeof body === 'object') {
    // Logto accepts JSON bodies at its OIDC endpoints and converts them to form bodies.
    req.headers['content-type'] = 'application/x-www-form-urlencoded';
    req.body = querystring.stringify(body);
  } else {
    req.body = rawBody; // oidc-provider reads req.body when the stream was already consumed
  }
  req.headers.host = `${HOST}:${server.address().port}`; // URLs always match the issuer
  req.originalUrl = req.url; // lets oidc-provider compute its mount path (/oidc)
  req.url = req.url.slice(MOUNT.length) || '/';
  providerCallback(req, res);
}

const under = (pathname, prefix) => pathname === prefix || pathname.startsWith(`${prefix}/`);

// --- JWKS publication and oversized bodies (test controls kept here, self-contained) -----------
//   POST /__admin/jwks-publish {kids?: [...], cache_control?: "max-age=5"}  null/{} = as usual
//   POST /__admin/huge-body    {path, bytes}: the next GET of `path` streams a chunked JSON body
//                              of `bytes` bytes; GET /__admin/huge-body reports {sent, closed}
let jwksPublish = null;
let hugeBody = null;
let hugeBodyReport = { sent: 0, closed: false };

function handleTestControls(req, res, url, body) {
  if (url.pathname === '/__admin/reset') {
    jwksPublish = null;
    hugeBody = null;
    return false; // lib/admin.mjs resets the rest
  }
  if (url.pathname === '/__admin/jwks-publish' && req.method === 'POST') {
    const { kids = null, cache_control: cacheControl = null } = body || {};
    jwksPublish = kids === null && cacheControl === null ? null : { kids, cacheControl };
    sendJson(res, 200, { kids, cache_control: cacheControl });
    return true;
  }
  if (url.pathname === '/__admin/huge-body') {
    if (req.method === 'POST') {
      hugeBody = { path: body.path, bytes: body.bytes };
      hugeBodyReport = { sent: 0, closed: false };
      sendJson(res, 200, { armed: hugeBody });
    } else {
      sendJson(res, 200, hugeBodyReport);
    }
    return true;
  }
  return false;
}

function serveTestOverrides(req, res, url) {
  if (hugeBody && url.pathname === hugeBody.path && req.method === 'GET') {
    const { bytes } = hugeBody;
    hugeBody = null;
    const report = { sent: 0, closed: false };
    hugeBodyReport = report;
    res.writeHead(200, { 'content-type': 'application/json' }); // no length: chunked
    const chunk = Buffer.from(`"${'a'.repeat(64 * 1024 - 2)}"`);
    res.write('[');
    res.on('close', () => { report.closed = true; });
    const pump = () => {
      while (report.sent < bytes && !report.closed) {
        report.sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!report.closed) res.end(']');
    };
    pump();
    return true;
  }
  if (jwksPublish && url.pathname === `${MOUNT}/jwks` && req.method === 'GET') {
    const { keys } = keyRing.publicJwks();
    const listed = jwksPublish.kids ? keys.filter((key) => jwksPublish.kids.includes(key.kid)) : keys;
    const headers = { 'content-type': 'application/json; charset=utf-8' };
    if (jwksPublish.cacheControl) headers['cache-control'] = jwksPublish.cacheControl;
    res.writeHead(200, headers);
    res.end(JSON.stringify({ keys: listed }));
    return true;
  }
  return false;
}

async function handle(req, res) {
  const url = new URL(req.url, origin);
  const rawBody = ['GET', 'HEAD'].includes(req.method) ? Buffer.alloc(0) : await readBody(req);
  const body = parseBody(req, rawBody);

  if (under(url.pathname, '/__admin')) {
    if (handleTestControls(req, res, url, body)) return;
    if (rawBody.length && body === undefined) {
      sendJson(res, 400, { error: 'invalid_request', error_description: 'body must be JSON' });
      return;
    }
    await handleAdmin(req, res, url, body);
    return;
  }

  const entry = control.log.record(req, url, body);
  res.on('finish', () => { entry.status = res.statusCode; });

  const fault = control.faults.take(url.pathname);
  if (fault) {
    entry.fault = fault.mode;
    console.error(`[fault] ${fault.mode} on ${req.method} ${url.pathname}`);
    if (await control.faults.apply(fault, res)) return;
  }

  if (serveTestOverrides(req, res, url)) {
    // answered by a test control
  } else if (under(url.pathname, MOUNT)) {
    forwardToProvider(req, res, url, rawBody, body);
  } else if (url.pathname === '/device' && req.method === 'GET') {
    res.writeHead(302, { location: `${MOUNT}/device${url.search}` });
    res.end();
  } else if (under(url.pathname, '/interaction') && await handleInteraction(req, res, url, body)) {
    // handled
  } else if (under(url.pathname, '/api')) {
    await handleManagementApi(req, res, url, body);
  } else if (url.pathname === '/' && req.method === 'GET') {
    sendJson(res, 200, { issuer, discovery: `${issuer}/.well-known/openid-configuration` });
  } else {
    sendJson(res, 404, { error: 'not_found', error_description: `${req.method} ${url.pathname}` });
  }
}

function shutdown(signal) {
  console.error(`[server] ${signal}: shutting down`);
  control.faults.reset();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

console.error(`[server] issuer ${issuer}, signing ${keyRing.current.alg} kid ${keyRing.current.kid}`);
process.stdout.write(`READY ${origin}\n`);
