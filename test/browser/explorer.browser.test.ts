/// <reference lib="dom" />
/**
 * The saga explorer in Debian's chromium against the whole platform (real processes on a real nats-server with the
 * bus identities): place an order in the page and watch it succeed; switch on a payment failure and watch the
 * reservation be compensated after the failed charge; a customer key sees no admin control; a dead letter is
 * listed and replayed; and the live list stays right while 500 orders run. Screenshots: test-results/browser/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Catalogue, ExplorerPaths, Subjects, type DeadLetterView } from '@sagamesh/contracts';
import { waitFor } from '@sagamesh/testing';
import type { Browser, Page } from 'playwright-core';
import { GatewayClient } from '../../scripts/lib/client.ts';
import { startPlatform, type Platform } from '../../scripts/lib/platform.ts';
import { accessibilityViolations, launchBrowser, screenshot, signIn } from './rig.ts';

const LOAD_ORDERS = process.env.CI === 'true' ? 200 : 500;
let platform: Platform;
let browser: Browser;
let api: GatewayClient;
const logs: string[] = [];

before(async () => {
  browser = await launchBrowser(); // first: it builds ui/dist, which the gateway serves only if it exists when it starts
  platform = await startPlatform({ ports: 'free', onLog: (s, l) => logs.push(`[${s}] ${l}`) });
  api = new GatewayClient(platform.gatewayUrl, platform.apiKey);
});
after(async () => {
  await browser?.close();
  await platform?.stop();
});

async function newPage(key: string): Promise<Page> {
  // A context of its own per page (axe-core's injection needs one, and no session storage is shared).
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  await signIn(page, platform.gatewayUrl, key);
  return page;
}

/** Places an order through the page's form, by the keyboard, and returns its id. */
async function placeInPage(page: Page, sku: string, quantity: number): Promise<string> {
  await page.getByLabel('Product').selectOption(sku);
  await page.getByLabel('Quantity').fill(String(quantity));
  await page.getByRole('button', { name: 'Place order' }).press('Enter');
  const note = page.getByText(/^Order ord-[A-Za-z0-9_-]+ placed\./);
  await note.waitFor();
  return /Order (ord-[A-Za-z0-9_-]+) placed/.exec((await note.textContent())!)![1]!;
}

/** The timeline's rows as "kind step outcome", top to bottom. */
const timelineRows = (page: Page) =>
  page.locator('[data-testid=timeline] > li[data-kind]').evaluateAll((lis) => lis.map((li) => `${li.getAttribute('data-kind')} ${li.getAttribute('data-step')} ${li.getAttribute('data-outcome')}`));

describe('the saga explorer in a browser', () => {
  it('places an order from the page, lists it live, and shows its saga succeed step by step', async () => {
    const page = await newPage(platform.apiKey);
    await page.locator('[data-testid=connection]', { hasText: 'Live' }).waitFor();
    const orderId = await placeInPage(page, 'sku-1', 2);
    await page.locator(`tr[data-run="${orderId}"][data-phase="Succeeded"]`).waitFor({ timeout: 30_000 });
    await page.getByRole('link', { name: orderId }).press('Enter');
    await page.locator('[data-testid=saga-phase]', { hasText: 'Succeeded' }).waitFor();
    assert.deepEqual(await timelineRows(page), ['action reserve-inventory succeeded', 'action charge-payment succeeded', 'action create-shipment succeeded']);
    await screenshot(page, '1-succeeded');
    assert.deepEqual(await accessibilityViolations(page), [], 'axe-core finds no WCAG 2 A/AA violation');
    await page.close();
  });

  it('with a payment failure switched on in the page, the reservation is compensated after the failed charge', async () => {
    const page = await newPage(platform.apiKey);
    const row = page.locator('tr[data-target="payments.charge"]');
    await row.getByLabel('Failure rate of payments.charge').fill('1');
    await row.getByRole('button', { name: 'Apply to payments.charge' }).click();
    await page.getByText('Fault on payments.charge set').waitFor();
    try {
      const orderId = await placeInPage(page, 'sku-2', 1);
      await page.getByRole('button', { name: 'Open its saga' }).click();
      await page.locator('[data-testid=saga-phase]', { hasText: 'Compensated' }).waitFor({ timeout: 30_000 });
      assert.deepEqual(await timelineRows(page), [
        'action reserve-inventory succeeded',
        'action charge-payment failed',
        'action create-shipment skipped',
        'compensation reserve-inventory compensated',
      ]);
      // The cause sits between the failure and the compensation, in words (not colour alone).
      const cause = page.locator('[data-testid=timeline] > li.cause');
      assert.match((await cause.textContent())!, /Compensation, in reverse order: step charge-payment failed/);
      await page.locator(`tr[data-run="${orderId}"][data-phase="Compensated"]`).waitFor();
      await page.getByRole('heading', { name: `Saga ${orderId}` }).scrollIntoViewIfNeeded();
      await screenshot(page, '2-compensated');
      await page.locator('section.saga').screenshot({ path: `${(await screenshot(page, '2-compensated')).replace(/\.png$/, '')}-timeline.png` });
      assert.deepEqual(await accessibilityViolations(page), []);
      // Readable at 200 % zoom: the layout reflows to one column without a horizontal scroll of the page.
      await page.setViewportSize({ width: 700, height: 1000 });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling at 200 % zoom (overflow ${overflow}px)`);
      await screenshot(page, '3-zoom-200');
    } finally {
      await page.getByRole('button', { name: 'Clear all faults' }).click();
      await page.getByText('Faults cleared').waitFor();
      await page.close();
    }
  });

  it('a customer key gets no admin control: no live list of every saga, no faults, no dead letters', async () => {
    const page = await newPage(platform.customerKey);
    await page.getByText('The live list of every saga needs an admin key').waitFor();
    assert.equal(await page.locator('[data-testid=faults]').count(), 0);
    assert.equal(await page.locator('[data-testid=dead-letters]').count(), 0);
    assert.equal(await page.getByRole('table', { name: /matching run/ }).count(), 0);
    // Its own order's saga opens; an admin's does not (it answers as if it did not exist).
    const own = await placeInPage(page, 'sku-1', 1);
    await page.getByRole('button', { name: 'Open its saga' }).click();
    await page.locator('[data-testid=saga-phase]', { hasText: 'Succeeded' }).waitFor({ timeout: 30_000 });
    const others = await api.placeOrder({ customerId: 'c-admin', items: [{ sku: 'sku-1', quantity: 1 }] });
    await page.evaluate((id) => (location.hash = `#/sagas/${id}`), others);
    await page.getByRole('alert').filter({ hasText: `no saga ${others}` }).waitFor();
    await screenshot(page, '4-customer');
    assert.ok(own !== others);
    await page.close();
  });

  it('lists a dead letter and replays it to the subject it died on', async () => {
    // A poison command (no CloudEvents headers): payments dead-letters it at once.
    const nc = await connect({ servers: platform.natsUrl, ...platform.natsAdmin });
    try {
      await jetstream(nc).publish(Subjects.command('payments', 'charge'), 'not json', { msgID: `poison-${Date.now()}` });
    } finally {
      await nc.close();
    }
    const seq = await waitFor(async () => {
      const res = await fetch(`${platform.gatewayUrl}${ExplorerPaths.deadLetters}`, { headers: { Authorization: `Bearer ${platform.apiKey}` } });
      const body = (await res.json()) as { deadLetters: DeadLetterView[] };
      return body.deadLetters.find((d) => d.subject === Subjects.command('payments', 'charge'))?.seq;
    }, { what: 'the poison command in DEAD_LETTERS', timeoutMs: 20_000 });
    const page = await newPage(platform.apiKey);
    const section = page.locator('[data-testid=dead-letters]');
    await section.locator(`tr[data-seq="${seq}"]`, { hasText: 'cmd.payments.charge' }).waitFor();
    await section.getByRole('button', { name: `Replay ${seq}` }).click();
    await section.getByText(`Dead letter ${seq} replayed on cmd.payments.charge.`).waitFor();
    // The list is read again after the note shows: wait for the row to go (a replayed letter is no longer there).
    await section.locator(`tr[data-seq="${seq}"]`).waitFor({ state: 'detached', timeout: 10_000 });
    assert.equal(await section.locator(`tr[data-seq="${seq}"]`).count(), 0, 'replayed: no longer a dead letter under its old number');
    await page.close();
  });

  it(`the live list stays right while ${LOAD_ORDERS} orders run: every run ends listed in the phase the engine reports`, async () => {
    const page = await newPage(platform.apiKey);
    await page.locator('[data-testid=connection]', { hasText: 'Live' }).waitFor();
    await api.putFault({ target: 'payments.charge', failureRate: 0.2, latencyMs: 0, crashAfterCommit: false });
    const skus = Catalogue.map((c) => c.sku).filter((s) => s !== 'sku-rare');
    let placed: string[];
    try {
      placed = await Promise.all(Array.from({ length: LOAD_ORDERS }, (_, i) => api.placeOrder({ customerId: `c-${i % 17}`, items: [{ sku: skus[i % skus.length]!, quantity: 1 }] })));
    } finally {
      await api.clearFaults();
    }
    const views = await api.waitForOrders(placed, 240_000);
    const engine = new Map([...views].map(([id, o]) => [id, o.saga?.phase]));
    assert.ok([...engine.values()].every((p) => p === 'Succeeded' || p === 'Compensated'), 'every saga ended');

    // What the page holds: every row of every page of the list, read from the DOM.
    const listed = async () => {
      const rows = new Map<string, string>();
      await page.getByRole('button', { name: 'Newer' }).waitFor();
      while (!(await page.getByRole('button', { name: 'Newer' }).isDisabled())) await page.getByRole('button', { name: 'Newer' }).click();
      for (;;) {
        for (const [id, phase] of await page.locator('tr[data-run]').evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-run')!, tr.getAttribute('data-phase')!] as const))) rows.set(id, phase);
        const older = page.getByRole('button', { name: 'Older' });
        if (await older.isDisabled()) return rows;
        await older.click();
      }
    };
    // The last changes reach the page within a flush and a redraw: wait until the counts say every run ended.
    await page.waitForFunction(() => Number(/\((\d+)\)/.exec(document.querySelector('[data-testid=count-Running]')?.textContent ?? '')?.[1]) === 0 && Number(/\((\d+)\)/.exec(document.querySelector('[data-testid=count-Pending]')?.textContent ?? '')?.[1]) === 0, undefined, { timeout: 30_000 });
    const rows = await listed();
    const wrong = [...engine].filter(([id, phase]) => rows.get(id) !== phase).map(([id, phase]) => `${id}: engine ${phase}, list ${rows.get(id) ?? 'absent'}`);
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} of ${engine.size} runs listed wrongly`);
    const rendered = await page.locator('tr[data-run]').count();
    assert.ok(rendered <= 25, `one page of rows in the DOM, not thousands (${rendered})`);
    await screenshot(page, '5-after-load');
    await page.close();
  });
});
