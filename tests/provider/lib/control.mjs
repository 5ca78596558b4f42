// Test-control state driven by the /__admin routes. It outlives provider rebuilds (key rotation).

import { Faults } from './faults.mjs';
import { RequestLog } from './request-log.mjs';
import { LOGTO_REUSE_INTERVAL } from './refresh-policy.mjs';
import { DeviceFlowControl } from './device-flow.mjs';

export const JWKS_MODES = ['normal', 'strip_kid', 'empty'];

export class Control {
  faults = new Faults();

  log = new RequestLog();

  /** One-shot mutation of the next ID token (see id-token-tamper.mjs), or null. */
  idTokenMutation = null;

  /** normal | strip_kid (only the signing key, no kid) | empty (no keys). */
  jwksMode = 'normal';

  /** clientId -> Set of redirect URIs added by POST /__admin/clients/:id/redirect-uris. */
  redirectUris = new Map();

  /** clientId -> Set of post-logout redirect URIs added by the same route. */
  postLogoutRedirectUris = new Map();

  /** clientId -> {rotateRefreshToken?, ttl?} set by POST /__admin/clients/:id/refresh-tokens. */
  refreshTokens = new Map();

  /** clientId -> {uri, sessionRequired} set by POST /__admin/clients/:id/backchannel-logout. */
  backchannelLogout = new Map();

  /** Seconds a rotated refresh token is still accepted (Logto: 3). */
  refreshTokenReuseInterval = LOGTO_REUSE_INTERVAL;

  /** The device flow's interval, slow_down threshold and device code lifetime. */
  deviceFlow = new DeviceFlowControl();

  addUris(map, clientId, uris) {
    if (!map.has(clientId)) map.set(clientId, new Set());
    for (const uri of uris) map.get(clientId).add(uri);
    return [...map.get(clientId)];
  }

  takeIdTokenMutation() {
    const mutation = this.idTokenMutation;
    this.idTokenMutation = null;
    return mutation;
  }

  /** Clear faults (dropping hung connections), the ID token mutation, the log, the JWKS mode,
   * the refresh-token overrides, the device-flow settings and the back-channel logout settings. */
  reset() {
    this.refreshTokens.clear();
    this.deviceFlow.reset();
    this.backchannelLogout.clear();
    this.refreshTokenReuseInterval = LOGTO_REUSE_INTERVAL;
    this.faults.reset();
    this.log.clear();
    this.idTokenMutation = null;
    this.jwksMode = 'normal';
  }
}
