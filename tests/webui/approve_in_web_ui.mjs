// Opens a request in the Temporal Web UI (a real browser: Debian's chromium), reads the
// current details as the UI renders them, and approves through "More Actions -> Send a
// Signal". Prints one JSON object per step on stdout for tests/tests/webui.rs.
//
// usage: node approve_in_web_ui.mjs <ui base url> <workflow id> <signal json> <screenshot dir>
import { launch } from './browser.mjs';

const [, , base, workflowId, signalInput, shots] = process.argv;
const say = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // The list, filtered by Tollgate's stage search attribute.
  const query = encodeURIComponent(`TollgateStage="AWAITING_APPROVAL"`);
  await page.goto(`${base}/namespaces/default/workflows?query=${query}`, { waitUntil: 'load' });
  await page.getByText(workflowId).first().waitFor({ timeout: 30000 });
  say('filtered list', { text: (await page.locator('main').innerText()).slice(0, 2000) });
  const url = `${base}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`;
  await page.goto(url, { waitUntil: 'load' });
  await page.getByRole('tab', { name: 'User Metadata' }).click({ timeout: 30000 });
  const details = page.frameLocator('#user-metadata-current-details').locator('body');
  await details.getByText('Stage:').waitFor({ timeout: 30000 });
  say('details', { text: await details.innerText() });
  const summary = await page.locator('main').innerText();
  say('page', { text: summary.slice(0, 4000) });
  await page.screenshot({ path: `${shots}/details.png`, fullPage: true });

  await page.getByRole('tab', { name: 'Call Stack' }).click();
  await page.getByText(`${workflowId} AWAITING_APPROVAL`).waitFor({ timeout: 30000 });
  say('call stack', { text: await page.getByText(`${workflowId} AWAITING_APPROVAL`).innerText() });

  await page.getByRole('button', { name: 'More Actions' }).click();
  await page.getByRole('menuitem', { name: 'Send a Signal' }).first().click();
  const dialog = page.locator('dialog[open]');
  await dialog.locator('#signal-name').fill('approve');
  const data = dialog.getByRole('textbox', { name: 'Data' });
  await data.click();
  await page.keyboard.insertText(signalInput);
  await page.screenshot({ path: `${shots}/signal.png` });
  await dialog.getByTestId('confirm-modal-button').click();
  await dialog.waitFor({ state: 'hidden', timeout: 15000 });
  say('signalled');
} catch (e) {
  say('error', { message: String(e) });
  process.exitCode = 1;
} finally {
  await browser.close();
}
