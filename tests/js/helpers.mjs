// Helpers for the Node tests: real gateway processes (the ASan build by
// default), a real redis-server, clients of clients/js/wsgw.js over `ws`,
// and bounded waits.  Nothing here waits without a deadline.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = process.env.WSGW_BIN || path.join(ROOT, "build", "wsgw-asan");
export const ECHO_BIN = path.join(ROOT, "build", "examples-asan", "echo");
export const CLIENT_JS = path.join(ROOT, "clients", "js", "wsgw.js");

const require = createRequire(import.meta.url);
export const WebSocket = require("ws");
export const { Wsgw, WsgwError } = require(CLIENT_JS);

const SANITIZER_MARKS = ["ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port nobody listens on now (the kernel's choice). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
    s.setTimeout(300, () => done(false));
  });
}

/** Polls `pred` until it is truthy; fails after `timeout` ms. */
export async function waitFor(pred, { timeout = 5000, interval = 20, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out after " + timeout + " ms waiting for " + what);
    await sleep(interval);
  }
}

/** Resolves with the promise's value, or fails after `ms`. */
export function within(promise, ms, what = "promise") {
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error("timed out after " + ms + " ms waiting for " + what)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

/** The error a promise rejects with (fails if it resolves or hangs). */
export async function rejection(promise, ms = 5000, what = "rejection") {
  try {
    await within(promise, ms, what);
  } catch (err) {
    if (/^timed out after/.test(err.message)) throw err;
    return err;
  }
  throw new Error("expected " + what + ", but the promise resolved");
}

/** One gateway process; restart() starts it again on the same port. */
export class Gateway {
  static async start(args = [], { binary = BIN, envelope = true } = {}) {
    const g = new Gateway(await freePort(), args, binary, envelope);
    await g.spawn();
    return g;
  }

  constructor(port, args, binary, envelope) {
    this.port = port;
    this.args = args;
    this.binary = binary;
    this.envelope = envelope;
    this.url = `ws://127.0.0.1:${port}/ws`;
    this.http = `http://127.0.0.1:${port}`;
    this.output = "";
    this.proc = null;
    this.exits = [];
  }

  async spawn() {
    if (!fs.existsSync(this.binary)) throw new Error(this.binary + " is missing: run make " + path.relative(ROOT, this.binary));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("WSGW_")));
    env.ASAN_OPTIONS = "detect_leaks=1:abort_on_error=0";
    env.UBSAN_OPTIONS = "print_stacktrace=1:halt_on_error=1";
    const args = ["--listen", `127.0.0.1:${this.port}`, "--log-level", "debug", "--drain-timeout", "2s", ...this.args];
    const proc = spawn(this.binary, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    proc.exited = new Promise((resolve) => proc.once("exit", (code, signal) => {
      this.exits.push({ code, signal });
      resolve({ code, signal });
    }));
    const collect = (chunk) => { this.output += chunk.toString(); };
    proc.stdout.on("data", collect);
    proc.stderr.on("data", collect);
    const deadline = Date.now() + 10000;
    while (!(await canConnect(this.port))) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error("gateway exited early:\n" + this.output);
      if (Date.now() > deadline) throw new Error("gateway did not listen in time:\n" + this.output);
      await sleep(25);
    }
  }

  get running() { return this.proc && this.proc.exitCode === null && this.proc.signalCode === null; }

  signal(sig) { this.proc.kill(sig); }

  /** SIGKILL (no drain: the clients see the TCP connection drop). */
  async kill() {
    if (!this.running) return;
    this.proc.kill("SIGKILL");
    await within(this.proc.exited, 5000, "gateway exit after SIGKILL");
  }

  async restart() {
    await this.kill();
    await this.spawn();
  }

  /** SIGTERM, then checks exit status 0 and no sanitizer report in any run's output. */
  async stop() {
    if (this.running) {
      this.proc.kill("SIGCONT");
      this.proc.kill("SIGTERM");
      try {
        await within(this.proc.exited, 15000, "gateway exit after SIGTERM");
      } catch (err) {
        this.proc.kill("SIGKILL");
        throw new Error("gateway did not exit after SIGTERM:\n" + this.output.slice(-4000));
      }
      const last = this.exits[this.exits.length - 1];
      if (last.code !== 0) throw new Error(`gateway exit status ${last.code} signal ${last.signal}:\n` + this.output.slice(-6000));
    }
    this.checkSanitizers();
  }

  checkSanitizers() {
    for (const mark of SANITIZER_MARKS)
      if (this.output.includes(mark)) throw new Error("sanitizer report in gateway output:\n" + this.output.slice(-8000));
  }
}

/** A real redis-server on a free loopback port. */
export class Redis {
  static async start() {
    const r = new Redis(await freePort());
    await r.spawn();
    return r;
  }

  constructor(port) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
  }

  async spawn() {
    this.proc = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "",
      "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"], { stdio: "ignore" });
    this.proc.exited = new Promise((resolve) => this.proc.once("exit", resolve));
    await waitFor(async () => (await this.command("PING").catch(() => "")) === "+PONG",
      { timeout: 10000, what: "redis-server to answer PING" });
  }

  /** One command in RESP; resolves with the first reply line. */
  command(...args) {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port: this.port, host: "127.0.0.1" });
      let buf = "";
      s.setTimeout(2000, () => { s.destroy(); reject(new Error("redis timeout")); });
      s.on("error", reject);
      s.on("connect", () => {
        let req = `*${args.length}\r\n`;
        for (const a of args) req += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
        s.write(req);
      });
      s.on("data", (d) => {
        buf += d.toString();
        const nl = buf.indexOf("\r\n");
        if (nl >= 0) { s.destroy(); resolve(buf.slice(0, nl)); }
      });
    });
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGTERM");
      await within(this.proc.exited, 10000, "redis-server exit").catch(() => this.proc.kill("SIGKILL"));
    }
  }
}

/** Clients made here are closed by closeClients(). */
const clients = new Set();

export function client(url, opts = {}) {
  const c = new Wsgw(url, Object.assign({ WebSocket, backoffMinMs: 50, backoffMaxMs: 500, ackTimeoutMs: 3000 }, opts));
  clients.add(c);
  c.errors = [];
  c.onError((e) => c.errors.push(e));
  return c;
}

export function closeClients() {
  for (const c of clients) c.close();
  clients.clear();
}

/** A client that is open (welcome received). */
export async function openClient(url, opts = {}) {
  const c = client(url, opts);
  await waitFor(() => c.state === "open", { what: "client open on " + url });
  return c;
}

/** Records every delivery of `event` on c: returns the array of [data, envelope]. */
export function record(c, event) {
  const got = [];
  c.on(event, (data, msg) => got.push([data, msg]));
  return got;
}

/** Two gateway processes sharing `redis`, each with its backplane up. */
export async function twoGateways(redis) {
  const gws = await Promise.all([Gateway.start(["--redis-url", redis.url]), Gateway.start(["--redis-url", redis.url])]);
  for (const g of gws)
    await waitFor(async () => (await (await fetch(g.http + "/healthz")).json()).backplane === "up",
      { what: "backplane up" });
  return gws;
}
