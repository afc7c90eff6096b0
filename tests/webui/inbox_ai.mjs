// The web inbox shows the AI approver's review like any approver's decision, marked as the AI,
// with its confidence, reasons and what came of it: on a request's page and in the agents'
// list. Prints one JSON object per step on stdout for tests/tests/suite/ai_approver.rs.
//
// usage: node inbox_ai.mjs <gateway url> <request id> <approver token> <screenshot dir> <agent action>
import { launch } from './browser.mjs';

const [, , base, requestId, approver, shots, agentAction] = process.argv;
const say = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  await page.goto(`${base}/`, { waitUntil: 'load' });
  await page.fill('#token', approver);
  await page.click('#login button[type=submit]');
  await page.locator('#who').waitFor({ timeout: 30000 });
  const agentRow = page.locator('#agent-pending tbody tr', { hasText: agentAction });
  await agentRow.waitFor({ timeout: 30000 });
  say('agent list', { text: await agentRow.innerText() });
  await page.locator('#pending tbody tr', { hasText: requestId }).click();
  await page.locator('#stage', { hasText: 'AWAITING_APPROVAL' }).waitFor({ timeout: 30000 });
  await page.locator('#ai-review', { hasText: 'tollgate-ai' }).waitFor({ timeout: 30000 });
  say('detail', {
    review: await page.locator('#ai-review').innerText(),
    decided: await page.locator('#decisions').innerText(),
    approvals: await page.locator('#approvals').innerText(),
  });
  await page.screenshot({ path: `${shots}/inbox-ai-review.png`, fullPage: true });
} finally {
  await browser.close();
}
