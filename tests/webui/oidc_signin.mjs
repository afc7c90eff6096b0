// Signing in to the gateway's inbox through a real OpenID Connect provider (oidc_provider.mjs)
// in a real browser: the SSO button, the provider's login page, back to the inbox as that
// person, who then approves a request. Then what must be refused: the same callback again
// (a replayed state), and ID tokens the provider's /__tamper makes expired, for another
// audience, from another issuer or signed with another key. Prints one JSON object per step
// on stdout for tests/tests/suite/oidc.rs.
//
// usage: node oidc_signin.mjs <gateway url> <provider url> <request id> <person> <screenshot dir>
import { launch } from './browser.mjs';

const [, , base, provider, requestId, person, shots] = process.argv;
const say = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));

const tamper = async (mode) => {
  const r = await fetch(`${provider}/__tamper`, { method: 'POST', body: JSON.stringify({ mode }) });
  if (!r.ok) throw new Error(`tamper ${mode}: ${r.status}`);
};

// The provider's login page (oidc-provider's own): a name, any password.
const signInAtProvider = async (page, who) => {
  try {
    await page.locator('input[name=login]').waitFor({ timeout: 30000 });
  } catch (e) {
    throw new Error(`no login form at ${page.url()}: ${(await page.content()).slice(0, 2000)}`);
  }
  await page.fill('input[name=login]', who);
  await page.fill('input[name=password]', 'any');
  await page.click('button[type=submit]');
};

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
  const page = await context.newPage();
  let callback = null;
  page.on('request', (r) => { if (r.url().includes('/oidc/callback')) callback = r.url(); });
  await page.goto(`${base}/inbox`, { waitUntil: 'load' });
  await page.locator('#sso').waitFor({ timeout: 30000 });
  say('signed out', { button: await page.locator('#sso').innerText(), status: await page.locator('#list-status').innerText() });
  await page.click('#sso');
  await signInAtProvider(page, person);
  await page.locator('#who').waitFor({ timeout: 30000 });
  say('signed in', { who: await page.locator('#who').innerText(), url: page.url() });
  await page.screenshot({ path: `${shots}/oidc-signed-in.png`, fullPage: true });

  const row = page.locator('#pending tbody tr', { hasText: requestId });
  await row.waitFor({ timeout: 30000 });
  await row.click();
  await page.locator('#approve').waitFor({ timeout: 30000 });
  await page.click('#approve');
  await page.locator('#message.outcome').waitFor({ timeout: 30000 });
  say('approved', { message: await page.locator('#message').innerText() });

  // The same callback again: its sign-in was spent.
  await page.goto(callback, { waitUntil: 'load' });
  say('replayed', { refusal: await page.locator('#refusal').innerText(), url: callback.replace(/code=[^&]*/, 'code=...') });

  for (const mode of ['expired', 'audience', 'issuer', 'forged']) {
    await tamper(mode);
    const fresh = await browser.newContext();
    const p = await fresh.newPage();
    await p.goto(`${base}/oidc/login`, { waitUntil: 'load' });
    await signInAtProvider(p, person);
    await p.locator('#refusal').waitFor({ timeout: 30000 });
    const me = await (await p.request.get(`${base}/me`)).json();
    say(mode, { refusal: await p.locator('#refusal').innerText(), user: me.user });
    await p.screenshot({ path: `${shots}/oidc-refused-${mode}.png`, fullPage: true });
    await fresh.close();
  }
  await tamper('none');
} finally {
  await browser.close();
}
