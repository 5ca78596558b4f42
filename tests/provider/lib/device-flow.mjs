// The device authorization grant (RFC 8628) as Logto 1.42 offers it: oidc-provider's deviceFlow
// feature (POST /oidc/device/auth, the user-code page at /oidc/device), for native apps whose
// seed entry has `deviceFlow: true`. Like Logto, the device authorization response names Logto's
// own page, `<origin>/device` (server.mjs sends it on to /oidc/device), and has no `interval`
// (clients wait RFC 8628's default 5 s); a client that polls faster gets `slow_down`.
//
// Test controls (POST /__admin/device-flow, until the next reset): `interval` (s; once set, it is
// advertised in the device authorization response, which Logto never does),
// `min_poll_interval` (s, polls of one device code closer than this answer slow_down; default:
// the interval), `slow_down` (the next n polls answer slow_down, however late they come) and
// `ttl` (s, lifetime of the device codes issued from now on).

export const DEVICE_CODE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';
export const DEFAULT_INTERVAL = 5;
export const DEFAULT_TTL = 600;

export class DeviceFlowControl {
  interval = DEFAULT_INTERVAL;

  /** Whether a test set the interval (only then is it in the device authorization response). */
  advertised = false;

  minPollInterval = null;

  ttl = DEFAULT_TTL;

  /** How many of the next polls answer slow_down whatever their timing. */
  slowDownNext = 0;

  /** device_code -> time (ms) of its last poll. */
  lastPoll = new Map();

  configure({
    interval, min_poll_interval: minPoll, ttl, slow_down: slowDown,
  } = {}) {
    const check = (name, value) => {
      if (value !== undefined && (typeof value !== 'number' || value < 0)) {
        throw new Error(`${name} must be a number >= 0`);
      }
    };
    check('interval', interval);
    check('min_poll_interval', minPoll);
    check('ttl', ttl);
    check('slow_down', slowDown);
    if (slowDown !== undefined) this.slowDownNext = Math.floor(slowDown);
    if (interval !== undefined) {
      this.interval = interval;
      this.advertised = true;
    }
    if (minPoll !== undefined) this.minPollInterval = minPoll;
    if (ttl !== undefined) this.ttl = ttl;
    return this.settings();
  }

  settings() {
    return {
      interval: this.interval,
      min_poll_interval: this.minPollInterval ?? this.interval,
      slow_down: this.slowDownNext,
      ttl: this.ttl,
    };
  }

  /** Records a poll of `deviceCode`; true when it came too soon after the previous one. */
  tooSoon(deviceCode, now = Date.now()) {
    const last = this.lastPoll.get(deviceCode);
    this.lastPoll.set(deviceCode, now);
    if (this.slowDownNext > 0) {
      this.slowDownNext -= 1;
      return true;
    }
    const minimum = (this.minPollInterval ?? this.interval) * 1000;
    return last !== undefined && now - last < minimum;
  }

  reset() {
    this.interval = DEFAULT_INTERVAL;
    this.advertised = false;
    this.minPollInterval = null;
    this.ttl = DEFAULT_TTL;
    this.slowDownNext = 0;
    this.lastPoll.clear();
  }
}

/** Seed client -> its grant types: the device code grant for a native app with `deviceFlow`. */
export function deviceGrantTypes(seedClient, grantTypes) {
  if (seedClient.deviceFlow === true && seedClient.application_type === 'native'
    && !grantTypes.includes(DEVICE_CODE_GRANT_TYPE)) {
    grantTypes.push(DEVICE_CODE_GRANT_TYPE);
  }
  return grantTypes;
}

/** oidc-provider's `features.deviceFlow` (its default pages: code input, confirm, success). */
export const deviceFlowFeature = { enabled: true, charset: 'base-20', mask: '****-****' };

function formOf(ctx) {
  const raw = ctx.req.body;
  if (raw === undefined || raw === null) return new URLSearchParams();
  return new URLSearchParams(Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw));
}

/** `<origin>/device` for the provider's `<issuer>/device` (Logto's page, not the provider's). */
const logtoDevicePage = (uri, issuer) => uri && uri.replace(`${issuer}/device`, `${new URL(issuer).origin}/device`);

/**
 * Koa middleware: `slow_down` for a device code polled too soon (before the grant runs); the
 * device authorization response as Logto sends it (verification URIs at `/device`; `interval`
 * only when a test set one).
 */
export function deviceFlowMiddleware(control) {
  return async function deviceFlow(ctx, next) {
    if (ctx.path === '/token' && ctx.method === 'POST') {
      const form = formOf(ctx);
      const deviceCode = form.get('device_code');
      if (form.get('grant_type') === DEVICE_CODE_GRANT_TYPE && deviceCode
        && control.deviceFlow.tooSoon(deviceCode)) {
        ctx.status = 400;
        ctx.set('cache-control', 'no-store');
        ctx.body = {
          error: 'slow_down',
          error_description: 'you are polling too quickly and should back off at a reasonable rate',
        };
        return;
      }
    }
    await next();
    if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body?.device_code) {
      const { issuer } = ctx.oidc.provider;
      const { interval, ...body } = ctx.body;
      ctx.body = {
        ...body,
        verification_uri: logtoDevicePage(body.verification_uri, issuer),
        verification_uri_complete: logtoDevicePage(body.verification_uri_complete, issuer),
        ...(control.deviceFlow.advertised ? { interval: control.deviceFlow.interval } : {}),
      };
    }
  };
}
