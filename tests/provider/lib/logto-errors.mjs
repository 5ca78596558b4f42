// Logto's error body for oidc-provider errors (LT middleware/koa-oidc-error-handler.ts):
// {code, message, error_uri?, error, error_description}. `message` is Logto's English phrase
// (LT phrases/src/locales/en/errors/oidc.ts), interpolated with `code` only, as Logto does.
// `?parse_error=false` keeps the plain OAuth body.

const PHRASES = {
  aborted: 'The end-user aborted interaction.',
  invalid_scope: 'Invalid scope: {{error_description}}.',
  invalid_token: 'Invalid token provided.',
  invalid_client_metadata: 'Invalid client metadata provided.',
  insufficient_scope: 'Token missing scope `{{scope}}`.',
  invalid_request: 'Request is invalid.',
  invalid_grant: 'Grant request is invalid.',
  invalid_issuer: 'Invalid issuer.',
  invalid_redirect_uri: "`redirect_uri` did not match any of the client's registered `redirect_uris`.",
  access_denied: 'Access denied.',
  invalid_target: 'Invalid resource indicator.',
  unsupported_grant_type: 'Unsupported `grant_type` requested.',
  unsupported_response_mode: 'Unsupported `response_mode` requested.',
  unsupported_response_type: 'Unsupported `response_type` requested.',
  server_error: 'An unknown OIDC error occurred. Please try again later.',
};
const SESSION_NOT_FOUND = 'Session not found. Please go back and sign in again.';
const ERROR_URIS = { invalid_grant: 'https://openid.sh/debug/invalid_grant' };

const isSessionNotFound = (description) => Boolean(
  (description?.includes('session') && description?.includes('not found'))
    || description?.includes('authorization request has expired'),
);

export function logtoErrorBody(body) {
  const sessionNotFound = isSessionNotFound(body.error_description);
  const code = sessionNotFound ? 'session.not_found' : `oidc.${body.error}`;
  const message = sessionNotFound
    ? SESSION_NOT_FOUND
    : (PHRASES[body.error] ?? 'An OIDC error occurred: {{code}}.').replaceAll('{{code}}', code);
  const uri = ERROR_URIS[body.error];
  return {
    code, message, ...(uri ? { error_uri: uri } : {}), ...body,
  };
}
