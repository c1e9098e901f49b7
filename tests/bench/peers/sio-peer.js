// sio-peer.js — the wsgw envelope protocol on Socket.IO 4 with its Redis
// adapter, for `make bench-compare`: what a Node team would deploy for
// rooms across processes.
//
//   node sio-peer.js --port P [--workers N] [--redis redis://127.0.0.1:PORT]
//
// --workers N > 1 forks N processes with node's cluster module; they share
// the listening port (the primary hands out connections round robin), and
// the WebSocket-only transport needs no sticky sessions.  Each worker has
// the Redis adapter, so a room spans the workers; --redis is required then.
// With one worker (the default) the adapter is used only when --redis is
// given, else rooms stay in memory.
//
// The Socket.IO dialect of the protocol: every envelope travels as the one
// argument of an event named "wsgw", both ways.
//   server -> client on connection  ["wsgw", {op:"welcome", conn: socket.id}]
//   client -> server  ["wsgw", {op:"join", room, id}]    -> ["wsgw", {op:"ack", id}]
//   client -> server  ["wsgw", {op:"emit", event, to, data}]
//      -> to every recipient ["wsgw", {event, data, from: socket.id, to}]
// On the wire (Engine.IO 4 message '4' + Socket.IO EVENT '2'):
//   42["wsgw",{"op":"welcome","conn":"..."}]
// Clients connect to /socket.io/?EIO=4&transport=websocket, read the
// Engine.IO open packet ("0{...}"), send "40" and get "40{"sid":...}" and
// then the welcome.  Engine.IO's heartbeat stays at its defaults, as in an
// application: the server sends "2" every 25 s and closes a client that
// has not answered "3" within 20 s more.
//
// Prints "LISTENING <port>" on stdout once every worker listens.
"use strict";

const cluster = require("node:cluster");
const http = require("node:http");
const path = require("node:path");

// The packages are in install.sh's cache, not beside this file.
const cache = process.env.WSGW_BENCH_CACHE ||
  path.join(process.env.XDG_CACHE_HOME || path.join(require("node:os").homedir(), ".cache"), "wsgw-bench");
const need = (name) => require(require.resolve(name, { paths: [cache, __dirname] }));

function parseArgs(argv) {
  const o = { port: 8080, workers: 1, redis: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") o.port = Number(argv[++i]);
    else if (a === "--workers") o.workers = Number(argv[++i]);
    else if (a === "--redis") o.redis = argv[++i];
    else { console.error(`sio-peer: unknown argument ${a}`); process.exit(64); }
  }
  const bad = !Number.isInteger(o.port) || o.port < 0 || o.port > 65535 ||
    !Number.isInteger(o.workers) || o.workers < 1 || o.workers > 64;
  if (bad || (o.workers > 1 && !o.redis)) {
    console.error("usage: node sio-peer.js --port P [--workers N] [--redis redis://HOST:PORT]" +
      "\n  (--workers > 1 needs --redis)");
    process.exit(64);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));

function onEnvelope(io, socket, env) {
  if (!env || typeof env !== "object") return;
  if (env.op === "join" || env.op === "leave") {
    if (typeof env.room !== "string") return;
    if (env.op === "join") socket.join(env.room); else socket.leave(env.room);
    if (env.id !== undefined) socket.emit("wsgw", { op: "ack", id: env.id });
  } else if (env.op === "emit") {
    const to = env.to;
    if (typeof to !== "string") return;
    const msg = { event: env.event, data: env.data, from: socket.id, to };
    if (to.startsWith("room:")) io.to(to.slice(5)).emit("wsgw", msg);   // sender included
    else if (to === "all") io.emit("wsgw", msg);
    else if (to === "broadcast") socket.broadcast.emit("wsgw", msg);
  }
}

async function redisAdapter(url) {
  const { createClient } = need("redis");
  const { createAdapter } = need("@socket.io/redis-adapter");
  const pub = createClient({ url });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on("error", (err) => console.error(`sio-peer: redis: ${err.message}`));
  await Promise.all([pub.connect(), sub.connect()]);
  return createAdapter(pub, sub);
}

async function serve(ready) {
  const { Server } = need("socket.io");
  const httpServer = http.createServer((req, res) => { res.writeHead(404).end(); });
  const io = new Server(httpServer, {
    transports: ["websocket"],
    serveClient: false,
    maxHttpBufferSize: 16 * 1024 * 1024,
    adapter: opts.redis ? await redisAdapter(opts.redis) : undefined,
  });
  io.on("connection", (socket) => {
    socket.emit("wsgw", { op: "welcome", conn: socket.id });
    socket.on("wsgw", (env) => onEnvelope(io, socket, env));
  });
  httpServer.on("error", (err) => { console.error(`sio-peer: ${err.message}`); process.exit(1); });
  httpServer.listen(opts.port, "127.0.0.1", () => ready(httpServer.address().port));
}

function primary() {
  let listening = 0;
  const stopAll = (code) => {
    for (const w of Object.values(cluster.workers)) w.process.kill("SIGTERM");
    process.exit(code);
  };
  for (let i = 0; i < opts.workers; i++) cluster.fork();
  cluster.on("message", (w, m) => {
    if (m && m.listening !== undefined && ++listening === opts.workers) console.log(`LISTENING ${m.listening}`);
  });
  // A worker gone means the figures would be for fewer workers: stop.
  cluster.on("exit", (w, code, sig) => {
    console.error(`sio-peer: worker ${w.process.pid} exited (${sig || code})`);
    stopAll(1);
  });
  process.on("SIGTERM", () => { cluster.removeAllListeners("exit"); stopAll(0); });
  process.on("SIGINT", () => { cluster.removeAllListeners("exit"); stopAll(0); });
}

const fail = (err) => { console.error(`sio-peer: ${err.message}`); process.exit(1); };
// Stopped with SIGTERM by the benchmark (workers by the primary): status 0.
if (!(opts.workers > 1 && cluster.isPrimary)) for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
if (opts.workers > 1 && cluster.isPrimary) primary();
else if (opts.workers > 1) serve((port) => process.send({ listening: port })).catch(fail);
else serve((port) => console.log(`LISTENING ${port}`)).catch(fail);
