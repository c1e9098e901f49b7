// Binary data through the envelope protocol (docs/protocol.md "Binary
// data"): clients/js/wsgw.js sends bytes as {"$bin":"<base64>"} inside
// `data` and hands them to handlers as Uint8Array.  Against real gateway
// processes (build/wsgw-asan), redis-server, redis-cli as a backend and
// Python's base64 module as the other side's codec.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";

import {
  Gateway, Redis, WebSocket, closeClients, openClient, record, rejection, sleep, twoGateways, waitFor, within,
} from "./helpers.mjs";

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
const u8 = (...b) => new Uint8Array(b);

/** A raw `ws` socket (a client in another language): the frames as text. */
async function rawSocket(url) {
  const ws = new WebSocket(url);
  ws.frames = [];
  ws.on("message", (d, isBinary) => ws.frames.push(isBinary ? d : d.toString()));
  await within(new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); }), 5000, "raw open");
  if (url.endsWith("/ws")) await waitFor(() => ws.frames.length >= 1, { what: "welcome" });
  return ws;
}

/** Python's strict base64 (binascii, validate=True) over a string: the bytes, or throws. */
function pythonB64decode(s) {
  const r = spawnSync("/usr/bin/python3", ["-c",
    "import base64, sys; print(','.join(map(str, base64.b64decode(sys.argv[1], validate=True))))", s],
  { encoding: "utf8", timeout: 10000 });
  if (r.status !== 0) throw new Error("python3: " + r.stderr);
  const line = r.stdout.trim();
  return line ? Uint8Array.from(line.split(","), Number) : new Uint8Array(0);
}

function pythonB64encode(bytes) {
  const r = spawnSync("/usr/bin/python3", ["-c",
    "import base64, sys; print(base64.b64encode(bytes(int(x) for x in sys.argv[1].split(',') if x)).decode())",
    Array.from(bytes).join(",")], { encoding: "utf8", timeout: 10000 });
  if (r.status !== 0) throw new Error("python3: " + r.stderr);
  return r.stdout.trim();
}

describe("binary data, one gateway", () => {
  let gw;
  before(async () => {
    gw = await Gateway.start(["--emit-targets", "broadcast,all,room,conn",
      "--iris-path", "/iris", "--iris-rooms", "pics"]);
  });
  after(async () => { closeClients(); if (gw) await gw.stop().catch(() => {}); });

  test("Uint8Array, ArrayBuffer and views round-trip through room, broadcast, all and conn, nested", async () => {
    const [a, b, c] = await Promise.all([openClient(gw.url), openClient(gw.url), openClient(gw.url)]);
    await Promise.all([a.join("r"), b.join("r")]);
    const gotB = record(b, "file"), gotC = record(c, "file"), gotA = record(a, "file");

    const ab = u8(0, 1, 2, 0xff).buffer;
    const backing = u8(9, 9, 10, 11, 12, 9);
    const f32 = new Float32Array([1.5, -2]);
    const sends = [
      // [what is sent, what a handler must get]
      [ALL_BYTES, ALL_BYTES],
      [ab, u8(0, 1, 2, 0xff)],
      [new Uint8Array(0), new Uint8Array(0)],
      [u8(0xfb), u8(0xfb)], [u8(0xfb, 0xff), u8(0xfb, 0xff)], [u8(0xfb, 0xff, 0xbf), u8(0xfb, 0xff, 0xbf)],   // "+" "/" and each padding
      [new Uint8Array(backing.buffer, 2, 3), u8(10, 11, 12)],        // a view: only its bytes
      [new DataView(backing.buffer, 1, 2), u8(9, 10)],
      [f32, new Uint8Array(f32.buffer.slice(0))],
      [Buffer.from("héllo"), new Uint8Array(Buffer.from("héllo"))],  // a Buffer arrives as a plain Uint8Array
      [{ name: "a.bin", parts: [u8(1), { deep: ab }, "text", 3], empty: new Uint8Array(0), none: null },
       { name: "a.bin", parts: [u8(1), { deep: u8(0, 1, 2, 0xff) }, "text", 3], empty: new Uint8Array(0), none: null }],
      [[[[ALL_BYTES]]], [[[ALL_BYTES]]]],
    ];
    for (const [target, who] of [["room:r", [gotA, gotB]], ["broadcast", [gotB, gotC]], ["all", [gotA, gotB, gotC]],
      ["conn:" + b.id, [gotB]]]) {
      const start = [gotA, gotB, gotC].map((g) => g.length);
      for (const [sent] of sends) {
        const acked = await within(a.to(target).emit("file", sent), 3000, "ack of " + target);
        assert.equal(acked, undefined);
      }
      await a.to("all").emit("file", "end");
      await waitFor(() => [gotA, gotB, gotC].every((g) => g.length && g[g.length - 1][0] === "end"), { what: "end " + target });
      for (const [i, g] of [gotA, gotB, gotC].entries()) {
        const mine = g.slice(start[i], -1);
        if (!who.includes(g)) { assert.deepEqual(mine, [], target); continue; }
        assert.equal(mine.length, sends.length, target);
        for (const [j, [, want]] of sends.entries()) {
          assert.deepEqual(mine[j][0], want, target + " #" + j);
          assert.equal(mine[j][1].to, target);
        }
      }
    }
    // The top-level value is a Uint8Array itself, not a subclass or a copy of the sender's view.
    const last = gotB.find(([d]) => d instanceof Uint8Array && d.length === 256)[0];
    assert.equal(Object.getPrototypeOf(last), Uint8Array.prototype);
    assert.deepEqual([a, b, c].map((x) => x.errors), [[], [], []]);
  });

  test("on the wire: {\"$bin\":\"<standard padded base64>\"}; raw clients send it too", async () => {
    const a = await openClient(gw.url);
    const raw = await rawSocket(gw.url);
    const n = raw.frames.length;
    await a.to("broadcast").emit("bytes", { file: u8(0, 1, 2, 0xfb, 0xff), list: [ALL_BYTES.buffer] });
    await waitFor(() => raw.frames.length > n, { what: "raw delivery" });
    const text = raw.frames[n];
    assert.equal(typeof text, "string", "a text frame");
    const msg = JSON.parse(text);
    assert.deepEqual(msg.data.file, { $bin: "AAEC+/8=" });
    assert.equal(msg.data.list[0].$bin, Buffer.from(ALL_BYTES).toString("base64"));
    assert.deepEqual(pythonB64decode(msg.data.list[0].$bin), ALL_BYTES);
    // A client in another language writes the same and the JS client gets bytes.
    const got = record(a, "from-raw");
    raw.send(JSON.stringify({ op: "emit", event: "from-raw", to: "broadcast", data: [{ $bin: pythonB64encode(u8(7, 8, 9)) }, { $bin: "" }] }));
    await waitFor(() => got.length === 1, { what: "delivery from raw" });
    assert.deepEqual(got[0][0], [u8(7, 8, 9), new Uint8Array(0)]);
    raw.close();
    assert.deepEqual(a.errors, []);
  });

  test("bad encodings received: handed over as plain objects, reported as bad_binary, no crash", async () => {
    const a = await openClient(gw.url);
    const raw = await rawSocket(gw.url);
    const msgs = [];
    a.onMessage((m) => { if (m.event === "bad") msgs.push(m); });
    const got = record(a, "bad");
    const bad = [
      { $bin: "not base64!" }, { $bin: "AAE" }, { $bin: "AA=A" }, { $bin: " AAEC" }, { $bin: "AAEC\n" },
      { $bin: "A===" }, { $bin: "AAEC-_8=" }, { $bin: 5 }, { $bin: null }, { $bin: ["AQ=="] }, { $bin: { x: 1 } },
    ];
    for (const data of bad) raw.send(JSON.stringify({ op: "emit", event: "bad", to: "broadcast", data }));
    // One good and one bad value in one message: the good one is decoded.
    raw.send(JSON.stringify({ op: "emit", event: "bad", to: "broadcast", data: { ok: { $bin: "AQ==" }, no: [{ $bin: "@@@@" }] } }));
    // Another key beside $bin: not a wrapper, plain data, no error.  An escaped key is the same key.
    raw.send('{"op":"emit","event":"bad","to":"broadcast","data":[{"$bin":"AQ==","name":"x"},{"\\u0024bin":"AQ=="}]}');
    raw.send('{"op":"emit","event":"bad","to":"broadcast","data":{"k":{"\\u0024bin":"Ag=="}}}');
    await waitFor(() => got.length === bad.length + 3, { what: "every delivery" });
    for (const [i, data] of bad.entries()) assert.deepEqual(got[i][0], data, "bad #" + i);
    assert.deepEqual(got[bad.length][0], { ok: u8(1), no: [{ $bin: "@@@@" }] });
    assert.deepEqual(got[bad.length + 1][0], [{ $bin: "AQ==", name: "x" }, u8(1)]);
    assert.deepEqual(got[bad.length + 2][0], { k: u8(2) });
    assert.equal(msgs.length, got.length, "onMessage saw them too");
    assert.equal(a.errors.length, bad.length + 1);
    for (const e of a.errors) {
      assert.equal(e.code, "bad_binary");
      assert.equal(e.event, "bad");
    }
    assert.equal(a.state, "open");
    await a.to("all").emit("bad", u8(1, 2));           // still works both ways
    await waitFor(() => got.length === bad.length + 4, { what: "after bad ones" });
    assert.deepEqual(got[bad.length + 3][0], u8(1, 2));
    raw.close();
  });

  test("what cannot be sent as binary is refused with bad_data, nothing is sent", async () => {
    const a = await openClient(gw.url);
    const b = await openClient(gw.url);
    const got = record(b, "x");
    for (const data of [{ $bin: "AQ==" }, [1, { $bin: 5 }], { f: new Blob([u8(1)]) }]) {
      const err = await rejection(a.to("all").emit("x", data), 3000, "refusal of " + JSON.stringify(data));
      assert.equal(err.code, "bad_data");
    }
    await a.to("all").emit("x", { $bin: "AQ==", other: 1 });      // not a wrapper: plain data
    await waitFor(() => got.length === 1, { what: "delivery" });
    assert.deepEqual(got[0][0], { $bin: "AQ==", other: 1 });
    await sleep(50);
    assert.equal(got.length, 1);
    assert.equal(a.state, "open");
  });

  test("maxMessageSize: the client refuses what the gateway would close the connection for", async () => {
    const a = await openClient(gw.url);
    const b = await openClient(gw.url);
    const got = record(b, "big");
    // An envelope of exactly max_message_size (64 KiB) bytes, id included: accepted by both.
    const bytes = new Uint8Array(40000).fill(0xab);
    const frameFor = (pad, id) => {
      const text = JSON.stringify({ op: "emit", event: "big", to: "all",
        data: { b: { $bin: Buffer.from(bytes).toString("base64") }, p: "x".repeat(pad) } });
      return text.slice(0, -1) + ',"id":' + id + "}";
    };
    const pad = 65536 - Buffer.byteLength(frameFor(0, a._nextId));
    assert.ok(pad > 0);
    assert.equal(Buffer.byteLength(frameFor(pad, a._nextId)), 65536);
    await within(a.to("all").emit("big", { b: bytes, p: "x".repeat(pad) }), 5000, "ack of 64 KiB");
    await waitFor(() => got.length === 1, { what: "64 KiB delivery" });
    assert.deepEqual(got[0][0].b, bytes);
    // One byte more: refused by the client, the connection stays.
    let err = await rejection(a.to("all").emit("big", { b: bytes, p: "x".repeat(pad + 1) }));
    assert.equal(err.code, "too_large");
    // 3/4 of the limit in raw bytes is already too much once base64 and the envelope are added.
    err = await rejection(a.to("all").emit("big", new Uint8Array(49152)));
    assert.equal(err.code, "too_large");
    assert.equal(a.state, "open");
    await a.to("all").emit("big", u8(1));
    // Without the client's check the gateway closes with 1009 and the emit fails.
    const c = await openClient(gw.url, { maxMessageSize: 0, reconnect: false });
    const codes = [];
    c.onDisconnect((code) => codes.push(code));
    err = await rejection(c.to("all").emit("big", { b: bytes, p: "x".repeat(pad + 1) }));
    assert.equal(err.code, "disconnected");
    await waitFor(() => codes.length === 1, { what: "close" });
    assert.deepEqual(codes, [1009]);
    assert.deepEqual(a.errors, []);
  });

  test("the client takes its size limit from the gateway's welcome", async () => {
    const big = await Gateway.start(["--max-message-size", "128KiB", "--max-queued-bytes", "1MiB"]);
    try {
      const a = await openClient(big.url, { reconnect: false });
      const b = await openClient(big.url, { reconnect: false });
      const got = record(b, "big");
      // 90 000 bytes are 120 000 in base64: over the default 64 KiB, under this gateway's 128 KiB.
      await within(a.to("all").emit("big", new Uint8Array(90000).fill(7)), 5000, "ack of 120 KB");
      await waitFor(() => got.length === 1, { what: "120 KB delivery" });
      assert.equal(got[0][0].length, 90000);
      const err = await rejection(a.to("all").emit("big", new Uint8Array(100000)));   // 133 KB
      assert.equal(err.code, "too_large");
      assert.equal(a.state, "open");
      // An explicit option still wins over the gateway's figure.
      const c = await openClient(big.url, { reconnect: false, maxMessageSize: 1000 });
      assert.equal((await rejection(c.to("all").emit("big", new Uint8Array(1000)))).code, "too_large");
      for (const x of [a, b, c]) x.close();
    } finally {
      await big.stop();
    }
  });

  test("an Iris client gets binary data as type 4 JSON, as written", async () => {
    const iris = await rawSocket(gw.url.replace(/\/ws$/, "/iris"));
    const a = await openClient(gw.url);
    await a.join("pics");
    await a.to("room:pics").emit("img", { png: u8(0x89, 0x50, 0x4e, 0x47) });
    await waitFor(() => iris.frames.length === 1, { what: "iris frame" });
    assert.equal(iris.frames[0], 'iris-websocket-message:img;4;{"png":{"$bin":"iVBORw=="}}');
    iris.close();
  });

  test("gateway exits cleanly, no sanitizer report", async () => {
    closeClients();
    await gw.stop();
    gw = null;
  });
});

describe("binary data through Redis: two gateways and a backend", () => {
  let redis, g1, g2, cli;
  before(async () => {
    redis = await Redis.start();
    [g1, g2] = await twoGateways(redis);
    // The backend: redis-cli subscribed to the events channel (raw output, one line per item).
    cli = spawn("redis-cli", ["-p", String(redis.port), "SUBSCRIBE", "wsgw:events"], { stdio: ["ignore", "pipe", "pipe"] });
    cli.lines = [];
    let rest = "";
    cli.stdout.on("data", (d) => {
      const parts = (rest + d.toString()).split("\n");
      rest = parts.pop();
      cli.lines.push(...parts);
    });
    await waitFor(() => cli.lines.includes("subscribe"), { what: "redis-cli subscribed" });
  });
  after(async () => {
    closeClients();
    if (cli) cli.kill("SIGTERM");
    for (const g of [g1, g2]) if (g) await g.stop().catch(() => {});
    if (redis) await redis.stop();
  });

  test("client -> backend on P:events: {\"$bin\":..}, decoded by Python's strict base64", async () => {
    const a = await openClient(g1.url);
    await within(a.emit("upload", { name: "x.bin", body: ALL_BYTES }), 3000, "ack (a backend is subscribed)");
    const line = await waitFor(() => cli.lines.find((l) => l.startsWith('{"event":"upload"')), { what: "event on wsgw:events" });
    const ev = JSON.parse(line);
    assert.equal(ev.from, a.id);
    assert.equal(ev.data.name, "x.bin");
    assert.deepEqual(Object.keys(ev.data.body), ["$bin"]);
    assert.deepEqual(pythonB64decode(ev.data.body.$bin), ALL_BYTES);
  });

  test("room emit across gateways, and a backend's PUBLISH of Python-encoded bytes", async () => {
    const a = await openClient(g1.url);
    const b = await openClient(g2.url);
    await Promise.all([a.join("r"), b.join("r")]);
    const gotA = record(a, "img"), gotB = record(b, "img");
    await a.to("room:r").emit("img", u8(1, 2, 3, 250).buffer);
    await waitFor(() => gotB.length === 1 && gotA.length === 1, { what: "room delivery across nodes" });
    assert.deepEqual(gotB[0][0], u8(1, 2, 3, 250));
    assert.equal(gotB[0][1].from, a.id);
    const payload = JSON.stringify({ event: "img", data: { thumb: { $bin: pythonB64encode(ALL_BYTES) } } });
    assert.equal(await redis.command("PUBLISH", "wsgw:room:r", payload), ":2");
    await waitFor(() => gotA.length === 2 && gotB.length === 2, { what: "backend delivery" });
    for (const g of [gotA, gotB]) {
      assert.deepEqual(g[1][0], { thumb: ALL_BYTES });
      assert.equal(g[1][1].from, undefined);
    }
    assert.deepEqual([a.errors, b.errors], [[], []]);
  });

  test("gateways exit cleanly, no sanitizer report", async () => {
    closeClients();
    await Promise.all([g1.stop(), g2.stop()]);
    g1 = g2 = null;
  });
});
