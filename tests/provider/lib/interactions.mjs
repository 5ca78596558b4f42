// The provider's own interaction routes (devInteractions are off):
//
//   GET  /interaction/:uid         login prompt -> a minimal HTML sign-in page;
//                                  consent prompt -> granted automatically, 303 back to /oidc/auth
//   POST /interaction/:uid/login   form username, password; wrong -> 401 page with the error
//   POST /interaction/:uid/abort   -> error=access_denied to the client's redirect_uri
//
// Consent grants every requested OIDC scope and claim, and for every requested resource the
// requested scopes that the user holds (oidc-provider reports exactly those as missing).

import {
  escapeHtml, matchPath, sendHtml,
} from './http.mjs';

function page(title, content) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font-family: system-ui, sans-serif; max-width: 24rem; margin: 4rem auto; padding: 0 1rem; }
  label { display: block; margin-top: 1rem; }
  input { width: 100%; padding: .4rem; box-sizing: border-box; }
  button { margin-top: 1rem; padding: .5rem 1rem; }
  .error { color: #b00020; } .hint { color: #555; font-size: .9rem; }
</style></head>
<body>${content}</body></html>`;
}

function loginPage({
  uid, clientName, username = '', error, demoUsers,
}) {
  const hints = demoUsers.map((u) => `<code>${escapeHtml(u.username)}</code> / <code>${escapeHtml(u.password)}</code>`).join(', ');
  return page('Sign in', `
<h1>Sign in</h1>
<p>to continue to <strong>${escapeHtml(clientName)}</strong></p>
${error ? `<p class="error" role="alert" id="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label>Username <input name="username" value="${escapeHtml(username)}" required autofocus></label>
  <label>Password <input name="password" type="password" required></label>
  <button type="submit" id="sign-in">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
  <button type="submit" id="cancel">Cancel</button>
</form>
<p class="hint">Demo credentials: ${hints}</p>`);
}

function errorPage(status, message) {
  return page('Sign-in error', `<h1>Sign-in error</h1><p class="error" id="error">${escapeHtml(message)}</p>`);
}

/** Grant what the consent prompt reports missing and return the interaction result. */
async function autoConsent(provider, details) {
  const { prompt: { details: missing }, params, session: { accountId } } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });

  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return details.grantId ? { consent: {} } : { consent: { grantId } };
}

export function makeInteractionHandler({ getProvider, directory }) {
  const demoUsers = directory.seed.users.map(({ username, password }) => ({ username, password }));

  return async function handleInteraction(req, res, url, form) {
    const provider = getProvider();
    const show = matchPath('/interaction/:uid', url.pathname);
    const login = matchPath('/interaction/:uid/login', url.pathname);
    const abort = matchPath('/interaction/:uid/abort', url.pathname);

    try {
      if (show && req.method === 'GET') {
        const details = await provider.interactionDetails(req, res);
        if (details.prompt.name === 'consent') {
          const result = await autoConsent(provider, details);
          await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
          return true;
        }
        if (details.prompt.name !== 'login') {
          sendHtml(res, 400, errorPage(400, `unsupported prompt ${details.prompt.name}`));
          return true;
        }
        const client = await provider.Client.find(details.params.client_id);
        sendHtml(res, 200, loginPage({
          uid: details.uid,
          clientName: client?.clientName ?? details.params.client_id,
          username: details.params.login_hint ?? '',
          demoUsers,
        }));
        return true;
      }

      if (login && req.method === 'POST') {
        const details = await provider.interactionDetails(req, res);
        const user = directory.findUserByIdentifier(form?.username ?? '');
        if (!user || user.password !== form?.password) {
          const client = await provider.Client.find(details.params.client_id);
          sendHtml(res, 401, loginPage({
            uid: details.uid,
            clientName: client?.clientName ?? details.params.client_id,
            username: form?.username ?? '',
            error: 'Invalid username or password.',
            demoUsers,
          }));
          return true;
        }
        await provider.interactionFinished(req, res, { login: { accountId: user.id } }, {
          mergeWithLastSubmission: false,
        });
        return true;
      }

      if (abort && req.method === 'POST') {
        await provider.interactionDetails(req, res);
        await provider.interactionFinished(req, res, {
          error: 'access_denied',
          error_description: 'End-User aborted interaction',
        }, { mergeWithLastSubmission: false });
        return true;
      }
    } catch (error) {
      const status = error.statusCode ?? 500;
      if (status >= 500) console.error('[interaction]', error);
      sendHtml(res, status, errorPage(status, error.error_description ?? error.message));
      return true;
    }
    return false;
  };
}
