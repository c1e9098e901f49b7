/* wsgw.js — the JavaScript client of the wsgw gateway (envelope protocol,
 * docs/protocol.md; usage in clients/js/README.md).  Plain modern
 * JavaScript, no build step: load it with a script tag (it defines the
 * global `Wsgw`) or require() it from Node and pass a WebSocket
 * implementation (`ws` from npm) in the options.
 *
 *   const c = new Wsgw("ws://localhost:8080/ws");
 *   c.onConnect(() => c.join("lobby"));
 *   c.on("chat", (data, msg) => console.log(msg.from, data));
 *   c.to("room:lobby").emit("chat", { text: "hi" });      // resolves on ack
 *
 * Reconnects by itself with exponential backoff and jitter, rejoins its
 * rooms after a reconnect, and queues a bounded number of emits while
 * disconnected (the oldest is rejected when the queue is full).
 *
 * Binary data: a Uint8Array, ArrayBuffer (or any typed array, DataView,
 * Node Buffer) anywhere inside `data` is sent as {"$bin":"<base64>"} and
 * handed to handlers as a Uint8Array (docs/protocol.md "Binary data").
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
    reconnect: true,            // false: never reconnect by itself
    // Whether to reconnect after the server closed the connection with this
    // code.  Default: always, except 4000-4999, the codes a backend gives a
    // deliberate disconnect ({"op":"disconnect","code":4001}).
    shouldReconnect: (code) => !(code >= 4000 && code <= 4999),
    backoffMinMs: 250,          // first retry delay
    backoffMaxMs: 10000,        // cap of the delay
    backoffFactor: 2,           // growth per failed attempt
    jitter: 0.5,                // each delay is randomised by +-50 %
    connectTimeoutMs: 10000,    // from new WebSocket() to the welcome; 0 = none
    ackTimeoutMs: 10000,        // from sending an envelope to its ack; 0 = none
    maxQueue: 256,              // emits kept while disconnected
    maxMessageSize: undefined,  // bytes per envelope; larger emits reject with too_large.
                                // undefined: the gateway's max_message_size, from its
                                // welcome (65536 before the first one).  0 = no check
    binary: "decode",           // binary frames: "decode" (UTF-8 JSON, as with the
                                // gateway's binary_messages) or "ignore"
    autoConnect: true,          // false: wait for connect()
    WebSocket: undefined,       // implementation (Node: require("ws"))
  };

  const STATES = ["idle", "connecting", "open", "reconnecting", "closed"];

  class WsgwError extends Error {
    constructor(code, message, extra) {
      super(message || code);
      this.name = "WsgwError";
      this.code = code;
      if (extra) Object.assign(this, extra);
    }
  }

  function noop() {}

  /* A promise whose rejection is never reported as unhandled: an app that
   * fires emits and forgets them must not crash Node or flood a console
   * when the network blinks.  `await` and .catch() still see the error. */
  function quiet(executor) {
    const p = new Promise(executor);
    p.catch(noop);
    return p;
  }

  /* ws:// and wss:// as given; http(s):// mapped to ws(s)://; a path or
   * nothing: this page's host (path /ws). */
  function resolveUrl(url) {
    if (url === undefined || url === null || url === "" || (typeof url === "string" && url.startsWith("/"))) {
      if (typeof location === "undefined" || !location.host)
        throw new Error("wsgw: give a ws:// or wss:// URL");
      return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + (url || "/ws");
    }
    const s = String(url);
    if (/^wss?:\/\//i.test(s)) return s;
    if (/^https?:\/\//i.test(s)) return s.replace(/^http/i, "ws");
    throw new Error("wsgw: not a ws://, wss://, http:// or https:// URL: " + s);
  }

  // ---- binary data ------------------------------------------------------------
  // JSON has no bytes, so bytes travel as {"$bin":"<base64>"}: the gateway,
  // Redis backends and the C API see plain JSON and pass it on byte for
  // byte, and a message is still compressed once for all its receivers.

  const objectTag = Object.prototype.toString;
  const hasOwn = Object.prototype.hasOwnProperty;
  const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

  /** The bytes of an ArrayBuffer or a view on one (typed array, DataView,
   * Buffer), or null.  The tag test also works across realms (iframes). */
  function bytesOf(v) {
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    const tag = objectTag.call(v);
    if (tag === "[object ArrayBuffer]" || tag === "[object SharedArrayBuffer]") return new Uint8Array(v);
    return null;
  }

  /** An object whose only own key is "$bin": binary data on the wire. */
  function isBinWrapper(v) {
    if (v === null || typeof v !== "object" || Array.isArray(v) || !hasOwn.call(v, "$bin")) return false;
    for (const k in v) if (k !== "$bin" && hasOwn.call(v, k)) return false;
    return true;
  }

  function base64Encode(bytes) {
    // String.fromCharCode takes its arguments on the stack: in slices.
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000)
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  /** Strict: the standard alphabet, padded, no whitespace; else null. */
  function base64Decode(s) {
    if (typeof s !== "string" || s.length % 4 !== 0 || !BASE64.test(s)) return null;
    let bin;
    try { bin = atob(s); } catch (e) { return null; }
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  /** JSON.stringify replacer: bytes become {"$bin":..}.  `this[key]` is the
   * value before toJSON (a Buffer's toJSON would give {type, data}). */
  function binaryReplacer(key, value) {
    const orig = this[key];
    if (orig !== null && typeof orig === "object") {
      const bytes = bytesOf(orig);
      if (bytes) return { $bin: base64Encode(bytes) };
      if (typeof Blob !== "undefined" && orig instanceof Blob)
        throw new TypeError("a Blob is read asynchronously: send await blob.arrayBuffer()");
      if (isBinWrapper(value))
        throw new TypeError('an object whose only key is "$bin" is how binary data is sent: rename the key');
    }
    return value;
  }

  /** Replaces every {"$bin":"<base64>"} inside holder[key] by a
   * Uint8Array, without recursion (a backend may nest deep).  A wrapper
   * that is not strict base64 stays as it is; returns how many did. */
  function reviveBinary(holder, key) {
    let bad = 0;
    const stack = [holder, key];
    while (stack.length) {
      const k = stack.pop(), h = stack.pop();
      const v = h[k];
      if (v === null || typeof v !== "object") continue;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (v[i] !== null && typeof v[i] === "object") stack.push(v, i);
      } else if (isBinWrapper(v)) {
        const bytes = base64Decode(v.$bin);
        if (bytes) h[k] = bytes;
        else bad++;
      } else {
        for (const kk of Object.keys(v)) if (v[kk] !== null && typeof v[kk] === "object") stack.push(v, kk);
      }
    }
    return bad;
  }

  /** UTF-8 length of s, or some number over `limit` once it is passed. */
  function utf8Length(s, limit) {
    if (s.length > limit) return s.length;          // every UTF-16 unit is >= 1 byte
    if (s.length * 3 <= limit) return s.length;     // ... and <= 3 bytes (a pair: 4 for 2)
    let n = 0;
    for (let i = 0; i < s.length && n <= limit; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length &&
               (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
      else n += 3;
    }
    return n;
  }

  class Wsgw {
    /** url: "ws://host:port/ws"; in a page "/ws" or nothing means this host. */
    constructor(url, options) {
      this.url = resolveUrl(url);
      this.opts = Object.assign({}, DEFAULTS, options || {});
      this.WS = this.opts.WebSocket || (typeof WebSocket !== "undefined" ? WebSocket : null);
      if (!this.WS) throw new Error("wsgw: no WebSocket implementation; pass options.WebSocket");
      this.id = null;               // connection id, from the welcome envelope
      this.state = "idle";          // idle | connecting | open | reconnecting | closed
      this.ws = null;
      this._rooms = new Map();      // room -> {waiters: [{resolve, reject}]}; rejoined after a reconnect
      this._handlers = new Map();   // event -> [fn]
      this._hooks = { connect: [], disconnect: [], error: [], state: [], message: [] };
      this._pending = new Map();    // envelope id -> {resolve, reject, timer}
      this._queue = [];             // [{text, ack}] emits waiting for a connection
      this._nextId = 1;
      this._gatewayMax = 0;         // max_message_size from the last welcome
      this._attempt = 0;            // failed attempts since the last welcome
      this._timer = null;           // reconnect delay
      this._connectTimer = null;    // connectTimeoutMs
      if (this.opts.autoConnect) this.connect();
    }

    // ---- state --------------------------------------------------------------
    /** The rooms this client is in, or will rejoin on the next connection. */
    get rooms() { return new Set(this._rooms.keys()); }
    isJoined(room) { return this._rooms.has(room); }
    /** Emits waiting for a connection. */
    get queued() { return this._queue.length; }

    // ---- events ---------------------------------------------------------------
    /** fn(data, envelope) for each delivery of `event`. */
    on(event, fn) {
      if (!this._handlers.has(event)) this._handlers.set(event, []);
      this._handlers.get(event).push(fn);
      return this;
    }
    /** Like on(), removed after the first delivery. */
    once(event, fn) {
      const wrapper = (data, msg) => { this.off(event, wrapper); fn(data, msg); };
      wrapper.listener = fn;
      return this.on(event, wrapper);
    }
    /** off(event, fn) removes fn; off(event) removes every handler of event. */
    off(event, fn) {
      const list = this._handlers.get(event);
      if (!list) return this;
      const rest = fn ? list.filter((f) => f !== fn && f.listener !== fn) : [];
      if (rest.length) this._handlers.set(event, rest);
      else this._handlers.delete(event);
      return this;
    }
    /** fn(id) on every welcome: the first connection and each reconnect. */
    onConnect(fn) { this._hooks.connect.push(fn); if (this.state === "open") this._call(fn, [this.id]); return this; }
    /** fn(code, reason) when an open connection closes. */
    onDisconnect(fn) { this._hooks.disconnect.push(fn); return this; }
    /** fn(error): transport errors, error envelopes that answer nothing,
     * failed rejoins, frames that are not envelopes, exceptions in handlers. */
    onError(fn) { this._hooks.error.push(fn); return this; }
    /** fn(state, previous) on every state change. */
    onStateChange(fn) { this._hooks.state.push(fn); return this; }
    /** fn(envelope): every envelope received, before dispatch (debugging, tools). */
    onMessage(fn) { this._hooks.message.push(fn); return this; }

    // ---- actions --------------------------------------------------------------
    /** Emit to the server's handlers / backends (no `to`). */
    emit(event, data) { return this._send({ op: "emit", event, data: data === undefined ? null : data }); }
    /** target: "broadcast" | "all" | "room:<name>" | "conn:<id>" */
    to(target) {
      return { emit: (event, data) => this._send({ op: "emit", event, to: target, data: data === undefined ? null : data }) };
    }

    /** Joins `room`; resolves when the gateway acked it (on this connection
     * or, when offline, on the next one).  The room is rejoined after every
     * reconnect until leave(). */
    join(room) {
      return quiet((resolve, reject) => {
        if (this.state === "closed") return reject(new WsgwError("closed", "client closed"));
        let entry = this._rooms.get(room);
        if (!entry) { entry = { waiters: [] }; this._rooms.set(room, entry); }
        entry.waiters.push({ resolve, reject });
        if (this.state === "open") this._joinNow(room, entry);
      });
    }

    /** Leaves `room`.  Offline it resolves at once: the next connection
     * simply does not rejoin it. */
    leave(room) {
      const entry = this._rooms.get(room);
      this._rooms.delete(room);
      if (this.state !== "open") {
        if (entry) this._settleWaiters(entry, new WsgwError("cancelled", "left before the join was sent", { room }));
        return quiet((resolve, reject) =>
          this.state === "closed" ? reject(new WsgwError("closed", "client closed")) : resolve());
      }
      return this._send({ op: "leave", room });
    }

    /** Opens the connection (autoConnect: false, or again after close()). */
    connect() {
      if (this.state === "idle" || this.state === "closed") {
        this._attempt = 0;
        this._open();
      }
      return this;
    }

    /** Closes for good: no reconnect; pending acks, queued emits and
     * pending joins are rejected with code "closed"; rooms are forgotten. */
    close(code, reason) {
      const ws = this.ws, wasOpen = this.state === "open";
      clearTimeout(this._timer);
      clearTimeout(this._connectTimer);
      this.ws = null;
      this.id = null;
      this._setState("closed");
      if (ws) this._shut(ws, code || 1000, reason || "");
      const err = new WsgwError("closed", "client closed");
      this._failPending(err);
      this._failQueue(err);
      for (const [room, entry] of this._rooms) this._settleWaiters(entry, new WsgwError("closed", "client closed", { room }));
      this._rooms.clear();
      if (wasOpen) this._fire("disconnect", [code || 1000, reason || ""]);
      return this;
    }

    // ---- internals ------------------------------------------------------------
    _setState(s) {
      if (this.state === s) return;
      const prev = this.state;
      this.state = s;
      this._fire("state", [s, prev]);
    }

    _open() {
      this._setState(this._attempt ? "reconnecting" : "connecting");
      let ws;
      try {
        ws = this.opts.protocols ? new this.WS(this.url, this.opts.protocols) : new this.WS(this.url);
      } catch (err) {
        this._emitError(err);
        this._lost(1006, "");
        return;
      }
      this.ws = ws;
      try { ws.binaryType = "arraybuffer"; } catch (e) { /* not settable: Blobs are ignored */ }
      ws.onmessage = (ev) => { if (this.ws === ws) this._receive(ev.data); };
      ws.onerror = (ev) => {
        if (this.ws === ws) this._emitError(ev && ev.error ? ev.error : new WsgwError("transport", "websocket error"));
      };
      ws.onclose = (ev) => {
        if (this.ws !== ws) return;
        this._dropped(ev.code, ev.reason);
      };
      clearTimeout(this._connectTimer);
      if (this.opts.connectTimeoutMs > 0) {
        this._connectTimer = setTimeout(() => {
          if (this.ws !== ws || this.state === "open") return;
          this._emitError(new WsgwError("connect_timeout", "no welcome within " + this.opts.connectTimeoutMs + " ms"));
          this._shut(ws, 1000, "");
          this._dropped(1006, "connect timeout");
        }, this.opts.connectTimeoutMs);
      }
    }

    /** Detaches and closes a socket without waiting for its close event. */
    _shut(ws, code, reason) {
      ws.onmessage = ws.onerror = ws.onclose = null;
      ws.onerror = noop;      // a close before the handshake ends reports an error
      try { ws.close(code, reason); } catch (e) { try { ws.close(); } catch (e2) { /* already gone */ } }
      // Node's `ws` waits up to 30 s for the peer's close frame: do not keep
      // the process (or a dead peer's socket) alive for it.
      if (typeof ws.terminate === "function") {
        const t = setTimeout(() => { try { ws.terminate(); } catch (e) { /* gone */ } }, 1000);
        if (t && t.unref) t.unref();
      }
    }

    /** The socket closed (or was given up) while this client wanted it open. */
    _dropped(code, reason) {
      const wasOpen = this.state === "open";
      this.ws = null;
      this.id = null;
      clearTimeout(this._connectTimer);
      this._failPending(new WsgwError("disconnected", "connection closed before the ack"));
      if (wasOpen) this._fire("disconnect", [code, reason]);
      if (this.state !== "closed") this._lost(code, reason);
    }

    _lost(code, reason) {
      const o = this.opts;
      if (!o.reconnect || !o.shouldReconnect(code, reason)) {
        this._setState("closed");
        const err = new WsgwError("closed", "connection closed (" + code + (reason ? " " + reason : "") + "), not reconnecting");
        this._failQueue(err);
        for (const [room, entry] of this._rooms) this._settleWaiters(entry, new WsgwError("closed", err.message, { room }));
        return;
      }
      const base = Math.min(o.backoffMaxMs, o.backoffMinMs * Math.pow(o.backoffFactor, this._attempt));
      const delay = Math.max(0, base * (1 - o.jitter + Math.random() * 2 * o.jitter));
      this._attempt++;
      this._setState("reconnecting");
      clearTimeout(this._timer);
      this._timer = setTimeout(() => { if (this.state === "reconnecting") this._open(); }, delay);
    }

    _receive(raw) {
      if (typeof raw !== "string") {
        raw = this._decodeBinary(raw);
        if (raw === null) return;
      }
      let msg;
      try { msg = JSON.parse(raw); } catch (e) { msg = undefined; }
      if (!msg || typeof msg !== "object" || Array.isArray(msg)) {
        this._emitError(new WsgwError("bad_message", "a frame that is not a JSON object was ignored"));
        return;
      }
      // Keys count after unescaping ("\u0024bin" is "$bin"); the text test
      // only spares the walk to messages that cannot hold a wrapper.
      if (msg.data !== null && typeof msg.data === "object" && (raw.includes('"$bin"') || raw.includes("\\u"))) {
        const bad = reviveBinary(msg, "data");
        if (bad) this._emitError(new WsgwError("bad_binary", "event " + JSON.stringify(msg.event) + ": " + bad +
          ' {"$bin":..} value(s) not strict base64, handed over as plain objects', { event: msg.event }));
      }
      this._fire("message", [msg]);
      if (msg.op === "welcome") {
        if (Number.isSafeInteger(msg.max_message_size) && msg.max_message_size > 0)
          this._gatewayMax = msg.max_message_size;
        if (typeof msg.conn === "string" && this.state !== "open") this._welcome(msg.conn);
        return;
      }
      if (msg.op === "ack" || msg.op === "error") return this._settle(msg);
      if (msg.op === undefined && typeof msg.event === "string") {
        const list = this._handlers.get(msg.event);
        if (list) for (const fn of list.slice()) this._call(fn, [msg.data, msg]);
      }
      // Anything else is a later protocol's business: onMessage saw it.
    }

    /** The envelope size limit: the option when set, else the gateway's. */
    _maxMessageSize() {
      const opt = this.opts.maxMessageSize;
      if (opt !== undefined && opt !== null) return opt;
      return this._gatewayMax || 65536;
    }

    _decodeBinary(data) {
      let bytes = null;
      if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
      else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (this.opts.binary === "decode" && bytes && typeof TextDecoder !== "undefined") {
        try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch (e) { /* not UTF-8 */ }
      }
      this._emitError(new WsgwError("binary", "binary frame ignored: the envelope protocol is text"));
      return null;
    }

    _welcome(id) {
      clearTimeout(this._connectTimer);
      this.id = id;
      this._attempt = 0;
      this._setState("open");
      // Rejoin first so that queued room emits find their room; the
      // connection keeps the order of what it is given.
      for (const [room, entry] of this._rooms) this._joinNow(room, entry);
      const queued = this._queue;
      this._queue = [];
      for (const q of queued) this._write(q.text, q.ack);
      if (this.state === "open") this._fire("connect", [id]);
    }

    _joinNow(room, entry) {
      const text = JSON.stringify({ op: "join", room });
      this._write(text, {
        resolve: () => this._settleWaiters(entry, null),
        reject: (err) => {
          // Lost with the connection: the next one rejoins and settles it.
          if (err.code === "disconnected" && this._rooms.get(room) === entry) return;
          // Refused for good (bad_room, forbidden, too_many_rooms, ...): forget it.
          const refused = err.code !== "timeout" && err.code !== "disconnected" && err.code !== "closed";
          if (refused && this._rooms.get(room) === entry) this._rooms.delete(room);
          err.room = room;
          if (!entry.waiters.length && err.code !== "closed") this._emitError(err);
          this._settleWaiters(entry, err);
        },
      });
    }

    _settleWaiters(entry, err) {
      const waiters = entry.waiters;
      entry.waiters = [];
      for (const w of waiters) err ? w.reject(err) : w.resolve();
    }

    _send(env) {
      return quiet((resolve, reject) => {
        if (this.state === "closed") return reject(new WsgwError("closed", "client closed"));
        let text;
        try { text = JSON.stringify(env, binaryReplacer); } catch (e) {
          return reject(new WsgwError("bad_data", "data cannot be sent as JSON: " + e.message));
        }
        // Early, so that an oversized emit is not queued: the id adds at least 7 bytes.
        const max = this._maxMessageSize();
        if (max > 0 && utf8Length(text, max) + 7 > max)
          return reject(new WsgwError("too_large", "the envelope is over the message size limit (" + max +
            " bytes); binary data counts 4/3 of its size (base64)"));
        const ack = { resolve, reject };
        if (this.state === "open") return this._write(text, ack);
        if (env.op !== "emit") return reject(new WsgwError("internal", "only emits are queued"));
        if (this.opts.maxQueue <= 0) return reject(new WsgwError("queue_full", "not connected and the queue is off"));
        if (this._queue.length >= this.opts.maxQueue) {
          const dropped = this._queue.shift();
          dropped.ack.reject(new WsgwError("queue_full", "dropped: more than " + this.opts.maxQueue + " emits while disconnected"));
        }
        this._queue.push({ text, ack });
      });
    }

    /** Sends one envelope (JSON text of an object) with a fresh id. */
    _write(text, ack) {
      const id = this._nextId++;
      const ws = this.ws;
      const frame = text.slice(0, -1) + ',"id":' + id + "}";
      const max = this._maxMessageSize();
      // The gateway would close the connection (1009), failing every
      // pending ack with it: refuse this one envelope instead.
      if (max > 0 && utf8Length(frame, max) > max)
        return ack.reject(new WsgwError("too_large", "the envelope is over the message size limit (" + max +
          " bytes); binary data counts 4/3 of its size (base64)", { id }));
      if (this.opts.ackTimeoutMs > 0) {
        ack.timer = setTimeout(() => {
          if (this._pending.get(id) !== ack) return;
          this._pending.delete(id);
          ack.reject(new WsgwError("timeout", "no ack within " + this.opts.ackTimeoutMs + " ms", { id }));
        }, this.opts.ackTimeoutMs);
      }
      this._pending.set(id, ack);
      try {
        ws.send(frame);
      } catch (err) {
        this._pending.delete(id);
        clearTimeout(ack.timer);
        ack.reject(new WsgwError("disconnected", "send failed: " + (err && err.message), { id }));
      }
    }

    _settle(msg) {
      const ack = msg.id === undefined ? undefined : this._pending.get(msg.id);
      if (!ack) {
        // An error that answers no pending envelope (no id, or too late).
        if (msg.op === "error") this._emitError(new WsgwError(msg.code, msg.message, { id: msg.id }));
        return;
      }
      this._pending.delete(msg.id);
      clearTimeout(ack.timer);
      if (msg.op === "ack") ack.resolve();
      else ack.reject(new WsgwError(String(msg.code), msg.message, { id: msg.id }));
    }

    _failPending(err) {
      const pending = Array.from(this._pending.values());
      this._pending.clear();
      for (const ack of pending) { clearTimeout(ack.timer); ack.reject(err); }
    }

    _failQueue(err) {
      const queued = this._queue;
      this._queue = [];
      for (const q of queued) q.ack.reject(err);
    }

    _fire(hook, args) {
      for (const fn of this._hooks[hook].slice()) this._call(fn, args);
    }

    /** Calls an application callback; what it throws goes to onError. */
    _call(fn, args) {
      try { fn.apply(null, args); } catch (err) {
        if (this._hooks.error.length && !this._inError) this._emitError(err);
        else if (typeof console !== "undefined") console.error("wsgw: callback threw", err);
      }
    }

    _emitError(err) {
      if (this._inError) return;
      this._inError = true;
      try {
        for (const fn of this._hooks.error.slice()) {
          try { fn(err); } catch (e) { if (typeof console !== "undefined") console.error("wsgw: onError callback threw", e); }
        }
      } finally { this._inError = false; }
    }
  }

  Wsgw.WsgwError = WsgwError;
  Wsgw.STATES = STATES;
  Wsgw.DEFAULTS = DEFAULTS;
  return { Wsgw, WsgwError };
});
