// Drives the gateway's web inbox in a real browser (Debian's chromium): a non-approver's click
// on Approve is refused on the page; an approver's click moves the real request on, and the
// page shows the live stage; an agent's pending approval is refused to the non-approver and
// approved by the approver from the list. Prints one JSON object per step on stdout for
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
  say('before login', { text: await page.locator('#list-status').innerText() });

  const login = async (token) => {
    await page.fill('#token', token);
    await page.click('#login button[type=submit]');
  };

  // A non-approver sees the list, opens the request and is refused.
  await login(outsider);
  const row = page.locator('#pending tbody tr', { hasText: requestId });
  await row.waitFor({ timeout: 30000 });
  say('list', { text: await page.locator('#pending').innerText() });
  const agentRow = page.locator('#agent-pending tbody tr', { hasText: agentAction });
  await agentRow.waitFor({ timeout: 30000 });
  say('agent list', { text: await page.locator('#agent-pending').innerText() });
  await page.screenshot({ path: `${shots}/inbox-list.png`, fullPage: true });
  await agentRow.locator('button.approve').click();
  await page.locator('#agent-message.refusal').waitFor({ timeout: 30000 });
  say('agent refused', { text: await page.locator('#agent-message').innerText() });
  await row.click();
  await page.locator('#stage', { hasText: 'AWAITING_APPROVAL' }).waitFor({ timeout: 30000 });
  say('detail', { text: await page.locator('#detail-view').innerText() });
  await page.click('#approve');
  await page.locator('#message.refusal').waitFor({ timeout: 30000 });
  say('refused', { text: await page.locator('#message').innerText() });
  await page.screenshot({ path: `${shots}/inbox-refused.png`, fullPage: true });

  // The approver approves with a comment; the stage moves on while the page is open.
  await login(approver);
  await page.locator('#stage', { hasText: 'AWAITING_APPROVAL' }).waitFor({ timeout: 30000 });
  await page.fill('#comment', 'approved from the inbox');
  await page.click('#approve');
  await page.locator('#message.outcome').waitFor({ timeout: 30000 });
  say('approved', { text: await page.locator('#message').innerText() });
  await page.locator('#stage', { hasText: 'ACTIVE' }).waitFor({ timeout: 60000 });
  say('live stage', { text: await page.locator('#stage').innerText() });
  await page.screenshot({ path: `${shots}/inbox-approved.png`, fullPage: true });

  // Back in the list, the approver says yes to the agent.
  await page.click('#back');
  await agentRow.waitFor({ timeout: 30000 });
  await page.fill('#agent-comment', 'go ahead');
  await agentRow.locator('button.approve').click();
  await page.locator('#agent-message.outcome').waitFor({ timeout: 30000 });
  say('agent approved', { text: await page.locator('#agent-message').innerText() });
  await agentRow.waitFor({ state: 'detached', timeout: 30000 });
  say('agent list after', { text: await page.locator('#agent-status').innerText() });
  await page.screenshot({ path: `${shots}/inbox-agent-approved.png`, fullPage: true });
} finally {
  await browser.close();
}
