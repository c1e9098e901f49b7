// clients/js/wsgw.js against one real gateway process (build/wsgw-asan):
// welcome, deliveries and their targets, acks and error promises, ack and
// connect timeouts (gateway paused with SIGSTOP), binary frames.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";

import {
  CLIENT_JS, ECHO_BIN, Gateway, WsgwError, client, closeClients, openClient, record, rejection,
  sleep, waitFor, within,
} from "./helpers.mjs";

describe("one gateway", () => {
  let gw;
  before(async () => { gw = await Gateway.start(); });
  after(async () => { closeClients(); if (gw) await gw.stop().catch(() => {}); });

  test("GET /wsgw.js serves clients/js/wsgw.js byte for byte", async () => {
    const res = await fetch(gw.http + "/wsgw.js");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /javascript/);
    const served = await res.text();
    assert.ok(served === fs.readFileSync(CLIENT_JS, "utf8"), "the binary embeds an older clients/js/wsgw.js: rebuild it");
  });

  test("connect: states connecting -> open, welcome id, onConnect", async () => {
    const c = client(gw.url, { autoConnect: false });
    const states = [];
    c.onStateChange((s, prev) => states.push(prev + ">" + s));
    const ids = [];
    c.onConnect((id) => ids.push(id));
    assert.equal(c.state, "idle");
    c.connect();
    await waitFor(() => c.state === "open", { what: "open" });
    assert.deepEqual(states, ["idle>connecting", "connecting>open"]);
    assert.match(c.id, /^[A-Za-z0-9_.:@-]{8,128}$/);
    assert.deepEqual(ids, [c.id]);
    let late = null;
    c.onConnect((id) => { late = id; });            // registered while open: called at once
    assert.equal(late, c.id);
    const d = await openClient(gw.http + "/ws");      // http:// is taken as ws://
    assert.equal(d.url, gw.url);
    assert.notEqual(d.id, c.id);
    assert.throws(() => client("ftp://127.0.0.1/ws"), /not a ws:\/\//);
    assert.throws(() => client(undefined), /give a ws:\/\/ or wss:\/\/ URL/);   // Node has no page location
  });

  test("on/emit round trip: data arrives as sent, with from and to", async () => {
    const a = await openClient(gw.url);
    const b = await openClient(gw.url);
    const got = record(b, "chat");
    const data = { text: "héllo ✓ \u{1F600}", n: [1, 2.5, -3], nested: { ok: true, none: null }, quote: "a\"b\\c\n" };
    await a.to("all").emit("chat", data);
    await waitFor(() => got.length === 1, { what: "delivery" });
    assert.deepEqual(got[0][0], data);
    assert.equal(got[0][1].from, a.id);
    assert.equal(got[0][1].to, "all");
    assert.equal(got[0][1].event, "chat");
    // undefined data is sent as null; once() fires one time; off() stops delivery.
    const once = [];
    b.once("ping", (d) => once.push(d));
    const off = [];
    const h = (d) => off.push(d);
    b.on("ping", h).off("ping", h);
    await a.to("all").emit("ping");
    await a.to("all").emit("ping", 2);
    await waitFor(() => got.length === 1 && once.length === 1, { what: "ping" });
    await sleep(100);
    assert.deepEqual(once, [null]);
    assert.deepEqual(off, []);
    // A handler that throws: reported to onError, the next handler and the connection go on.
    const after = [];
    b.on("boom", () => { throw new Error("handler bug"); });
    b.on("boom", (d) => after.push(d));
    await a.to("all").emit("boom", 1);
    await waitFor(() => after.length === 1, { what: "second handler" });
    assert.equal(b.errors.length, 1);
    assert.equal(b.errors[0].message, "handler bug");
    assert.equal(b.state, "open");
  });

  test("to(broadcast | all | room:).emit with three clients", async () => {
    const [a, b, c] = await Promise.all([openClient(gw.url), openClient(gw.url), openClient(gw.url)]);
    await Promise.all([a.join("trio"), b.join("trio")]);
    const got = [a, b, c].map((x) => record(x, "t"));
    await a.to("broadcast").emit("t", "broadcast");
    await a.to("all").emit("t", "all");
    await a.to("room:trio").emit("t", "room");
    await b.to("room:trio").emit("t", "room-from-b");
    // c is not in the room: refused, nothing delivered.
    const err = await rejection(c.to("room:trio").emit("t", "room-from-c"));
    assert.equal(err.code, "not_joined");
    // direct messages are off unless emit_targets allows conn
    assert.equal((await rejection(a.to("conn:" + b.id).emit("t", "dm"))).code, "forbidden");
    await a.to("all").emit("t", "end");
    await waitFor(() => got.every((g) => g.some(([d]) => d === "end")), { what: "end marker everywhere" });
    const seen = got.map((g) => g.map(([d]) => d));
    assert.deepEqual(seen[0], ["all", "room", "room-from-b", "end"]);
    assert.deepEqual(seen[1], ["broadcast", "all", "room", "room-from-b", "end"]);
    assert.deepEqual(seen[2], ["broadcast", "all", "end"]);
    assert.equal(got[1][0][1].to, "broadcast");
    assert.equal(got[1][2][1].to, "room:trio");
  });

  test("join/leave resolve on ack; refusals reject with the gateway's code", async () => {
    const c = await openClient(gw.url);
    await c.join("ok-room");
    assert.ok(c.isJoined("ok-room"));
    await c.join("ok-room");                          // a second join is one membership
    const got = record(c, "e");
    await c.to("room:ok-room").emit("e", 1);
    await c.to("all").emit("e", "end");
    await waitFor(() => got.length === 2, { what: "deliveries" });
    assert.deepEqual(got.map(([d]) => d), [1, "end"]);

    for (const bad of ["bad room", "", "x".repeat(65), "é"]) {
      const err = await rejection(c.join(bad), 3000, "join " + JSON.stringify(bad));
      assert.ok(err instanceof WsgwError);
      assert.equal(err.code, "bad_room", bad);
      assert.equal(err.room, bad);
      assert.ok(!c.isJoined(bad), "a refused room is not rejoined later");
    }
    assert.equal((await rejection(c.leave("never-joined"))).code, "not_joined");
    await c.leave("ok-room");
    assert.ok(!c.isJoined("ok-room"));
    assert.equal((await rejection(c.to("room:ok-room").emit("e", 2))).code, "not_joined");
    assert.equal((await rejection(c.to("everyone").emit("e", 3))).code, "bad_target");
    assert.equal((await rejection(c.to("all").emit("", 3))).code, "bad_event");
    // no `to`, no backend, no handler in the gateway: refused, not dropped silently
    assert.equal((await rejection(c.emit("metrics", { fps: 60 }))).code, "no_backend");
    assert.equal((await rejection(c.to("all").emit("x", 10n))).code, "bad_data");
    assert.equal(c.state, "open");
    assert.deepEqual(c.errors, []);
  });

  test("ack timeout against a paused gateway; the late ack is ignored", async () => {
    const c = await openClient(gw.url, { ackTimeoutMs: 300 });
    const got = record(c, "late");
    gw.signal("SIGSTOP");
    try {
      const t0 = Date.now();
      const err = await rejection(c.to("all").emit("late", 1), 3000);
      assert.equal(err.code, "timeout");
      assert.ok(Date.now() - t0 >= 250 && Date.now() - t0 < 2000, "timeout after about ackTimeoutMs");
      // A new connection while paused: TCP connects, no handshake: connect timeout, then retries.
      const d = client(gw.url, { connectTimeoutMs: 300, backoffMinMs: 50 });
      await waitFor(() => d.errors.some((e) => e.code === "connect_timeout"), { what: "connect_timeout" });
      assert.equal(d.state, "reconnecting");
      gw.signal("SIGCONT");
      await waitFor(() => d.state === "open", { what: "open after SIGCONT" });
    } finally {
      gw.signal("SIGCONT");
    }
    await waitFor(() => got.length === 1, { what: "the delivery of the timed-out emit" });
    await c.to("all").emit("late", 2);                // the connection is still good
    assert.equal(c.state, "open");
    assert.deepEqual(c.errors, []);
  });

  test("a binary frame sent to the gateway is answered with not_object; the connection stays", async () => {
    const c = await openClient(gw.url);
    c.ws.send(Buffer.from([0xff, 0x00, 0x7b]));
    await waitFor(() => c.errors.length === 1, { what: "error envelope" });
    assert.equal(c.errors[0].code, "not_object");
    await c.join("still-works");
    assert.equal(c.state, "open");
  });

  test("gateway exits cleanly, no sanitizer report", async () => {
    closeClients();
    await gw.stop();
    gw = null;
  });
});

describe("binary frames from the server", () => {
  let gw, echo;
  before(async () => {
    gw = await Gateway.start(["--binary-messages", "true"]);
    echo = await Gateway.start([], { binary: ECHO_BIN });
  });
  after(async () => {
    closeClients();
    for (const g of [gw, echo]) if (g) await g.stop().catch(() => {});
  });

  test("binary_messages gateway: envelopes in binary frames are decoded (binary: decode)", async () => {
    const a = await openClient(gw.url);
    const b = await openClient(gw.url);
    const got = record(b, "bin");
    await a.join("r");
    await b.join("r");
    await a.to("room:r").emit("bin", { x: "ü" });
    await waitFor(() => got.length === 1, { what: "binary delivery" });
    assert.deepEqual(got[0][0], { x: "ü" });
    assert.deepEqual(a.errors, []);
  });

  test("binary: ignore drops every binary frame and reports it", async () => {
    const c = client(gw.url, { binary: "ignore", connectTimeoutMs: 0 });
    await waitFor(() => c.errors.length >= 1, { what: "binary error" });
    assert.equal(c.errors[0].code, "binary");
    assert.equal(c.state, "connecting");              // the welcome came in a binary frame
    c.close();
  });

  test("frames that are not envelopes are ignored safely (echo server)", async () => {
    const c = client(echo.url, { ackTimeoutMs: 300, connectTimeoutMs: 0 });
    await waitFor(() => c.ws && c.ws.readyState === 1, { what: "socket open" });
    c.ws.send('{"op":"welcome","conn":"echo-1"}');  // echoed back: our welcome
    await waitFor(() => c.state === "open", { what: "open" });
    const got = record(c, "x");
    c.ws.send(Buffer.from([0xc3, 0x28, 0xff]));       // binary, not UTF-8
    c.ws.send(Buffer.from("[1,2]"));                  // binary UTF-8, not an object
    c.ws.send("not json");
    c.ws.send("null");
    c.ws.send(Buffer.from('{"event":"x","data":5}'));  // binary UTF-8 delivery: decoded
    c.ws.send('{"event":"x","data":6}');
    c.ws.send('{"op":"future","event":"x","data":7}');   // an op it does not know: not a delivery
    await waitFor(() => got.length === 2, { what: "deliveries" });
    assert.deepEqual(got.map(([d]) => d), [5, 6]);
    assert.deepEqual(c.errors.map((e) => e.code), ["binary", "bad_message", "bad_message", "bad_message"]);
    // The echo server never acks (it returns the envelope): the emit times out.
    assert.equal((await rejection(c.to("all").emit("x", 8))).code, "timeout");
    assert.equal(c.state, "open");
    await sleep(50);
    assert.deepEqual(got.map(([d]) => d), [5, 6]);    // an echoed emit has an op: not a delivery
  });

  test("gateways exit cleanly, no sanitizer report", async () => {
    closeClients();
    await within(Promise.all([gw.stop(), echo.stop()]), 20000, "stop");
    gw = echo = null;
  });
});
