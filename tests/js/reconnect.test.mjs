// Reconnects: the gateway process is killed (SIGKILL: the TCP connections
// drop, no close frame) and started again on the same port.  The clients
// back off exponentially, rejoin their rooms, flush their queued emits in
// order, and keep the queue to its bound.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { Gateway, client, closeClients, openClient, record, rejection, sleep, waitFor } from "./helpers.mjs";

describe("gateway killed and restarted on the same port", () => {
  let gw;
  before(async () => { gw = await Gateway.start(); });
  after(async () => { closeClients(); if (gw) await gw.stop().catch(() => {}); });

  test("states, backoff, rejoin, queued emits flushed in order, queue bound", async () => {
    const a = client(gw.url, { autoConnect: false, maxQueue: 3, jitter: 0, backoffMinMs: 100, backoffMaxMs: 800 });
    const states = [];
    a.onStateChange((s) => states.push(s));
    const connects = [];
    a.onConnect((id) => connects.push(id));
    const disconnects = [];
    a.onDisconnect((code) => disconnects.push(code));
    a.connect();
    const b = await openClient(gw.url);
    await waitFor(() => a.state === "open", { what: "a open" });
    await Promise.all([a.join("rx"), b.join("rx")]);
    const gotA = record(a, "q");
    const gotB = record(b, "after");

    // An emit the gateway never answers (paused), then the process dies:
    // the pending ack is rejected with "disconnected".
    gw.signal("SIGSTOP");
    const inflight = a.to("room:rx").emit("q", "inflight");
    await sleep(50);
    const t0 = Date.now();
    await gw.kill();
    assert.equal((await rejection(inflight, 3000, "inflight rejection")).code, "disconnected");
    await waitFor(() => a.state === "reconnecting" && b.state === "reconnecting", { what: "reconnecting" });
    assert.deepEqual(disconnects, [1006]);
    assert.equal(a.id, null);

    // Offline: five emits into a queue of three; the two oldest are rejected.
    const sent = [0, 1, 2, 3, 4].map((i) => a.to("room:rx").emit("q", i));
    const early = await Promise.all(sent.slice(0, 2).map((p) => rejection(p, 1000, "queue_full")));
    assert.deepEqual(early.map((e) => e.code), ["queue_full", "queue_full"]);
    assert.equal(a.queued, 3);
    const joinedLater = a.join("later");            // resolves on the next connection's ack
    await a.leave("gone-offline");                   // offline leave: resolves at once

    // Exponential backoff without jitter: 100, 200, 400, 800, 800 ms between attempts;
    // each refused attempt reports a transport error.
    const attempts = [];
    a.onError((e) => { if (e.code !== "queue_full") attempts.push(Date.now()); });
    await waitFor(() => attempts.length >= 4, { timeout: 5000, what: "four refused attempts" });
    // attempts at +100, +300, +700, +1500 ms after the drop: gaps 200, 400, 800.
    const gaps = attempts.slice(1, 4).map((t, i) => t - attempts[i]);
    [200, 400, 800].forEach((want, i) =>
      assert.ok(gaps[i] >= want - 30 && gaps[i] <= want + 200, `backoff gaps ${gaps}, want 200,400,800`));
    assert.ok(Date.now() - t0 >= 1000);

    await gw.spawn();                                // same port
    await waitFor(() => a.state === "open" && b.state === "open", { timeout: 5000, what: "both open again" });
    assert.deepEqual(states, ["connecting", "open", "reconnecting", "open"]);
    assert.equal(connects.length, 2);
    assert.notEqual(connects[1], connects[0]);
    assert.equal(a.id, connects[1]);

    // a rejoined rx before flushing: its own room emits come back, in order.
    await Promise.all(sent.slice(2));
    await waitFor(() => gotA.length === 3, { what: "the three queued emits" });
    assert.deepEqual(gotA.map(([d]) => d), [2, 3, 4]);
    assert.ok(gotA.every(([, m]) => m.from === a.id && m.to === "room:rx"));
    assert.equal(a.queued, 0);
    await joinedLater;
    assert.deepEqual([...a.rooms].sort(), ["later", "rx"]);

    // b rejoined rx by itself too.
    await a.to("room:rx").emit("after", "hello again");
    await waitFor(() => gotB.length === 1, { what: "b receives in its rejoined room" });
    assert.equal(gotB[0][1].from, a.id);
  });

  test("close(): no reconnect; queued and later emits reject with closed", async () => {
    const c = await openClient(gw.url);
    await c.join("r");
    await gw.kill();
    await waitFor(() => c.state === "reconnecting", { what: "reconnecting" });
    const queued = c.to("room:r").emit("x", 1);
    const disconnects = [];
    c.onDisconnect((code) => disconnects.push(code));
    c.close();
    assert.equal(c.state, "closed");
    assert.equal((await rejection(queued)).code, "closed");
    assert.equal((await rejection(c.to("all").emit("x", 2))).code, "closed");
    assert.equal((await rejection(c.join("r"))).code, "closed");
    assert.deepEqual(disconnects, []);              // it was not open
    await sleep(200);
    assert.equal(c.state, "closed");
    // connect() opens it again, with no rooms.
    await gw.spawn();
    c.connect();
    await waitFor(() => c.state === "open", { what: "open after connect()" });
    assert.equal(c.rooms.size, 0);
    c.close(1000, "bye");
    assert.equal(c.state, "closed");
  });

  test("a drain (SIGTERM, close 1001) is followed by a reconnect", async () => {
    const c = await openClient(gw.url);
    const codes = [];
    c.onDisconnect((code) => codes.push(code));
    await gw.stop();
    await waitFor(() => codes.length === 1, { what: "disconnect" });
    assert.deepEqual(codes, [1001]);
    assert.equal(c.state, "reconnecting");
    await gw.spawn();
    await waitFor(() => c.state === "open", { what: "open again" });
  });

  test("a rejoin the restarted gateway refuses goes to onError, and the room is forgotten", async () => {
    const c = await openClient(gw.url);
    await Promise.all([c.join("vip"), c.join("lobby")]);
    await gw.kill();
    gw.args = ["--join-rooms", "lobby"];             // the new configuration allows lobby only
    try {
      await gw.spawn();
      await waitFor(() => c.errors.some((e) => e.code === "forbidden"), { what: "forbidden rejoin" });
    } finally {
      gw.args = [];
    }
    const err = c.errors.find((e) => e.code === "forbidden");
    assert.equal(err.room, "vip");
    assert.deepEqual([...c.rooms], ["lobby"]);
    assert.equal(c.state, "open");
    await c.to("room:lobby").emit("x", 1);          // lobby was rejoined
    await gw.restart();                              // back to the default configuration
  });

  test("gateway exits cleanly, no sanitizer report", async () => {
    closeClients();
    await gw.stop();
    gw = null;
  });
});
