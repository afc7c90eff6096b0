// The Temporal Web UI reading encrypted payloads through the gateway's codec endpoint, as a
// person would set it up: sign in to the gateway's inbox (which sets the session cookie the
// codec accepts), open a request in the Web UI (its input is ciphertext), point the UI's
// "Codec Server" browser setting at the gateway with cross-origin credentials, and read the
// input decoded. Prints one JSON object per step on stdout for tests/tests/suite/encryption.rs.
//
// usage: node codec_in_web_ui.mjs <gateway url> <API token> <ui base url> <workflow id> <screenshot dir>
import { launch } from './browser.mjs';

const [, , gateway, token, ui, workflowId, shots] = process.argv;
const say = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${gateway}/inbox`, { waitUntil: 'load' });
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
  await page.locator('#who').waitFor({ timeout: 30000 });
  say('signed in', { text: await page.locator('#who').innerText() });

  const workflow = `${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`;
  const input = async () => {
    await page.goto(workflow, { waitUntil: 'load' });
    await page.getByText('Workflow Type').first().waitFor({ timeout: 30000 });
    await page.waitForTimeout(3000); // the payload is decoded after the page loads
    return (await page.locator('main').innerText()).slice(0, 6000);
  };
  say('before', { text: await input() });
  await page.screenshot({ path: `${shots}/codec-before.png`, fullPage: true });

  await page.getByRole('button', { name: 'Configure Codec Server' }).click();
  await page.locator('#use-local-endpoint-radio').check({ force: true });
  await page.getByPlaceholder('Paste your endpoint here').fill(`${gateway}/codec`);
  // The switch's input is visually hidden: click its label.
  await page.getByText('Include cross-origin credentials').click();
  say('credentials switch', { checked: await page.locator('#pass-access-credentials').isChecked() });
  await page.locator('dialog[open]').getByRole('button', { name: 'Apply' }).click();
  say('configured');

  say('after', { text: await input() });
  await page.screenshot({ path: `${shots}/codec-after.png`, fullPage: true });
} catch (e) {
  say('error', { message: String(e) });
  process.exitCode = 1;
} finally {
  await browser.close();
}
