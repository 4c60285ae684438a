import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core, for the console's end-to-end
 * tests (Playwright's own browser download is not used: `.ci/run` installs
 * the `chromium` package). Headless, nothing fetched in the background.
 */
export const CHROMIUM = process.env.PGLAND_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM}: apt-get install chromium (or set PGLAND_TEST_CHROMIUM)`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
}

/** Where screenshots go: test-artifacts/console (ignored by git). */
export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url));
const DOCS_IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url));

/**
 * A screenshot of the page as a test artifact; with
 * PGLAND_UPDATE_CONSOLE_SCREENSHOTS=1, the ones named for the docs are
 * written to docs/images/console-<name>.png too.
 */
export async function screenshot(page: Page, name: string, options: { docs?: boolean } = {}): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  if (options.docs && process.env.PGLAND_UPDATE_CONSOLE_SCREENSHOTS === '1') {
    mkdirSync(DOCS_IMAGES, { recursive: true });
    // The top of the page, as a reader arriving on it sees it.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(DOCS_IMAGES, `console-${name}.png`), fullPage: false });
  }
}
