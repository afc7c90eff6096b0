// Drives the gateway's web inbox in a real browser (Debian's chromium): before sign-in and with a
// wrong token nothing is shown; a non-approver sees who they are and everything read only (no
// buttons they cannot use); an approver's click moves the real request on, the page shows who
// decided and the live stage; the approver says yes to an agent's approval from the list. Prints one JSON object per step on stdout for
// tests/tests/suite/gateway.rs.
//
// usage: node inbox.mjs <gateway url> <request id> <non-approver token> <approver token> <screenshot dir> <agent action>
import { launch } from './browser.mjs';

const [, , base, requestId, outsider, approver, shots, agentAction] = process.argv;
const say = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  await page.goto(`${base}/`, { waitUntil: 'load' });
  const visible = async (selector) => page.locator(selector).isVisible();
  say('before login', {
    text: await page.locator('#list-status').innerText(),
    agents: await visible('#agents'), comment: await visible('#agent-comment'), who: await visible('#who'),
  });

  const login = async (token) => {
    if (await visible('#logout')) await page.click('#logout');
    await page.fill('#token', token);
    await page.click('#login button[type=submit]');
    await page.locator('#who').waitFor({ timeout: 30000 });
    return page.locator('#who').innerText();
  };

  // A wrong token is refused on the page and nothing is shown.
  await page.fill('#token', 'tg_not_a_token');
  await page.click('#login button[type=submit]');
  await page.locator('#list-status.refusal').waitFor({ timeout: 30000 });
  say('wrong token', { text: await page.locator('#list-status').innerText(), login: await visible('#token') });

  // A non-approver sees the list, read only: no buttons they cannot use.
  say('who', { text: await login(outsider) });
  const row = page.locator('#pending tbody tr', { hasText: requestId });
  await row.waitFor({ timeout: 30000 });
  say('list', { text: await page.locator('#pending').innerText() });
  const agentRow = page.locator('#agent-pending tbody tr', { hasText: agentAction });
  await agentRow.waitFor({ timeout: 30000 });
  say('agent list', {
    text: await page.locator('#agent-pending').innerText(),
    status: await page.locator('#agent-status').innerText(),
    buttons: await agentRow.locator('button').count(), comment: await visible('#agent-comment'),
  });
  await page.screenshot({ path: `${shots}/inbox-list.png`, fullPage: true });
  await row.click();
  await page.locator('#stage', { hasText: 'AWAITING_APPROVAL' }).waitFor({ timeout: 30000 });
  await page.locator('#cannot-decide').waitFor({ timeout: 30000 });
  say('detail', {
    text: await page.locator('#detail-view').innerText(),
    why: await page.locator('#cannot-decide').innerText(), buttons: await visible('#approve'),
  });
  await page.screenshot({ path: `${shots}/inbox-read-only.png`, fullPage: true });

  // The approver approves with a comment; the page says who decided, and the stage moves on.
  say('approver', { text: await login(approver) });
  await page.locator('#stage', { hasText: 'AWAITING_APPROVAL' }).waitFor({ timeout: 30000 });
  await page.locator('#approve').waitFor({ timeout: 30000 });
  await page.fill('#comment', 'approved from the inbox');
  await page.click('#approve');
  await page.locator('#message.outcome').waitFor({ timeout: 30000 });
  say('approved', { text: await page.locator('#message').innerText() });
  await page.locator('#stage', { hasText: 'ACTIVE' }).waitFor({ timeout: 60000 });
  say('live stage', {
    text: await page.locator('#stage').innerText(),
    approvals: await page.locator('#approvals').innerText(),
    decided: await page.locator('#decisions').innerText(),
    buttons: await visible('#approve'),
  });
  await page.screenshot({ path: `${shots}/inbox-approved.png`, fullPage: true });

  // Back in the list, the approver says yes to the agent.
  await page.click('#back');
  await agentRow.waitFor({ timeout: 30000 });
  await page.fill('#agent-comment', 'go ahead');
  await agentRow.locator('button.approve').click();
  await page.locator('#agent-message.outcome').waitFor({ timeout: 30000 });
  say('agent approved', { text: await page.locator('#agent-message').innerText() });
  await agentRow.waitFor({ state: 'detached', timeout: 30000 });
  say('agent list after', { text: await page.locator('#agent-status').innerText(), comment: await visible('#agent-comment') });
  await page.screenshot({ path: `${shots}/inbox-agent-approved.png`, fullPage: true });
} finally {
  await browser.close();
}
