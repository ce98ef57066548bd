/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core) against a real Ganymede: log in
 * with an admin token, watch a gateway go idle → active → restarting → active again at epoch 2 with the reclaim
 * shown, open the allocation's timeline, and keep a screenshot (test-artifacts/dashboard.png). `.ci/run` installs
 * chromium; without it this test fails, it never skips.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type GanymedeProcess, REPO_ROOT, type ScriptedGateway, scriptedGateway, startGanymedeProcess } from '@ganymede/testkit';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = `${REPO_ROOT}test-artifacts/dashboard.png`;
/** Long enough for a few of the page's one-second polls on a busy machine. */
const SEEN_WITHIN_MS = 15_000;

let g: GanymedeProcess;
let gw: ScriptedGateway;
let browser: Browser;
let page: Page;
/** Every request the page made, to check that the token never travels in a URL. */
const urls: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install it with \`apt-get update && apt-get install -y chromium\` (bash .ci/run does)`);
  }
  g = await startGanymedeProcess();
  gw = await scriptedGateway(g);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('request', (request) => urls.push(request.url()));
});
afterAll(async () => {
  await browser?.close();
  await gw?.close();
  await g?.proc.kill();
});

/** The `data-kind` of each element `items` matches, in order: the transitions a list shows. */
const kinds = async (items: Locator) => Promise.all((await items.all()).map((item) => item.getAttribute('data-kind')));

const row = () => page.locator(`tr[data-gateway="${gw.gatewayId}"]`);

it('a wrong token is refused and the login form says so', async () => {
  await page.goto(`${g.url}/ui`);
  await page.fill('#token', 'not-a-token');
  await page.click('#login button[type=submit]');
  await expect.poll(() => page.textContent('#login-error'), { timeout: SEEN_WITHIN_MS }).toContain('401 unauthorized');
  expect(await page.isVisible('#login')).toBe(true);
  expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
});

it('shows a restart live: restarting, then reclaimed at epoch 2; the timeline; a screenshot', async () => {
  const { token } = JSON.parse(await g.cli('token', 'admin', '--json')) as { token: string };
  await page.goto(`${g.url}/ui`);
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');

  await row().and(page.locator('[data-state="idle"]')).waitFor({ timeout: SEEN_WITHIN_MS });
  await gw.allocate();
  await row().and(page.locator('[data-state="active"][data-epoch="1"]')).waitFor({ timeout: SEEN_WITHIN_MS });
  await gw.restart();
  await row().and(page.locator('[data-state="restarting"]')).waitFor({ timeout: SEEN_WITHIN_MS });
  expect(await row().locator('.pill.restarting').textContent()).toBe('restarting');
  await gw.reclaim();
  await row().and(page.locator('[data-state="active"][data-epoch="2"]')).waitFor({ timeout: SEEN_WITHIN_MS });
  // The reclaim itself: flagged on the gateway's row and in the feed.
  await row().locator('.flash [data-kind="reclaimed"]').waitFor({ timeout: SEEN_WITHIN_MS });
  expect(await kinds(page.locator(`#feed li[data-gateway="${gw.gatewayId}"]`))).toEqual(['reclaimed', 'restart_requested', 'allocated']);

  await row().click();
  const timeline = page.locator(`#timeline ol[data-allocation="${gw.allocationId()}"] li`);
  await expect.poll(() => kinds(timeline), { timeout: SEEN_WITHIN_MS }).toEqual(['allocated', 'restart_requested', 'reclaimed']);
  expect(await row().locator('.bar').count()).toBe(1);

  await mkdir(`${REPO_ROOT}test-artifacts`, { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  expect(existsSync(SCREENSHOT)).toBe(true);

  // The token stays in the tab (a reload keeps the session) and never appears in a URL.
  expect(await page.evaluate<string | null>("sessionStorage.getItem('ganymede.admin_token')")).toBe(token);
  expect(urls.filter((u) => u.includes(token))).toEqual([]);
  await page.reload();
  await row().waitFor({ timeout: SEEN_WITHIN_MS });
});
