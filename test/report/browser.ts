// Headless Chromium for report tests: Debian's /usr/bin/chromium driven by playwright-core.
// The flags keep Chromium from reaching for the network this machine does not have
// (see the environment notes: without them its background connections are refused in bulk).
// Playwright gives every launch a fresh, empty profile directory.
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function chromiumMissing(): string | false {
  return existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (apt-get install chromium); browser test skipped`;
}

export async function withBrowser<T>(fn: (browser: import('playwright-core').Browser) => Promise<T>): Promise<T> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    return await fn(browser);
  } finally {
    await browser.close();
  }
}
