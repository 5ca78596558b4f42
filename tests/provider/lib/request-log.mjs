// The request log behind GET /__admin/requests. Secrets and tokens are never stored in clear:
// they are replaced with "sha256:<first 16 hex digits of SHA-256(value)>", so a test can still
// check that the same token was sent twice (tests/provider_harness.py `token_hash`).

import { createHash } from 'node:crypto';

const SECRET_PARAMS = new Set([
  'client_secret', 'code', 'code_verifier', 'refresh_token', 'token', 'subject_token',
  'actor_token', 'password', 'client_assertion', 'id_token_hint', 'access_token', 'xsrf',
  'assertion', 'device_code',
]);

export const tokenHash = (value) => `sha256:${createHash('sha256').update(String(value)).digest('hex').slice(0, 16)}`;

function redact(params) {
  const out = {};
  for (const [key, value] of Object.entries(params)) {
    const redactOne = (v) => (SECRET_PARAMS.has(key) ? tokenHash(v) : v);
    out[key] = Array.isArray(value) ? value.map(redactOne) : redactOne(value);
  }
  return out;
}

/** Describe the Authorization header without its secret part. */
function describeAuthorization(header) {
  if (!header) return undefined;
  const [scheme, credentials = ''] = header.split(' ', 2);
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const separator = decoded.indexOf(':');
    const clientId = separator === -1 ? decoded : decoded.slice(0, separator);
    return { scheme: 'basic', client_id: decodeURIComponent(clientId.replace(/\+/g, ' ')) };
  }
  if (scheme.toLowerCase() === 'bearer' || scheme.toLowerCase() === 'dpop') {
    return { scheme: scheme.toLowerCase(), token: tokenHash(credentials) };
  }
  return { scheme: scheme.toLowerCase() };
}

/** The log keeps the most recent entries only (tests reset it; a dev session can run for long). */
const MAX_ENTRIES = 10000;

export class RequestLog {
  #entries = [];

  #nextId = 1;

  /** Record a request (body already parsed into `form`); returns the entry, completed later. */
  record(req, url, form) {
    const query = {};
    for (const key of new Set(url.searchParams.keys())) {
      const values = url.searchParams.getAll(key);
      query[key] = values.length === 1 ? values[0] : values;
    }
    const redactedForm = form ? redact(form) : undefined;
    const entry = {
      id: this.#nextId++,
      timestamp: new Date().toISOString(),
      time_ms: Date.now(),
      method: req.method,
      path: url.pathname,
      query: redact(query),
      form: redactedForm ?? null,
      grant_type: form?.grant_type ?? null,
      content_type: req.headers['content-type'] ?? null,
      authorization: describeAuthorization(req.headers.authorization) ?? null,
      // The client's source port: equal ports on consecutive requests mean one reused connection.
      remote_port: req.socket?.remotePort ?? null,
      status: null, // set when the response is finished
      fault: null, // the fault mode applied to this request, if any
    };
    this.#entries.push(entry);
    if (this.#entries.length > MAX_ENTRIES) this.#entries.shift();
    return entry;
  }

  list({ path, method, grantType } = {}) {
    return this.#entries.filter((entry) => (!path || entry.path === path)
      && (!method || entry.method === method.toUpperCase())
      && (!grantType || entry.grant_type === grantType));
  }

  clear() {
    this.#entries = [];
  }
}
