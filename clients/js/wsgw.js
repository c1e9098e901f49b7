/* wsgw.js — the JavaScript client of the wsgw gateway (envelope protocol,
 * docs/protocol.md).  Plain modern JavaScript, no build step: load it with a
 * script tag (it defines the global `Wsgw`) or require() it from Node and
 * pass a WebSocket implementation (`ws` from npm) in the options.
 *
 *   const c = new Wsgw("ws://localhost:8080/ws");
 *   c.onConnect(() => c.join("lobby"));
 *   c.on("chat", (data, msg) => console.log(msg.from, data));
 *   c.to("room:lobby").emit("chat", { text: "hi" });      // resolves on ack
 *
 * Reconnects by itself with exponential backoff and jitter, rejoins its
 * rooms after a reconnect, and queues a bounded number of emits while
 * disconnected (the oldest is rejected when the queue is full).
 */
(function (root, factory) {
  "use strict";
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.Wsgw = api.Wsgw;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const DEFAULTS = {
    protocols: undefined,       // Sec-WebSocket-Protocol list
    reconnect: true,
    backoffMinMs: 250,
    backoffMaxMs: 10000,
    backoffFactor: 2,
    jitter: 0.5,                // +-50 % of each delay
    ackTimeoutMs: 10000,
    maxQueue: 256,              // emits kept while disconnected
    WebSocket: undefined,       // implementation (Node: require("ws"))
  };

  class WsgwError extends Error {
    constructor(code, message) {
      super(message || code);
      this.name = "WsgwError";
      this.code = code;
    }
  }

  class Wsgw {
    constructor(url, options) {
      this.url = url;
      this.opts = Object.assign({}, DEFAULTS, options || {});
      this.WS = this.opts.WebSocket || (typeof WebSocket !== "undefined" ? WebSocket : null);
      if (!this.WS) throw new Error("wsgw: no WebSocket implementation; pass options.WebSocket");
      this.id = null;               // connection id, from the welcome envelope
      this.state = "idle";          // idle | connecting | open | reconnecting | closed
      this.rooms = new Set();       // rejoined after a reconnect
      this.handlers = new Map();    // event -> [fn]
      this.hooks = { connect: [], disconnect: [], error: [], state: [], message: [] };
      this.pending = new Map();     // ack id -> {resolve, reject, timer}
      this.queue = [];              // envelopes waiting for a connection
      this.nextId = 1;
      this.attempt = 0;
      this.timer = null;
      this.ws = null;
      this.connect();
    }

    // ---- events ---------------------------------------------------------
    on(event, fn) {
      if (!this.handlers.has(event)) this.handlers.set(event, []);
      this.handlers.get(event).push(fn);
      return this;
    }
    off(event, fn) {
      const list = this.handlers.get(event);
      if (list) this.handlers.set(event, list.filter((f) => f !== fn));
      return this;
    }
    onConnect(fn) { this.hooks.connect.push(fn); if (this.state === "open") fn(this.id); return this; }
    onDisconnect(fn) { this.hooks.disconnect.push(fn); return this; }
    onError(fn) { this.hooks.error.push(fn); return this; }
    onStateChange(fn) { this.hooks.state.push(fn); return this; }
    /** Every envelope received, before dispatch (for debugging and tools). */
    onMessage(fn) { this.hooks.message.push(fn); return this; }

    // ---- actions --------------------------------------------------------
    /** Emit to the server's handlers / backends (no `to`). */
    emit(event, data) { return this.send({ op: "emit", event, data: data === undefined ? null : data }); }
    /** target: "broadcast" | "all" | "room:<name>" | "conn:<id>" */
    to(target) {
      return { emit: (event, data) => this.send({ op: "emit", event, to: target, data: data === undefined ? null : data }) };
    }
    join(room) {
      this.rooms.add(room);
      return this.send({ op: "join", room });
    }
    leave(room) {
      this.rooms.delete(room);
      return this.send({ op: "leave", room });
    }
    close(code, reason) {
      this.setState("closed");
      clearTimeout(this.timer);
      if (this.ws) this.ws.close(code || 1000, reason || "");
      this.failAll(new WsgwError("closed", "client closed"));
      this.queue = [];
    }

    // ---- internals --------------------------------------------------------
    setState(s) {
      if (this.state === s) return;
      this.state = s;
      for (const fn of this.hooks.state) fn(s);
    }

    connect() {
      if (this.state === "closed") return;
      this.setState(this.attempt ? "reconnecting" : "connecting");
      let ws;
      try {
        ws = this.opts.protocols ? new this.WS(this.url, this.opts.protocols) : new this.WS(this.url);
      } catch (err) {
        this.emitError(err);
        this.scheduleReconnect();
        return;
      }
      this.ws = ws;
      ws.onmessage = (ev) => this.receive(ev.data);
      ws.onerror = (ev) => this.emitError(ev && ev.error ? ev.error : new Error("websocket error"));
      ws.onclose = (ev) => {
        if (this.ws !== ws) return;
        this.ws = null;
        const wasOpen = this.state === "open";
        this.id = null;
        this.failAll(new WsgwError("disconnected", "connection closed before the ack"));
        if (wasOpen) for (const fn of this.hooks.disconnect) fn(ev.code, ev.reason);
        if (this.state !== "closed") this.scheduleReconnect();
      };
    }

    scheduleReconnect() {
      if (!this.opts.reconnect || this.state === "closed") { this.setState("closed"); return; }
      const o = this.opts;
      const base = Math.min(o.backoffMaxMs, o.backoffMinMs * Math.pow(o.backoffFactor, this.attempt));
      const delay = base * (1 - o.jitter + Math.random() * 2 * o.jitter);
      this.attempt++;
      this.setState("reconnecting");
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.connect(), delay);
    }

    receive(raw) {
      if (typeof raw !== "string") {
        this.emitError(new WsgwError("binary", "binary frame ignored: the envelope protocol is text"));
        return;
      }
      let msg;
      try { msg = JSON.parse(raw); } catch (e) { this.emitError(e); return; }
      for (const fn of this.hooks.message) fn(msg);
      if (msg.op === "welcome") return this.opened(msg.conn);
      if (msg.op === "ack" || msg.op === "error") return this.settle(msg);
      if (typeof msg.event === "string") {
        const list = this.handlers.get(msg.event);
        if (list) for (const fn of list.slice()) fn(msg.data, msg);
      }
    }

    opened(id) {
      this.id = id;
      this.attempt = 0;
      this.setState("open");
      // Rejoin first so that queued room emits find their room.
      for (const room of this.rooms) this.write({ op: "join", room }, null);
      const queued = this.queue;
      this.queue = [];
      for (const q of queued) this.write(q.env, q.ack);
      for (const fn of this.hooks.connect) fn(id);
    }

    send(env) {
      return new Promise((resolve, reject) => {
        const ack = { resolve, reject };
        if (this.state === "closed") return reject(new WsgwError("closed", "client closed"));
        if (this.state !== "open") {
          if (this.queue.length >= this.opts.maxQueue) {
            const dropped = this.queue.shift();
            dropped.ack.reject(new WsgwError("queue_full", "dropped: too many emits while disconnected"));
          }
          this.queue.push({ env, ack });
          return;
        }
        this.write(env, ack);
      });
    }

    write(env, ack) {
      if (ack) {
        const id = this.nextId++;
        env = Object.assign({}, env, { id });
        ack.timer = setTimeout(() => {
          this.pending.delete(id);
          ack.reject(new WsgwError("timeout", "no ack within " + this.opts.ackTimeoutMs + " ms"));
        }, this.opts.ackTimeoutMs);
        this.pending.set(id, ack);
      }
      this.ws.send(JSON.stringify(env));
    }

    settle(msg) {
      const ack = this.pending.get(msg.id);
      if (!ack) {
        if (msg.op === "error") this.emitError(new WsgwError(msg.code, msg.message));
        return;
      }
      this.pending.delete(msg.id);
      clearTimeout(ack.timer);
      if (msg.op === "ack") ack.resolve();
      else ack.reject(new WsgwError(msg.code, msg.message));
    }

    failAll(err) {
      for (const ack of this.pending.values()) { clearTimeout(ack.timer); ack.reject(err); }
      this.pending.clear();
    }

    emitError(err) {
      for (const fn of this.hooks.error) fn(err);
    }
  }

  return { Wsgw, WsgwError };
});
