// Small helpers for the plain node:http parts of the server (admin, interactions, /api).

import * as querystring from 'node:querystring';

export const BODY_LIMIT = 1024 * 1024;

export function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > BODY_LIMIT) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const mediaType = (req) => (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();

/**
 * Parse a request body as form or JSON. Returns undefined for other content types and for
 * bodies that do not parse (the caller decides whether that is an error).
 */
export function parseBody(req, buffer) {
  if (!buffer.length) return undefined;
  const type = mediaType(req);
  try {
    if (type === 'application/x-www-form-urlencoded') {
      return { ...querystring.parse(buffer.toString('utf8')) };
    }
    if (type === 'application/json') {
      return JSON.parse(buffer.toString('utf8'));
    }
  } catch {
    return undefined;
  }
  return undefined;
}

export const isJson = (req) => mediaType(req) === 'application/json';

export function sendJson(res, status, body) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

export function sendHtml(res, status, html) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(html),
    'Cache-Control': 'no-store',
  });
  res.end(html);
}

export function sendEmpty(res, status) {
  res.writeHead(status, { 'Content-Length': 0 });
  res.end();
}

export function redirect(res, location) {
  res.writeHead(303, { Location: location, 'Content-Length': 0 });
  res.end();
}

/** `new URL(value)`, or undefined when `value` is not an absolute URL. */
export function parseUrl(value) {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

export function escapeHtml(value) {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Match `pathname` against a pattern like "/api/users/:userId/tokens"; returns params or null. */
export function matchPath(pattern, pathname) {
  const names = [];
  const regex = new RegExp(`^${pattern.replace(/:([a-zA-Z]+)/g, (_, name) => {
    names.push(name);
    return '([^/]+)';
  })}$`);
  const match = regex.exec(pathname);
  if (!match) return null;
  return Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(match[i + 1])]));
}
