// Fault injection: the next `times` requests to one endpoint misbehave.
//
//   status500     500 with a JSON error body
//   html          200 (or `status`) with a text/html body, like a proxy error page
//   hang          never answers (with `delay_ms`: waits that long, then answers normally)
//   invalid_json  200 with Content-Type application/json and a body that is not JSON

/** Endpoint names accepted by POST /__admin/fault, and the paths they cover. */
export const FAULT_ENDPOINTS = {
  token: '/oidc/token',
  discovery: '/oidc/.well-known/openid-configuration',
  jwks: '/oidc/jwks',
  userinfo: '/oidc/me',
  revocation: '/oidc/token/revocation',
  introspection: '/oidc/token/introspection',
  end_session: '/oidc/session/end',
  auth: '/oidc/auth',
};

export const FAULT_MODES = ['status500', 'html', 'hang', 'invalid_json'];

export class Faults {
  /** endpoint name -> {mode, remaining, delayMs, status} */
  #pending = new Map();

  /** Responses held open by `hang` faults, ended on reset/shutdown. */
  #hanging = new Set();

  /** Validate and arm a fault; returns the armed fault description. */
  arm({
    endpoint, mode, times = 1, delay_ms: delayMs, status,
  }) {
    if (!Object.hasOwn(FAULT_ENDPOINTS, endpoint)) {
      throw new TypeError(`endpoint must be one of ${Object.keys(FAULT_ENDPOINTS).join(', ')}`);
    }
    if (!FAULT_MODES.includes(mode)) {
      throw new TypeError(`mode must be one of ${FAULT_MODES.join(', ')}`);
    }
    if (!Number.isInteger(times) || times < 1) {
      throw new TypeError('times must be a positive integer');
    }
    if (delayMs !== undefined && (!Number.isFinite(delayMs) || delayMs < 0)) {
      throw new TypeError('delay_ms must be a non-negative number');
    }
    if (status !== undefined && (!Number.isInteger(status) || status < 100 || status > 599)) {
      throw new TypeError('status must be an HTTP status code');
    }
    const fault = {
      mode, remaining: times, delayMs, status,
    };
    this.#pending.set(endpoint, fault);
    return { endpoint, ...fault };
  }

  /** The endpoint name a request path belongs to, or undefined. */
  static endpointFor(pathname) {
    return Object.keys(FAULT_ENDPOINTS).find((name) => FAULT_ENDPOINTS[name] === pathname);
  }

  /** Consume one use of the fault armed for this path, if any. */
  take(pathname) {
    const endpoint = Faults.endpointFor(pathname);
    const fault = endpoint && this.#pending.get(endpoint);
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.#pending.delete(endpoint);
    return { endpoint, ...fault };
  }

  pending() {
    return Object.fromEntries([...this.#pending].map(([endpoint, f]) => [endpoint, { ...f }]));
  }

  /**
   * Apply a fault to a request. Returns true when the response was taken over, false when the
   * request should go on normally (a `hang` with `delay_ms`, after the delay).
   */
  async apply(fault, res) {
    switch (fault.mode) {
      case 'status500':
        res.writeHead(fault.status ?? 500, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({
          error: 'server_error',
          error_description: 'injected fault: status500',
        }));
        return true;
      case 'html':
        res.writeHead(fault.status ?? 200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end('<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>'
          + '<p>injected fault: html</p></body></html>');
        return true;
      case 'invalid_json':
        res.writeHead(fault.status ?? 200, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end('{"access_token": "truncated-by-injected-fault", "expires_in": 36');
        return true;
      case 'hang':
        if (fault.delayMs !== undefined) {
          await new Promise((resolve) => { setTimeout(resolve, fault.delayMs); });
          return false;
        }
        this.#hanging.add(res);
        res.on('close', () => this.#hanging.delete(res));
        return true;
      default:
        throw new TypeError(`unknown fault mode ${fault.mode}`);
    }
  }

  /** Disarm everything and drop the connections held open by `hang`. */
  reset() {
    this.#pending.clear();
    for (const res of this.#hanging) res.destroy();
    this.#hanging.clear();
  }
}
