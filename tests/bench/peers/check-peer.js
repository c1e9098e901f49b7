// check-peer.js — checks that a peer server speaks the protocol the load
// generator expects, byte for byte: welcome, join ack, deliveries to a room
// (sender included), broadcast (sender excluded) and all, ping, close.
//
//   node check-peer.js --url ws://127.0.0.1:P/ws          ceiling, Bun, ws peers
//   node check-peer.js --url ws://127.0.0.1:P --sio       the Socket.IO peer
//   node check-peer.js --url ws://127.0.0.1:P/ws --deflate  permessage-deflate
//                                                           must be negotiated
//
// wss:// URLs work too (NODE_TLS_REJECT_UNAUTHORIZED=0 for a self-signed
// certificate).
//
// With --sio it speaks Engine.IO 4 + Socket.IO by hand (no socket.io-client):
// path /socket.io/?EIO=4&transport=websocket, "40" to connect, "3" to each
// "2", and each envelope is the argument of a "wsgw" event.  Exits 0 and
// prints "check-peer: ok", or 1 with the first difference.
"use strict";

const path = require("node:path");
const cache = process.env.WSGW_BENCH_CACHE ||
  path.join(process.env.XDG_CACHE_HOME || path.join(require("node:os").homedir(), ".cache"), "wsgw-bench");
const WebSocket = require(require.resolve("ws", { paths: [cache, __dirname] }));

const args = process.argv.slice(2);
const url = args[args.indexOf("--url") + 1];
const sio = args.includes("--sio");
const deflate = args.includes("--deflate");
if (!url || args.indexOf("--url") < 0) {
  console.error("usage: node check-peer.js --url ws://HOST:PORT/PATH [--sio]");
  process.exit(64);
}
const PRE = '42["wsgw",';

function fail(msg) { console.error(`check-peer: ${msg}`); process.exit(1); }

// A client whose text messages (envelopes, in sio mode unwrapped from the
// event) queue up for next().
function client(name) {
  const target = sio ? url.replace(/\/?$/, "") + "/socket.io/?EIO=4&transport=websocket" : url;
  const ws = new WebSocket(target, { perMessageDeflate: deflate ? { threshold: 0 } : false });
  ws.on("open", () => {
    if (deflate && !/permessage-deflate/.test(ws.extensions)) fail(`${name}: permessage-deflate not negotiated`);
  });
  const c = { name, ws, queue: [], waiters: [] };
  const push = (text) => {
    const w = c.waiters.shift();
    if (w) w(text); else c.queue.push(text);
  };
  ws.on("message", (raw) => {
    const t = raw.toString();
    if (!sio) return push(t);
    if (t[0] === "0") ws.send("40");
    else if (t === "2") ws.send("3");
    else if (t.startsWith("40")) return;
    else if (t.startsWith(PRE) && t.endsWith("]")) push(t.slice(PRE.length, -1));
    else fail(`${name}: unexpected Socket.IO packet ${t}`);
  });
  ws.on("error", (e) => fail(`${name}: ${e.message}`));
  c.send = (obj) => ws.send(sio ? `${PRE}${JSON.stringify(obj)}]` : JSON.stringify(obj));
  c.next = (what) => new Promise((resolve) => {
    if (c.queue.length) return resolve(c.queue.shift());
    const t = setTimeout(() => fail(`${name}: no message within 3 s, waiting for ${what}`), 3000);
    c.waiters.push((text) => { clearTimeout(t); resolve(text); });
  });
  return c;
}

async function expect(c, want, what) {
  const got = await c.next(what);
  if (got !== want) fail(`${c.name}: ${what}: expected\n  ${want}\ngot\n  ${got}`);
}

async function main() {
  const [a, b, d] = ["A", "B", "C"].map(client);
  for (const c of [a, b, d]) {
    const w = await c.next("welcome");
    const m = /^\{"op":"welcome","conn":"([A-Za-z0-9_-]+)".*\}$/.exec(w);
    if (!m) fail(`${c.name}: bad welcome ${w}`);
    c.id = m[1];
  }
  // The benchmark's room names: the ceiling has no rooms, only "fan" members
  // and echo-* rooms that reach their sender alone.
  const joins = [[a, "fan"], [b, "fan"], [d, "echo-9"]];
  for (const [c, room] of joins) c.send({ op: "join", room, id: 1 });
  for (const [c] of joins) await expect(c, '{"op":"ack","id":1}', "join ack");

  const delivery = (from, to, data) => `{"event":"b","data":${data},"from":"${from.id}","to":"${to}"}`;
  const data = '[7,123456789,"x y"]';
  a.send({ op: "emit", event: "b", to: "room:fan", data: JSON.parse(data) });
  for (const c of [a, b]) await expect(c, delivery(a, "room:fan", data), "room delivery");
  b.send({ op: "emit", event: "b", to: "broadcast", data: 1 });
  for (const c of [a, d]) await expect(c, delivery(b, "broadcast", 1), "broadcast delivery");
  d.send({ op: "emit", event: "b", to: "all", data: { k: "v" } });
  for (const c of [a, b, d]) await expect(c, delivery(d, "all", '{"k":"v"}'), "all delivery");
  await new Promise((r) => setTimeout(r, 300));
  for (const c of [a, b, d]) if (c.queue.length) fail(`${c.name}: unexpected ${c.queue[0]}`);

  if (!sio) {
    await new Promise((resolve) => {
      const t = setTimeout(() => fail("A: no pong within 3 s"), 3000);
      a.ws.once("pong", (p) => {
        clearTimeout(t);
        if (p.toString() !== "hello") fail(`A: pong carried "${p}"`);
        resolve();
      });
      a.ws.ping("hello");
    });
  }
  await Promise.all([a, b, d].map((c) => new Promise((resolve) => {
    const t = setTimeout(() => fail(`${c.name}: close handshake did not finish in 3 s`), 3000);
    c.ws.once("close", (code) => {
      clearTimeout(t);
      if (code !== 1000 && !sio) fail(`${c.name}: closed with ${code}`);
      resolve();
    });
    c.ws.close(1000);
  })));
  console.log("check-peer: ok");
}

main().catch((e) => fail(e.stack));
