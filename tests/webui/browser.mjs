// The browser every UI test drives: Debian's chromium (or $TOLLGATE_CHROMIUM), headless, with
// no background traffic (the machines have no internet).
import { chromium } from 'playwright-core';

export function launch() {
  return chromium.launch({
    executablePath: process.env.TOLLGATE_CHROMIUM || '/usr/bin/chromium',
    // The Web UI polls forever: tests never wait for network idle.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}
