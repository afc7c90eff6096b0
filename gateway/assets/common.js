// What the inbox and the audit page share: the signed-in token and calls to the gateway's
// JSON API. Loaded before each page's own script (classic scripts share these globals).
'use strict';

const $ = (id) => document.getElementById(id);
let token = localStorage.getItem('tollgate_token') || '';

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    // Without a token the session cookie of a sign-in (OpenID Connect) speaks for the caller.
    headers: token ? { 'Authorization': `Bearer ${token}`, 'Content-Type': 'application/json' } : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { ok: response.ok, status: response.status, data };
}

const error = (data) => (data && data.detail && data.detail.error) || 'the gateway did not answer';
