// The demo chat (clients/demo) in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core: no browser download).  Two pages, each served
// by and connected to a different gateway process; the gateways share one
// redis-server.  People chat through the page's UI, see each other in the
// presence list, and one page keeps its room while its gateway process is
// killed and started again.  Saves build/screenshots/demo.png.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

import { Gateway, ROOT, Redis, sleep, within } from "./helpers.mjs";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = path.join(ROOT, "build", "screenshots");
const DEMO = path.join(ROOT, "clients", "demo");
const T = 10000;   // every wait on the page

describe("demo chat in Chromium, two gateways and Redis", () => {
  let redis, ga, gb, browser;
  const problems = [];       // page errors and console errors

  before(async () => {
    redis = await Redis.start();
    const args = ["--redis-url", redis.url, "--static-dir", DEMO];
    [ga, gb] = await Promise.all([Gateway.start(args), Gateway.start(args)]);
    browser = await within(chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--headless"],
      timeout: 30000,
    }), 40000, "chromium launch");
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    for (const g of [ga, gb]) if (g) await g.stop().catch(() => {});
    if (redis) await redis.stop();
  });

  async function openPage(gw, who) {
    const ctx = await browser.newContext({ viewport: { width: 1180, height: 760 }, colorScheme: "light" });
    const page = await ctx.newPage();
    page.setDefaultTimeout(T);
    page.on("pageerror", (e) => problems.push(`${who}: page error: ${e.message}`));
    // The browser logs each refused reconnect attempt itself: expected while a gateway is down.
    page.on("console", (m) => {
      if (m.type() === "error" && !/^WebSocket connection to .* failed/.test(m.text())) problems.push(`${who}: console: ${m.text()}`);
    });
    const res = await page.goto(gw.http + "/", { waitUntil: "load" });
    assert.equal(res.status(), 200);
    return page;
  }

  async function joinAs(page, name, room) {
    await page.fill("#name", name);
    await page.fill("#room", room);
    await page.click("#join");
    await page.waitForSelector("#chat-view:not([hidden])");
    await page.waitForSelector(`#messages .notice:text("You joined #${room}.")`);
  }

  async function say(page, text) {
    await page.fill("#message", text);
    await page.press("#message", "Enter");
  }

  const message = (page, text) => page.waitForSelector(`#messages .msg-text:text-is(${JSON.stringify(text)})`);
  const person = (page, name) => page.waitForSelector(`#people .person-name:text-is(${JSON.stringify(name)})`);
  const state = (page, s) => page.waitForSelector(`#state[data-state="${s}"]`);

  test("two people on two gateways chat, see each other, survive a gateway restart", async () => {
    const pa = await openPage(ga, "ada");
    const pb = await openPage(gb, "grace");
    await Promise.all([state(pa, "open"), state(pb, "open")]);
    assert.equal(await pa.textContent("#state-text"), "Connected");

    // A bad room name is refused in the form, before any envelope.
    await pa.fill("#name", "Ada");
    await pa.fill("#room", "no spaces");
    await pa.click("#join");
    await pa.waitForSelector("#join-error:not([hidden])");
    assert.equal(await pa.getAttribute("#room", "aria-invalid"), "true");

    await joinAs(pa, "Ada", "lobby");
    await joinAs(pb, "Grace", "lobby");
    // Presence: each lists the other (hello / here), and itself.
    await Promise.all([person(pa, "Grace"), person(pb, "Ada"), person(pa, "Ada"), person(pb, "Grace")]);
    assert.equal(await pa.textContent("#people-count"), "2");
    await pa.waitForSelector('#messages .notice:text("Grace joined.")');

    await say(pa, "Hi Grace! This message went through gateway A, Redis, then gateway B.");
    await message(pb, "Hi Grace! This message went through gateway A, Redis, then gateway B.");
    await say(pb, "Hello Ada — got it on B.");
    await message(pa, "Hello Ada — got it on B.");
    await say(pb, "Try killing my gateway: I will reconnect by myself.");
    await message(pa, "Try killing my gateway: I will reconnect by myself.");
    // Own messages are marked sent once acked; no "sending…" left.
    await pa.waitForSelector("#messages .msg.own[data-status=sent]");
    assert.equal(await pa.$$eval("#messages .msg.own .msg-status", (l) => l.length), 0);

    // Markup is not interpreted.
    await say(pa, "<b>not bold</b>");
    await message(pb, "<b>not bold</b>");
    assert.equal(await pb.$$eval("#messages b", (l) => l.length), 0);

    fs.mkdirSync(SHOTS, { recursive: true });
    await pa.screenshot({ path: path.join(SHOTS, "demo.png") });
    await pb.setViewportSize({ width: 390, height: 760 });
    await pb.screenshot({ path: path.join(SHOTS, "demo-narrow.png") });

    // Gateway B dies (SIGKILL) and comes back on the same port.
    await gb.kill();
    await state(pb, "reconnecting");
    await pb.waitForSelector('#messages .notice:text("Connection lost. Reconnecting…")');
    // Typed while offline: queued, shown as waiting, sent after the reconnect.
    await say(pb, "Written while my gateway was down.");
    await pb.waitForSelector("#messages .msg.own[data-status=queued]");
    assert.match(await pb.textContent("#state-text"), /^Reconnecting… · 1 waiting$/);
    await pb.screenshot({ path: path.join(SHOTS, "demo-reconnecting.png") });
    await sleep(300);
    await gb.spawn();
    await state(pb, "open");
    await pb.waitForSelector('#messages .notice:text("Reconnected.")');
    assert.equal(await pb.inputValue("#room").catch(() => null), "lobby");
    assert.ok(await pb.isVisible("#chat-view"), "still in the room");
    await message(pa, "Written while my gateway was down.");
    await pb.waitForFunction((t) => [...document.querySelectorAll("#messages .msg.own")]
      .some((li) => li.dataset.status === "sent" && li.textContent.includes(t)), "Written while my gateway was down.");
    // The rejoined room delivers again, and presence is refreshed.
    await say(pa, "Welcome back, Grace.");
    await message(pb, "Welcome back, Grace.");
    await person(pb, "Ada");
    assert.equal(await pb.textContent("#people-count"), "2");

    // Leaving says goodbye: the other list drops the name at once.
    await pb.click("#leave");
    await pa.waitForSelector('#messages .notice:text("Grace left.")');
    assert.equal(await pa.textContent("#people-count"), "1");
    await pb.waitForSelector("#join-view:not([hidden])");

    assert.deepEqual(problems, []);
  });

  test("gateways exit cleanly, no sanitizer report", async () => {
    await browser.close();
    browser = null;
    await Promise.all([ga.stop(), gb.stop()]);
    ga = gb = null;
  });
});
