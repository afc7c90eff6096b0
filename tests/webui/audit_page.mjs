// Drives the gateway's audit page in a real browser (Debian's chromium): alice starts an audit
// of a request whose security group was opened by hand, watches it reach the approval gate
// with its findings and fixes; carol approves; the page follows it to DONE, verified.
// Prints one JSON object per step on stdout for tests/tests/suite/audit.rs.
//
// usage: node audit_page.mjs <gateway url> <request id> <asker token> <approver token> <screenshot dir>
import { launch } from './browser.mjs';

const [, , base, requestId, asker, approver, shots] = process.argv;
const say = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
  await page.goto(`${base}/audit`, { waitUntil: 'load' });
  say('before login', { start: await page.locator('#start').isVisible(), text: await page.locator('#status').innerText() });
  await page.fill('#token', asker);
  await page.click('#login button[type=submit]');
  await page.locator('#who').waitFor({ timeout: 30000 });
  await page.fill('#target', requestId);
  await page.selectOption('#kind', 'request');
  await page.click('#start button[type=submit]');
  await page.locator('#step', { hasText: 'AWAITING_APPROVAL' }).waitFor({ timeout: 60000 });
  say('awaiting', {
    title: await page.locator('#title').innerText(),
    findings: await page.locator('#findings').innerText(),
    fixes: await page.locator('#fixes').innerText(),
    why: await page.locator('#cannot-decide').innerText(),
    buttons: await page.locator('#approve').isVisible(),
  });
  await page.screenshot({ path: `${shots}/audit-awaiting.png`, fullPage: true });
  const url = page.url();

  await page.click('#logout');
  // The approver finds it in the inbox, and follows the link to the audit page.
  await page.goto(`${base}/inbox`, { waitUntil: 'load' });
  await page.fill('#token', approver);
  await page.click('#login button[type=submit]');
  const row = page.locator('#audit-pending tbody tr', { hasText: requestId });
  await row.waitFor({ timeout: 30000 });
  say('inbox', { text: await row.innerText() });
  await row.locator('a').click();
  await page.waitForURL(url, { timeout: 30000 });
  await page.locator('#approve').waitFor({ timeout: 30000 });
  await page.fill('#comment', 'close port 22');
  await page.click('#approve');
  await page.locator('#message.outcome').waitFor({ timeout: 30000 });
  say('approved', { text: await page.locator('#message').innerText() });
  await page.locator('#step', { hasText: 'DONE' }).waitFor({ timeout: 60000 });
  say('done', {
    summary: await page.locator('#summary').innerText(),
    repairs: await page.locator('#repairs').innerText(),
    decisions: await page.locator('#decisions').innerText(),
  });
  await page.screenshot({ path: `${shots}/audit-done.png`, fullPage: true });
} finally {
  await browser.close();
}
