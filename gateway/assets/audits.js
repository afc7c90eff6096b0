// Tollgate's audit page: start an audit, watch its steps live, read the findings and fixes,
// approve or reject the fixes. Plain JavaScript over the gateway's JSON API; data is only ever
// written with textContent.
'use strict';

let me = null;
let current = null;
let timer = null;

function item(list, text, cls) {
  const li = document.createElement('li');
  li.textContent = text;
  if (cls) li.className = cls;
  list.appendChild(li);
}

async function signIn() {
  me = null;
  $('signed-in').hidden = true;
  $('start').hidden = true;
  // With a token, or the session cookie of a sign-in through the identity provider.
  const { ok, data } = await api('GET', '/me');
  if (!ok || !data.user) {
    const sso = data && data.oidc ? ` or sign in from the inbox (${data.oidc.label})` : '';
    $('status').textContent = token ? `${error(data)}. Enter your API token to audit.` : `Enter your API token${sso} to audit.`;
    $('status').className = token ? 'refusal' : '';
    token = '';
    localStorage.removeItem('tollgate_token');
    $('login').hidden = false;
    return false;
  }
  me = data;
  $('login').hidden = true;
  $('who').textContent = `Signed in as ${me.user}`;
  $('signed-in').hidden = false;
  $('start').hidden = false;
  $('status').textContent = '';
  $('status').className = '';
  return true;
}

async function showList() {
  clearInterval(timer);
  $('detail-view').hidden = true;
  $('start-view').hidden = false;
  if (!me && !(await signIn())) return;
  const { ok, data } = await api('GET', '/audits');
  if (!ok) { $('status').textContent = error(data); return; }
  const body = $('recent').querySelector('tbody');
  body.replaceChildren();
  for (const a of data.audits) {
    const row = document.createElement('tr');
    for (const text of [a.audit_id, a.target, a.step, a.summary]) {
      const td = document.createElement('td');
      td.textContent = text;
      row.appendChild(td);
    }
    row.addEventListener('click', () => { location.hash = `#/audits/${encodeURIComponent(a.audit_id)}`; });
    body.appendChild(row);
  }
  $('recent').hidden = data.audits.length === 0;
}

async function start(event) {
  event.preventDefault();
  const kind = $('kind').value;
  const { ok, data } = await api('POST', '/audits', { target: $('target').value, target_kind: kind });
  if (!ok) { $('status').textContent = error(data); $('status').className = 'refusal'; return; }
  location.hash = `#/audits/${encodeURIComponent(data.audit_id)}`;
}

async function load(id) {
  const { ok, data } = await api('GET', `/audits/${encodeURIComponent(id)}`);
  if (!ok) { $('message').textContent = error(data); $('message').className = 'refusal'; return; }
  current = data;
  $('title').textContent = `${data.audit_id}: ${data.target || 'every ACTIVE request'}`;
  $('step').textContent = data.step === 'PAUSED' ? `PAUSED at ${data.paused_at}: ${data.paused_reason}` : data.step;
  $('asker').textContent = data.requested_by;
  const opinion = data.opinion && !data.opinion.missing ? ` Opinion (${data.opinion.by}): ${data.opinion.summary}` : '';
  $('summary').textContent = (data.summary || '(working)') + opinion;
  $('approvers').textContent = (data.approving_users || []).join(', ') || '(asked once there are fixes to apply)';
  const lists = ['decisions', 'resources', 'findings', 'fixes', 'repairs'].map((name) => { $(name).replaceChildren(); return $(name); });
  const [decisions, resources, findings, fixes, repairs] = lists;
  for (const d of data.decisions) item(decisions, `${d.user} ${d.decision === 'approve' ? 'approved' : 'rejected'}${d.comment ? `: “${d.comment}”` : ''}`);
  for (const r of data.resources) item(resources, `${r.address} ${r.id} (${r.managed ? `request ${r.request_id}` : 'not managed by Tollgate'})`);
  for (const f of data.findings) item(findings, `${f.level} ${f.rule} (${f.control}) ${f.address}: ${f.message}`, f.level);
  for (const f of data.fixes) item(fixes, `[${f.control} ${f.rule}] ${f.address} (${f.kind}): ${f.kind === 'command' ? `run: ${f.command}` : f.description}`);
  for (const r of data.repairs) item(repairs, `${r.request_id}: ${r.outcome}`);
  for (const [list, rows] of [[decisions, data.decisions], [findings, data.findings], [fixes, data.fixes], [repairs, data.repairs]]) {
    if (!rows.length) item(list, 'none');
  }
  const user = me && me.user;
  let why = '';
  if (data.step === 'AWAITING_APPROVAL') {
    if (user === data.requested_by) why = `${user} asked for this audit, so someone else decides.`;
    else if (!(data.approving_users || []).includes(user)) why = `${user} is not an approver.`;
    else if (data.decisions.some((d) => d.user === user)) why = `${user} has decided already.`;
  }
  $('decide').hidden = data.step !== 'AWAITING_APPROVAL' || Boolean(why);
  $('cannot-decide').hidden = !why;
  $('cannot-decide').textContent = why;
  if (['DONE', 'CANCELLED'].includes(data.step)) clearInterval(timer);
}

async function showDetail(id) {
  clearInterval(timer);
  $('start-view').hidden = true;
  $('detail-view').hidden = false;
  $('message').textContent = '';
  if (!me && !(await signIn())) { $('start-view').hidden = false; return; }
  await load(id);
  // The steps are live: the page follows them.
  timer = setInterval(() => load(id), 1000);
}

async function decide(action) {
  if (!current) return;
  const { ok, data } = await api('POST', `/audits/${encodeURIComponent(current.audit_id)}/${action}`, { comment: $('comment').value });
  $('message').textContent = ok ? data.message : error(data);
  $('message').className = ok ? 'outcome' : 'refusal';
  await load(current.audit_id);
}

async function route() {
  const match = location.hash.match(/^#\/audits\/(.+)$/);
  if (match) await showDetail(decodeURIComponent(match[1]));
  else await showList();
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  token = $('token').value.trim();
  localStorage.setItem('tollgate_token', token);
  await route();
});
$('logout').addEventListener('click', async () => {
  await fetch('/oidc/logout', { method: 'POST' });
  token = '';
  me = null;
  localStorage.removeItem('tollgate_token');
  location.hash = '';
  await signIn();
});
$('start').addEventListener('submit', start);
$('back').addEventListener('click', (event) => { event.preventDefault(); location.hash = ''; });
$('approve').addEventListener('click', () => decide('approve'));
$('reject').addEventListener('click', () => decide('reject'));
window.addEventListener('hashchange', route);
route();
