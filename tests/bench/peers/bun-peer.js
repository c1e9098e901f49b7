// bun-peer.js — the wsgw envelope protocol on Bun.serve (uWebSockets inside),
// for `make bench-compare`.  Run with the Bun that install.sh puts in the
// cache:
//
//   bun bun-peer.js --port P [--deflate] [--tls CERT KEY]
//
// Rooms are uWebSockets topics: join = ws.subscribe(room); an emit to
// room:R is server.publish(R, ...), which reaches every subscriber, the
// sender too (ws.publish would skip the sender).  broadcast and all use a
// topic every connection subscribes to on open: ws.publish for broadcast
// (everyone but the sender), server.publish for all.
//
// The envelope is decoded with JSON.parse and the delivery encoded with
// JSON.stringify, as an application on Bun would write it; wsgw decodes the
// envelope too, but passes `data` through as bytes.  (The benchmark's data
// is [seq, CLOCK_MONOTONIC ns, "pad"]: the ns stay exact as a JS number for
// 104 days of uptime.)
//
// Prints "LISTENING <port>" on stdout when it accepts connections.
"use strict";

const ALL = "\u0000all";   // not a valid wsgw room name: cannot collide

function parseArgs(argv) {
  const o = { port: 8080, deflate: false, cert: null, key: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") o.port = Number(argv[++i]);
    else if (a === "--deflate") o.deflate = true;
    else if (a === "--tls") { o.cert = argv[++i]; o.key = argv[++i]; }
    else { console.error(`bun-peer: unknown argument ${a}`); process.exit(64); }
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535 || (o.cert && !o.key)) {
    console.error("usage: bun bun-peer.js --port P [--deflate] [--tls CERT KEY]");
    process.exit(64);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const compress = opts.deflate;   // ignored for clients that did not negotiate it
let nextId = 0;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: opts.port,
  tls: opts.cert ? { cert: Bun.file(opts.cert), key: Bun.file(opts.key) } : undefined,
  fetch(req, srv) {
    if (srv.upgrade(req, { data: { id: "b" + (nextId++).toString(36) } })) return undefined;
    return new Response("websocket only\n", { status: 400 });
  },
  websocket: {
    // A benchmark holds idle connections for a minute and more; uWS would
    // close a connection silent for idleTimeout (it pings first, and the
    // generator answers, but there is no reason to depend on that).
    idleTimeout: 0,
    maxPayloadLength: 16 * 1024 * 1024,
    // A fan-out at full speed queues faster than the loopback drains; past
    // the limit Bun drops messages (or closes), which the generator would
    // report as lost.  wsgw's own limit is 1 MiB by default.
    backpressureLimit: 64 * 1024 * 1024,
    closeOnBackpressureLimit: false,
    // Shared compressor: no context takeover, like wsgw's compress-once.
    perMessageDeflate: opts.deflate ? { compress: "shared", decompress: "shared" } : false,
    open(ws) {
      ws.subscribe(ALL);
      ws.send(JSON.stringify({ op: "welcome", conn: ws.data.id }), compress);
    },
    message(ws, text) {
      let env;
      try { env = JSON.parse(text); } catch { ws.close(1007, "bad json"); return; }
      if (env.op === "join") {
        ws.subscribe(env.room);
        if (env.id !== undefined) ws.send(JSON.stringify({ op: "ack", id: env.id }), compress);
      } else if (env.op === "leave") {
        ws.unsubscribe(env.room);
        if (env.id !== undefined) ws.send(JSON.stringify({ op: "ack", id: env.id }), compress);
      } else if (env.op === "emit") {
        const to = env.to;
        const out = JSON.stringify({ event: env.event, data: env.data, from: ws.data.id, to });
        if (typeof to !== "string") return;
        if (to.startsWith("room:")) server.publish(to.slice(5), out, compress);
        else if (to === "all") server.publish(ALL, out, compress);
        else if (to === "broadcast") ws.publish(ALL, out, compress);
      }
    },
  },
});

console.log(`LISTENING ${server.port}`);
// Stopped with SIGTERM by the benchmark: a clean exit, status 0.
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => { server.stop(true); process.exit(0); });
