// Tollgate's web inbox: plain JavaScript over the gateway's JSON API, no build step. Data is
// only ever written with textContent, so nothing a requester typed can run as markup.
'use strict';

let current = null; // the request shown in the detail view
let timer = null;

const money = (v) => (typeof v === 'number' ? `$${v.toFixed(2)}` : 'unpriced');

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text;
  row.appendChild(td);
}

function item(list, text, cls) {
  const li = document.createElement('li');
  li.textContent = text;
  if (cls) li.className = cls;
  list.appendChild(li);
}

// Who the token belongs to (GET /me), shown in the header; null before sign-in.
let me = null;

async function signIn() {
  me = null;
  $('signed-in').hidden = true;
  $('agents').hidden = true;
  // With a token, or without one after a sign-in through the identity provider (its cookie).
  const { ok, data } = await api('GET', '/me');
  if (!ok || !data.user) {
    const sso = data && data.oidc;
    $('sso').hidden = !sso;
    if (sso) {
      $('sso').textContent = sso.label;
      $('sso').href = `${sso.login}?next=${encodeURIComponent('/inbox' + location.hash)}`;
    }
    $('list-status').textContent = token
      ? `${error(data)}. Enter your API token to see what waits for you.`
      : (sso ? 'Sign in, or enter your API token, to see what waits for you.' : 'Enter your API token to see what waits for you.');
    $('list-status').className = token ? 'refusal' : '';
    $('pending').hidden = true;
    token = '';
    localStorage.removeItem('tollgate_token');
    $('login').hidden = false;
    return false;
  }
  me = data;
  $('login').hidden = true;
  $('sso').hidden = true;
  // The session cookie lets the Temporal Web UI decode payloads through this gateway's codec.
  if (token) await api('POST', '/session');
  const teams = me.teams && me.teams.length ? ` (${me.teams.join(', ')})` : '';
  $('who').textContent = `Signed in as ${me.user}${teams}`;
  $('signed-in').hidden = false;
  $('list-status').className = '';
  return true;
}

// The AI approver's review in one line: what it says, how sure, why, and what came of it.
function aiSummary(r) {
  const overturn = r.outcome === 'rejected_alone' && r.overturn_deadline
    ? `; it ends REJECTED at ${r.overturn_deadline} unless an approver approves first` : '';
  return `${r.summary}${overturn}`;
}

async function showList() {
  clearInterval(timer);
  $('detail-view').hidden = true;
  $('list-view').hidden = false;
  if (!me && !(await signIn())) return;
  const { ok, data } = await api('GET', '/requests');
  if (!ok) { $('list-status').textContent = error(data); $('pending').hidden = true; return; }
  const body = $('pending').querySelector('tbody');
  body.replaceChildren();
  for (const r of data.requests) {
    const w = r.waiting || {};
    const row = document.createElement('tr');
    row.dataset.id = r.request_id;
    cell(row, r.request_id);
    cell(row, r.requester);
    cell(row, r.kind);
    cell(row, money(w.monthly_cost ?? r.monthly_cost));
    cell(row, (w.findings || []).map((f) => `${f.level}: ${f.rule}`).join(', ') || 'none');
    cell(row, w.gate_reason || '');
    row.addEventListener('click', () => { location.hash = `#/requests/${encodeURIComponent(r.request_id)}`; });
    body.appendChild(row);
  }
  $('pending').hidden = data.requests.length === 0;
  $('list-status').textContent = data.requests.length ? '' : 'Nothing waits for approval.';
  await showExtensions();
  await showAgentApprovals();
  await showAudits();
}

// Keeps past a team's budget headroom, waiting for one of the team's approvers to keep them.
async function showExtensions() {
  const { ok, data } = await api('GET', '/requests?stage=ACTIVE');
  const asked = ok ? data.requests.filter((r) => r.extension_ask) : [];
  const body = $('extension-pending').querySelector('tbody');
  body.replaceChildren();
  for (const r of asked) {
    const a = r.extension_ask;
    const row = document.createElement('tr');
    row.dataset.id = r.request_id;
    cell(row, r.request_id);
    cell(row, a.by);
    cell(row, a.until || '');
    cell(row, money(a.price));
    cell(row, a.reason);
    cell(row, a.approvers.join(', '));
    row.addEventListener('click', () => { location.hash = `#/requests/${encodeURIComponent(r.request_id)}`; });
    body.appendChild(row);
  }
  $('extensions').hidden = asked.length === 0;
}

// Audits whose fixes wait for approval: decided on the audit page.
async function showAudits() {
  const { ok, data } = await api('GET', '/audits');
  const waiting = ok ? data.audits.filter((a) => a.step === 'AWAITING_APPROVAL') : [];
  const body = $('audit-pending').querySelector('tbody');
  body.replaceChildren();
  for (const a of waiting) {
    const row = document.createElement('tr');
    const td = document.createElement('td');
    const link = document.createElement('a');
    link.href = `/audit#/audits/${encodeURIComponent(a.audit_id)}`;
    link.textContent = a.audit_id;
    td.appendChild(link);
    row.appendChild(td);
    cell(row, a.target);
    cell(row, a.summary);
    body.appendChild(row);
  }
  $('audits').hidden = waiting.length === 0;
}

// Generic approvals (agents asking "may I?"): decided right in the list, by those who may.
async function showAgentApprovals() {
  $('agents').hidden = false;
  const { ok, data } = await api('GET', '/workflows');
  if (!ok) { $('agent-status').textContent = error(data); $('agent-pending').hidden = true; return; }
  const body = $('agent-pending').querySelector('tbody');
  body.replaceChildren();
  let decidable = 0;
  for (const w of data.workflows) {
    const row = document.createElement('tr');
    row.dataset.id = w.workflow_id;
    cell(row, w.action);
    cell(row, w.requested_by);
    cell(row, JSON.stringify(w.context));
    cell(row, w.ai_review ? aiSummary(w.ai_review) : 'not reviewed');
    cell(row, w.expires_at || '');
    const td = document.createElement('td');
    if (!me.decides_agent_approvals) {
      td.textContent = 'approvers only';
    } else if (w.requested_by === me.user) {
      td.textContent = 'asked by you';
    } else {
      decidable += 1;
      for (const decision of ['approve', 'reject']) {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = decision;
        button.textContent = decision === 'approve' ? 'Approve' : 'Reject';
        button.addEventListener('click', () => decideAgent(w.workflow_id, decision));
        td.appendChild(button);
      }
    }
    row.appendChild(td);
    body.appendChild(row);
  }
  $('agent-pending').hidden = data.workflows.length === 0;
  $('agent-decide').hidden = decidable === 0;
  $('agent-status').textContent = data.workflows.length
    ? (me.decides_agent_approvals ? '' : `${me.user} is not an approver of agents' requests: read only.`)
    : 'No agent waits for an answer.';
}

async function decideAgent(id, decision) {
  const { ok, data } = await api('POST', `/workflows/${encodeURIComponent(id)}/${decision}`, { comment: $('agent-comment').value });
  $('agent-message').textContent = ok ? `${data.action}: ${data.status} by ${data.resolved_by}` : error(data);
  $('agent-message').className = ok ? 'outcome' : 'refusal';
  if (ok) await showAgentApprovals();
}

async function loadDetail(id) {
  const { ok, data } = await api('GET', `/requests/${encodeURIComponent(id)}`);
  if (!ok) { $('message').textContent = error(data); $('message').className = 'refusal'; return; }
  current = data;
  const w = data.waiting || {};
  $('title').textContent = `${data.request_id}: ${data.kind || ''}`;
  $('stage').textContent = data.workflow_stopped ? `${data.stage} (stopped: ${data.workflow_stopped})` : data.stage;
  $('requester').textContent = data.requester || '';
  $('gate').textContent = w.gate_reason || '';
  $('plan-digest').textContent = data.plan_digest || '';
  // A request that waits on groups (teams, approval rules) is decided by the groups' people.
  const groups = w.approval_groups || [];
  // A person signed in through the identity provider counts for the groups of their teams.
  const mine = (me && me.teams) || [];
  const approvers = groups.length
    ? [...new Set(groups.flatMap((g) => (mine.includes(g.team) && me ? [...(g.eligible || []), me.user] : (g.eligible || []))))]
    : (w.approving_users || []);
  $('approvals').textContent = `${w.approvals} of ${w.required_approvals}`;
  const decisions = $('decisions'); decisions.replaceChildren();
  for (const d of data.approvals || []) {
    const said = d.comment ? `: “${d.comment}”` : '';
    const ai = d.ai ? ` (the AI approver, confidence ${d.confidence})` : '';
    const vouched = d.teams && d.teams.length ? ` (signed in as ${d.teams.join(', ')})` : '';
    item(decisions, `${d.user}${ai}${vouched} ${d.decision === 'approve' ? 'approved' : 'rejected'}${said} (${d.at || ''})`);
  }
  if (!(data.approvals || []).length) item(decisions, 'nobody yet');
  $('ai-review').textContent = data.ai_review ? aiSummary(data.ai_review) : 'not reviewed';
  const people = (list) => (list && list.length ? list.join(', ') : 'nobody');
  $('approvers').textContent = groups.length
    ? groups.map((g) => `${g.team} (${g.rule}): ${g.count} of ${people(g.eligible)}; approved by ${people(g.approved_by)}`).join(' · ')
    : approvers.length
      ? approvers.join(', ')
      : 'none configured: nobody can approve this request (approving_users)';
  const changes = $('changes'); changes.replaceChildren();
  for (const c of (data.plan && data.plan.changes) || []) item(changes, `${(c.actions || []).join('/')} ${c.address}`);
  const cost = $('cost'); cost.replaceChildren();
  for (const l of (data.cost && data.cost.lines) || []) item(cost, `${l.address}: ${money(l.monthly)} — ${l.description}`);
  if (data.cost) item(cost, `Total ${money(data.monthly_cost)}/month`);
  const findings = $('findings'); findings.replaceChildren();
  for (const f of w.findings || []) item(findings, `${f.level} ${f.rule} (${f.control}) ${f.address}: ${f.message}`, f.level);
  if (!(w.findings || []).length) item(findings, 'none');
  // Only what this user can do: the buttons for an approver who has not decided yet.
  const user = me && me.user;
  let why = '';
  if (data.stage !== 'AWAITING_APPROVAL' || data.workflow_stopped) why = '';
  else if (user === data.requester) why = `${user} asked for this request, so someone else decides.`;
  else if (!approvers.includes(user)) why = groups.length
    ? `${user} is in none of the groups this request waits on.`
    : `${user} is not an approver of this request.`;
  else if ((data.approvals || []).some((d) => d.user === user)) why = `${user} has decided already.`;
  const deciding = data.stage === 'AWAITING_APPROVAL' && !data.workflow_stopped && !why;
  $('decide').hidden = !deciding;
  $('cannot-decide').hidden = !why;
  $('cannot-decide').textContent = why;
  $('cannot-decide').className = 'note';
  showKeep(data, approvers);
}

// An ACTIVE request's expiry, an extension waiting for the team's approvers, and the Keep
// button for those who may keep it (the requester, an approver, an approver asked).
function showKeep(data, approvers) {
  const user = me && me.user;
  const ask = data.extension_ask;
  const active = data.stage === 'ACTIVE' && !data.workflow_stopped;
  $('expires').textContent = data.expires_at ? `${data.expires_at} (never after ${data.max_expires_at})` : '';
  $('extension').textContent = ask
    ? `${ask.by} asked to keep it until ${ask.until} (${money(ask.price)}), past team ${ask.team}'s headroom (${ask.reason}); waiting on ${ask.approvers.join(' or ')}`
    : 'none asked';
  const asked = ask && ask.approvers.includes(user);
  const may = user === data.requester || ((data.waiting || {}).approving_users || []).includes(user) || approvers.includes(user) || asked;
  $('keep-form').hidden = !(active && may);
  $('keep').textContent = asked ? `Keep until ${ask.until} (${money(ask.price)})` : 'Keep';
  $('keep-note').textContent = asked
    ? 'You are asked: your keep grants the extension past the budget headroom.'
    : 'Keeps it another extension period; with a team budget the team\'s ledger prices it.';
}

async function keep() {
  if (!current) return;
  const { ok, data } = await api('POST', `/requests/${encodeURIComponent(current.request_id)}/keep`, {});
  $('message').textContent = ok ? data.message : error(data);
  $('message').className = ok ? 'outcome' : 'refusal';
  await loadDetail(current.request_id);
}

async function showDetail(id) {
  clearInterval(timer);
  $('list-view').hidden = true;
  $('detail-view').hidden = false;
  $('message').textContent = '';
  await loadDetail(id);
  // The stage is live: it moves on while the page is open.
  timer = setInterval(() => loadDetail(id), 2000);
}

async function decide(action) {
  if (!current) return;
  const body = { comment: $('comment').value, plan_digest: current.plan_digest };
  const { ok, data } = await api('POST', `/requests/${encodeURIComponent(current.request_id)}/${action}`, body);
  $('message').textContent = ok ? data.message : error(data);
  $('message').className = ok ? 'outcome' : 'refusal';
  await loadDetail(current.request_id);
}

async function route() {
  if (!me && !(await signIn())) { $('detail-view').hidden = true; $('list-view').hidden = false; return; }
  const match = location.hash.match(/^#\/requests\/(.+)$/);
  if (match) showDetail(decodeURIComponent(match[1])); else showList();
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  localStorage.setItem('tollgate_token', token);
  $('token').value = '';
  me = null;
  route();
});
$('logout').addEventListener('click', async () => {
  await fetch('/session', { method: 'DELETE' });
  await fetch('/oidc/logout', { method: 'POST' });
  token = '';
  me = null;
  localStorage.removeItem('tollgate_token');
  clearInterval(timer);
  $('detail-view').hidden = true;
  $('list-view').hidden = false;
  $('pending').hidden = true;
  $('list-status').textContent = 'Enter your API token to see what waits for you.';
  signIn();
});
$('back').addEventListener('click', (e) => { e.preventDefault(); location.hash = ''; });
$('approve').addEventListener('click', () => decide('approve'));
$('reject').addEventListener('click', () => decide('reject'));
$('keep').addEventListener('click', () => keep());
window.addEventListener('hashchange', route);
route();
