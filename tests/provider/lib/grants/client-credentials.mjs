// The client_credentials grant the way Logto runs it (LT oidc/grants/client-credentials.ts,
// RFC 0006): a copy of oidc-provider 8.8.1's lib/actions/grants/client_credentials.js with the
// "=== Logto ===" changes:
//
//   - `resource` or `organization_id` is required (400 invalid_target otherwise)
//   - no default scopes: scopes = requested ∩ what the app's machine-to-machine roles grant
//   - organization_id=O without resource -> JWT aud=urn:logto:organization:O; the app must be
//     associated with O (403 access_denied "app has not associated with the organization")
//   - `scope` is always echoed in the response
// Token `sub` is the client id (oidc-provider's JWT format does that for client credentials).

import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import {
  AccessDenied, InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget,
} from 'oidc-provider/lib/helpers/errors.js';
import dpopValidate, { DPOP_OK_WINDOW } from 'oidc-provider/lib/helpers/validate_dpop.js';
import checkResource from 'oidc-provider/lib/shared/check_resource.js';
import epochTime from 'oidc-provider/lib/helpers/epoch_time.js';

import { forbidden, makeOrganizationToken, requestedOrganizationId } from '../resources.mjs';

export const makeHandler = (directory, keyRing) => async function clientCredentialsHandler(
  ctx,
  next,
) {
  const { client } = ctx.oidc;
  const { ClientCredentials, ReplayDetection } = ctx.oidc.provider;
  const {
    features: {
      mTLS: { getCertificate },
      dPoP: { allowReplay },
    },
    scopes: statics,
  } = instance(ctx.oidc.provider).configuration();

  const dPoP = await dpopValidate(ctx);

  if (ctx.oidc.params.authorization_details) {
    throw new InvalidRequest('authorization_details is unsupported for this grant_type');
  }

  /* === Logto: organization association (RFC 0006) === */
  const organizationId = requestedOrganizationId(ctx);
  if (organizationId && !directory.clientOrganization(client.clientId, organizationId)) {
    throw forbidden(new AccessDenied('app has not associated with the organization'));
  }

  if (!(organizationId && !ctx.oidc.params.resource)) {
    await checkResource(ctx, () => {});
  }

  const { 0: resourceServer, length } = Object.values(ctx.oidc.resourceServers);
  if (!organizationId && length === 0) {
    throw new InvalidTarget('both `resource` and `organization_id` are not provided');
  }
  /* === End Logto === */

  const scopes = ctx.oidc.params.scope ? [...new Set(ctx.oidc.params.scope.split(' '))] : [];

  if (client.scope) {
    const allowList = new Set(client.scope.split(' '));

    for (const scope of scopes.filter(Set.prototype.has.bind(statics))) {
      if (!allowList.has(scope)) {
        throw new InvalidScope('requested scope is not allowed', scope);
      }
    }
  }

  const token = new ClientCredentials({
    client,
    scope: scopes.join(' ') || undefined,
  });

  if (resourceServer) {
    if (length !== 1) {
      throw new InvalidTarget('only a single resource indicator value is supported for this grant type');
    }
    token.resourceServer = resourceServer;
    token.scope = scopes.filter(Set.prototype.has.bind(new Set(resourceServer.scope.split(' ')))).join(' ') || undefined;
  }

  /* === Logto: machine-to-machine organization token (RFC 0006) === */
  if (organizationId && !resourceServer) {
    makeOrganizationToken(token, {
      keyRing,
      organizationId,
      availableScopes: directory.clientOrganizationScopes(client.clientId, organizationId),
      requestedScopes: new Set(scopes),
    });
  }
  /* === End Logto === */

  if (client.tlsClientCertificateBoundAccessTokens) {
    const cert = getCertificate(ctx);

    if (!cert) {
      throw new InvalidGrant('mutual TLS client certificate not provided');
    }
    token.setThumbprint('x5t', cert);
  }

  if (dPoP) {
    if (!allowReplay) {
      const unique = await ReplayDetection.unique(
        client.clientId,
        dPoP.jti,
        epochTime() + DPOP_OK_WINDOW,
      );

      ctx.assert(unique, new InvalidGrant('DPoP proof JWT Replay detected'));
    }

    token.setThumbprint('jkt', dPoP.thumbprint);
  } else if (ctx.oidc.client.dpopBoundAccessTokens) {
    throw new InvalidGrant('DPoP proof JWT not provided');
  }

  ctx.oidc.entity('ClientCredentials', token);
  const value = await token.save();

  ctx.body = {
    access_token: value,
    expires_in: token.expiration,
    token_type: token.tokenType,
    /* === Logto: scope is always echoed === */
    scope: token.scope ?? '',
  };

  await next();
};

/* === Logto: organization_id is accepted (resource is added at registration) === */
export const parameters = new Set(['scope', 'organization_id']);
