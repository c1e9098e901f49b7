// ws-peer.js — the wsgw envelope protocol on Node and the `ws` package, for
// `make bench-compare`: the plain way a Node application serves WebSockets.
//
//   node ws-peer.js --port P [--deflate]
//
// Rooms are a Map from name to a Set of sockets, and each socket keeps the
// names it joined so a close leaves them all.  An emit encodes the delivery
// once (JSON.stringify) and calls ws.send for each recipient; room:R
// reaches every member, the sender too if it joined, broadcast everyone
// but the sender, all everyone.  The envelope is decoded with JSON.parse,
// as an application would (see bun-peer.js on `data`).
//
// --deflate negotiates permessage-deflate with wsgw's defaults: level 1,
// no server context takeover, messages under 128 bytes sent plain.  `ws`
// compresses each send on its own, once per recipient.
//
// Prints "LISTENING <port>" on stdout when it accepts connections.
"use strict";

const path = require("node:path");
// The packages are in install.sh's cache, not beside this file: resolve
// from WSGW_BENCH_CACHE (install.sh prints it) or the usual place.
const cache = process.env.WSGW_BENCH_CACHE ||
  path.join(process.env.XDG_CACHE_HOME || path.join(require("node:os").homedir(), ".cache"), "wsgw-bench");
const { WebSocketServer } = require(require.resolve("ws", { paths: [cache, __dirname] }));

function parseArgs(argv) {
  const o = { port: 8080, deflate: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") o.port = Number(argv[++i]);
    else if (a === "--deflate") o.deflate = true;
    else { console.error(`ws-peer: unknown argument ${a}`); process.exit(64); }
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    console.error("usage: node ws-peer.js --port P [--deflate]");
    process.exit(64);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const rooms = new Map();   // name -> Set<WebSocket>
let nextId = 0;

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: opts.port,
  maxPayload: 16 * 1024 * 1024,
  perMessageDeflate: opts.deflate
    ? { serverNoContextTakeover: true, threshold: 128, zlibDeflateOptions: { level: 1 } }
    : false,
});

function join(ws, room) {
  let set = rooms.get(room);
  if (!set) rooms.set(room, (set = new Set()));
  set.add(ws);
  ws.rooms.add(room);
}

function leave(ws, room) {
  const set = rooms.get(room);
  if (!set) return;
  set.delete(ws);
  if (set.size === 0) rooms.delete(room);
  ws.rooms.delete(room);
}

function emit(ws, env) {
  const to = env.to;
  if (typeof to !== "string") return;
  const out = JSON.stringify({ event: env.event, data: env.data, from: ws.id, to });
  if (to.startsWith("room:")) {
    const set = rooms.get(to.slice(5));
    if (set) for (const m of set) m.send(out);
  } else if (to === "all" || to === "broadcast") {
    for (const m of wss.clients) if (m !== ws || to === "all") m.send(out);
  }
}

function onMessage(ws, raw, isBinary) {
  if (isBinary) { ws.close(1003, "text only"); return; }
  let env;
  try { env = JSON.parse(raw.toString()); } catch { ws.close(1007, "bad json"); return; }
  if (env.op === "join" || env.op === "leave") {
    if (typeof env.room !== "string") return;
    if (env.op === "join") join(ws, env.room); else leave(ws, env.room);
    if (env.id !== undefined) ws.send(JSON.stringify({ op: "ack", id: env.id }));
  } else if (env.op === "emit") {
    emit(ws, env);
  }
}

wss.on("connection", (ws) => {
  ws.id = "w" + (nextId++).toString(36);
  ws.rooms = new Set();
  ws.on("message", (raw, isBinary) => onMessage(ws, raw, isBinary));
  ws.on("close", () => { for (const r of [...ws.rooms]) leave(ws, r); });
  ws.on("error", () => {});   // a reset peer: "close" follows
  ws.send(JSON.stringify({ op: "welcome", conn: ws.id }));
});

wss.on("listening", () => console.log(`LISTENING ${wss.address().port}`));
wss.on("error", (err) => { console.error(`ws-peer: ${err.message}`); process.exit(1); });
// Stopped with SIGTERM by the benchmark: a clean exit, status 0.
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
