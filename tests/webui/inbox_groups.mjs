// The web inbox for a request that waits on approval groups (teams, approval rules), in a real
// browser: someone in no group reads it and is told why they cannot decide; someone in a group
// approves, and the page shows which group their approval filled and that one is still missing.
// Prints one JSON object per step on stdout for tests/tests/suite/teams.rs.
//
// usage: node inbox_groups.mjs <gateway url> <request id> <outsider token> <group member token> <screenshot dir>
import { launch } from './browser.mjs';

const [, , base, requestId, outsider, member, shots] = process.argv;
const say = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  await page.goto(`${base}/`, { waitUntil: 'load' });
  const visible = async (selector) => page.locator(selector).isVisible();
  const login = async (token) => {
    if (await visible('#logout')) await page.click('#logout');
    await page.fill('#token', token);
    await page.click('#login button[type=submit]');
    await page.locator('#who').waitFor({ timeout: 30000 });
    return page.locator('#who').innerText();
  };
  const open = async () => {
    const row = page.locator('#pending tbody tr', { hasText: requestId });
    await row.waitFor({ timeout: 30000 });
    await row.click();
    await page.locator('#stage', { hasText: 'AWAITING_APPROVAL' }).waitFor({ timeout: 30000 });
  };

  say('outsider', { text: await login(outsider) });
  await open();
  await page.locator('#cannot-decide').waitFor({ timeout: 30000 });
  say('read only', {
    approvers: await page.locator('#approvers').innerText(),
    why: await page.locator('#cannot-decide').innerText(),
    buttons: await visible('#approve'),
  });
  await page.screenshot({ path: `${shots}/inbox-groups-read-only.png`, fullPage: true });

  await page.click('#back');
  say('member', { text: await login(member) });
  await open();
  await page.locator('#approve').waitFor({ timeout: 30000 });
  await page.click('#approve');
  await page.locator('#message.outcome').waitFor({ timeout: 30000 });
  say('approved', { text: await page.locator('#message').innerText() });
  await page.locator('#approvals', { hasText: '1 of 2' }).waitFor({ timeout: 30000 });
  await page.locator('#approvers', { hasText: 'approved by dave' }).waitFor({ timeout: 30000 });
  say('one group filled', {
    stage: await page.locator('#stage').innerText(),
    approvals: await page.locator('#approvals').innerText(),
    approvers: await page.locator('#approvers').innerText(),
    buttons: await visible('#approve'),
  });
  await page.screenshot({ path: `${shots}/inbox-groups-one-filled.png`, fullPage: true });
} finally {
  await browser.close();
}
