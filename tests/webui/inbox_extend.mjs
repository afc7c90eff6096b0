// Keeping from the web inbox, priced by the team's budget, in a real browser: the requester
// keeps one request within the headroom, asks for a second past it, and the team's approver
// finds the ask in the inbox and grants it. Prints one JSON object per step on stdout for
// tests/tests/suite/extend.rs.
//
// usage: node inbox_extend.mjs <gateway url> <within id> <past id> <requester token> <approver token> <screenshot dir>
import { launch } from './browser.mjs';

const [, , base, within, past, requester, approver, shots] = process.argv;
const say = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  await page.goto(`${base}/`, { waitUntil: 'load' });
  // Signed in already (the page reads the stored token and asks /me after it loads): wait
  // for that to show, then sign out, so the form is not hidden under the fill.
  const login = async (token, signedIn = false) => {
    if (signedIn) {
      await page.locator('#logout').waitFor({ timeout: 30000 });
      await page.click('#logout');
    }
    await page.locator('#token').waitFor({ timeout: 30000 });
    await page.fill('#token', token);
    await page.click('#login button[type=submit]');
    await page.locator('#who').waitFor({ timeout: 30000 });
    return page.locator('#who').innerText();
  };
  const keep = async (id) => {
    await page.goto(`${base}/inbox#/requests/${encodeURIComponent(id)}`, { waitUntil: 'load' });
    await page.locator('#stage', { hasText: 'ACTIVE' }).waitFor({ timeout: 30000 });
    await page.locator('#keep').waitFor({ timeout: 30000 });
    const label = await page.locator('#keep').innerText();
    await page.click('#keep');
    await page.locator('#message.outcome').waitFor({ timeout: 30000 });
    return { label, message: await page.locator('#message').innerText() };
  };

  say('requester', { text: await login(requester) });
  say('kept within', await keep(within));
  say('asked past', await keep(past));
  await page.locator('#extension', { hasText: 'waiting on' }).waitFor({ timeout: 30000 });
  say('shown asked', { extension: await page.locator('#extension').innerText() });
  await page.screenshot({ path: `${shots}/inbox-extension-asked.png`, fullPage: true });

  await page.goto(`${base}/inbox`, { waitUntil: 'load' });
  say('approver', { text: await login(approver, true) });
  const row = page.locator('#extension-pending tbody tr', { hasText: past });
  await row.waitFor({ timeout: 30000 });
  say('listed', { row: await row.innerText() });
  await page.screenshot({ path: `${shots}/inbox-extensions-list.png`, fullPage: true });
  await row.click();
  await page.locator('#keep', { hasText: 'Keep until' }).waitFor({ timeout: 30000 });
  const label = await page.locator('#keep').innerText();
  await page.click('#keep');
  await page.locator('#message.outcome').waitFor({ timeout: 30000 });
  say('granted', { label, message: await page.locator('#message').innerText() });
  await page.locator('#extension', { hasText: 'none asked' }).waitFor({ timeout: 30000 });
  await page.screenshot({ path: `${shots}/inbox-extension-granted.png`, fullPage: true });
} finally {
  await browser.close();
}
