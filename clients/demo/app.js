/* app.js — the demo chat of wsgw: a name, a room, messages, who is here,
 * and the state of the connection.  It uses only the JavaScript client
 * served by the gateway at /wsgw.js (clients/js/README.md).
 *
 * Presence, done in the clients (the gateway has no presence feature):
 * every page sends "presence" events to its room, with a per-tab id (uid)
 * that survives reconnects (the connection id does not) and its name:
 *   {t:"hello"}  after it joined the room, and again after every reconnect
 *                ("I am here: who else is?");
 *   {t:"here"}   the answer of everyone who hears a hello from someone else;
 *   {t:"beat"}   a heartbeat every BEAT_MS;
 *   {t:"bye"}    when it leaves the room or the page is closed (pagehide).
 * A page lists whoever it heard from (presence or chat) within EXPIRE_MS,
 * so a page that vanished without a bye (crash, lost network) drops off
 * after three missed heartbeats.  Nothing is stored anywhere: a page knows
 * who is here from what it hears, like everyone else.  Cost: a hello gets
 * one answer per member, and each answer reaches every member (n² messages
 * per join), fine for a chat room of people, not for thousands.
 */
(function () {
  "use strict";

  const BEAT_MS = 15000;
  const EXPIRE_MS = 3 * BEAT_MS;
  const ROOM_RE = /^[A-Za-z0-9_.:@/-]{1,64}$/;
  const MAX_NAME = 32;

  const $ = (id) => document.getElementById(id);
  const ui = {
    state: $("state"), stateText: $("state-text"),
    joinView: $("join-view"), joinForm: $("join-form"), name: $("name"), room: $("room"),
    joinError: $("join-error"), joinButton: $("join"),
    chatView: $("chat-view"), roomTitle: $("room-title"), leave: $("leave"),
    people: $("people"), peopleCount: $("people-count"),
    messages: $("messages"), composer: $("composer"), message: $("message"),
  };

  const uid = randomId();
  let name = "";
  let room = null;        // the room this page is in (or joining)
  let joined = false;     // the first join of `room` was acked
  let seq = 0;
  let beatTimer = null;
  const people = new Map();   // uid -> {name, seen}
  const mine = new Map();     // message id -> <li> of a message this page sent

  const client = new Wsgw(undefined, { maxQueue: 100 });
  window.wsgwChat = { client, uid };      // for the console and the tests

  // ---- connection state ------------------------------------------------------
  const STATE_TEXT = {
    idle: "Not connected", connecting: "Connecting…", open: "Connected",
    reconnecting: "Reconnecting…", closed: "Offline",
  };
  function showState() {
    const s = client.state;
    ui.state.dataset.state = s;
    const waiting = client.queued;
    ui.stateText.textContent = STATE_TEXT[s] + (s !== "open" && waiting ? ` · ${waiting} waiting` : "");
  }
  let wasOpen = false;
  client.onStateChange((s) => {
    showState();
    if (!room) return;
    if (s === "reconnecting" && wasOpen) notice("Connection lost. Reconnecting…", "warn");
    if (s === "open" && wasOpen) notice("Reconnected.", "ok");
  });
  client.onConnect(() => {
    // Rooms are rejoined by the client itself; announce ourselves again.
    if (room && joined) announce("hello");
    wasOpen = true;
    showState();
  });
  client.onError((err) => {
    if (err && err.room && room === err.room) {
      notice(`Could not rejoin #${err.room}: ${err.message}`, "warn");
    }
  });
  showState();

  // ---- joining and leaving ---------------------------------------------------
  try {
    ui.name.value = localStorage.getItem("wsgw-demo-name") || "";
  } catch (e) { /* storage off */ }
  const fromHash = decodeURIComponent(location.hash.slice(1));
  if (ROOM_RE.test(fromHash)) ui.room.value = fromHash;
  (ui.name.value ? ui.room : ui.name).focus();

  ui.joinForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const n = ui.name.value.trim().replace(/\s+/g, " ");
    const r = ui.room.value.trim().replace(/^#/, "");
    if (!n) return formError("Please choose a name.", ui.name);
    if (n.length > MAX_NAME) return formError(`A name has at most ${MAX_NAME} characters.`, ui.name);
    if (!ROOM_RE.test(r)) return formError("A room name uses letters, digits and _ . : @ / - (1 to 64).", ui.room);
    formError("");
    name = n;
    try { localStorage.setItem("wsgw-demo-name", name); } catch (e) { /* storage off */ }
    ui.joinButton.disabled = true;
    enterRoom(r);
    try {
      await client.join(r);
    } catch (err) {
      if (room !== r) return;
      leaveRoom(false);
      formError(`Could not join #${r}: ${err.message} (${err.code}).`, ui.room);
      return;
    } finally {
      ui.joinButton.disabled = false;
    }
    if (room !== r) return;
    joined = true;
    notice(`You joined #${r}.`);
    notice("Messages are not stored: you see what is said while you are here.");
    announce("hello");
  });

  function enterRoom(r) {
    room = r;
    joined = false;
    people.clear();
    mine.clear();
    ui.messages.textContent = "";
    ui.roomTitle.textContent = "#" + r;
    ui.message.placeholder = `Message #${r}`;
    document.title = `#${r} · wsgw chat`;
    history.replaceState(null, "", "#" + r);     // every room character is valid in a fragment
    ui.joinView.hidden = true;
    ui.chatView.hidden = false;
    renderPeople();
    clearInterval(beatTimer);
    beatTimer = setInterval(() => { if (joined) announce("beat"); expire(); }, BEAT_MS);
    ui.message.focus();
  }

  function leaveRoom(sayBye) {
    const r = room;
    if (!r) return;
    if (sayBye && joined) announce("bye");
    room = null;
    joined = false;
    clearInterval(beatTimer);
    client.leave(r).catch(() => { /* already gone */ });
    people.clear();
    ui.chatView.hidden = true;
    ui.joinView.hidden = false;
    document.title = "wsgw chat";
    ui.room.focus();
  }

  ui.leave.addEventListener("click", () => leaveRoom(true));
  window.addEventListener("pagehide", () => { if (room && joined) announce("bye"); });

  function formError(text, field) {
    ui.joinError.textContent = text;
    ui.joinError.hidden = !text;
    for (const f of [ui.name, ui.room]) f.removeAttribute("aria-invalid");
    if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
  }

  // ---- presence ----------------------------------------------------------------
  function announce(t) {
    if (!room) return;
    client.to("room:" + room).emit("presence", { t, uid, name }).catch(() => { /* best effort */ });
  }

  client.on("presence", (p, msg) => {
    if (!room || msg.to !== "room:" + room || !p || typeof p.uid !== "string" || p.uid === uid) return;
    if (p.t === "bye") {
      const who = people.get(p.uid);
      if (who) { people.delete(p.uid); notice(`${who.name} left.`); renderPeople(); }
      return;
    }
    const pname = cleanName(p.name);
    const known = people.has(p.uid);
    people.set(p.uid, { name: pname, seen: Date.now() });
    if (!known && p.t === "hello") notice(`${pname} joined.`);
    if (p.t === "hello" && joined) announce("here");
    renderPeople();
  });

  function seen(puid, pname) {
    if (puid === uid) return;
    const known = people.get(puid);
    people.set(puid, { name: pname, seen: Date.now() });
    if (!known || known.name !== pname) renderPeople();
  }

  function expire() {
    if (client.state !== "open") return;   // we are the ones who cannot hear: judge nobody
    const now = Date.now();
    let changed = false;
    for (const [k, p] of people) {
      if (now - p.seen > EXPIRE_MS) { people.delete(k); changed = true; notice(`${p.name} went away.`); }
    }
    if (changed) renderPeople();
  }

  function renderPeople() {
    const list = [{ uid, name: name || "you", self: true }];
    for (const [k, p] of people) list.push({ uid: k, name: p.name, self: false });
    list.sort((a, b) => (b.self - a.self) || a.name.localeCompare(b.name));
    ui.people.textContent = "";
    for (const p of list) {
      const li = document.createElement("li");
      li.className = "person" + (p.self ? " self" : "");
      li.dataset.uid = p.uid;
      li.append(avatar(p.uid, p.name));
      const label = document.createElement("span");
      label.className = "person-name";
      label.textContent = p.name;
      li.append(label);
      if (p.self) {
        const you = document.createElement("span");
        you.className = "you";
        you.textContent = "you";
        li.append(you);
      }
      ui.people.append(li);
    }
    ui.peopleCount.textContent = String(list.length);
  }

  // ---- messages ----------------------------------------------------------------
  ui.composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = ui.message.value.trim();
    if (!text || !room) return;
    if (!joined && client.state === "open") return;   // the join is still on its way
    ui.message.value = "";
    const mid = uid + ":" + (++seq);
    const li = addMessage({ uid, name, text, mid, ts: Date.now() }, true);
    mine.set(mid, li);
    setStatus(li, client.state === "open" ? "sending" : "queued");
    client.to("room:" + room).emit("chat", { uid, name, text, mid, ts: Date.now() })
      .then(() => setStatus(li, "sent"))
      .catch((err) => setStatus(li, "failed", err));
    showState();                                       // "· 1 waiting" while offline
  });

  client.on("chat", (m, msg) => {
    if (!room || msg.to !== "room:" + room || !m || typeof m.text !== "string") return;
    if (m.uid === uid) {
      const li = mine.get(m.mid);
      if (li) { setStatus(li, "sent"); return; }     // our own, already shown
    }
    if (typeof m.uid === "string") seen(m.uid, cleanName(m.name));
    addMessage({ uid: String(m.uid), name: cleanName(m.name), text: m.text.slice(0, 2000), mid: m.mid, ts: m.ts }, m.uid === uid);
  });

  function addMessage(m, own) {
    const last = ui.messages.lastElementChild;
    const ts = typeof m.ts === "number" && isFinite(m.ts) ? m.ts : Date.now();
    const cont = last && last.dataset.uid === m.uid && ts - Number(last.dataset.ts) < 120000;
    const li = document.createElement("li");
    li.className = "msg" + (own ? " own" : "") + (cont ? " cont" : "");
    li.dataset.uid = m.uid;
    li.dataset.ts = String(ts);
    if (!own) li.append(avatar(m.uid, m.name));
    const body = document.createElement("div");
    body.className = "msg-body";
    const meta = document.createElement("div");
    meta.className = "msg-meta";
    const who = document.createElement("span");
    who.className = "msg-name";
    who.textContent = own ? "You" : m.name;
    const when = document.createElement("time");
    when.dateTime = new Date(ts).toISOString();
    when.textContent = new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    meta.append(who, when);
    const text = document.createElement("p");
    text.className = "msg-text";
    text.textContent = m.text;
    body.append(meta, text);
    li.append(body);
    append(li);
    return li;
  }

  function setStatus(li, status, err) {
    li.dataset.status = status;
    let s = li.querySelector(".msg-status");
    if (status === "sent") { if (s) s.remove(); showState(); return; }
    if (!s) {
      s = document.createElement("span");
      s.className = "msg-status";
      li.querySelector(".msg-meta").append(s);
    }
    s.textContent = status === "failed" ? `not sent (${err && err.code})` : status === "queued" ? "waiting for connection" : "sending…";
    showState();
  }

  function notice(text, kind) {
    const li = document.createElement("li");
    li.className = "notice" + (kind ? " " + kind : "");
    li.textContent = text;
    append(li);
  }

  // The list follows new messages while it is scrolled to the bottom (also
  // when the window is resized); scrolled up to read, it stays put.
  let stick = true;
  const box = ui.messages;
  const toBottom = () => { box.scrollTop = box.scrollHeight; };
  box.addEventListener("scroll", () => { stick = box.scrollHeight - box.scrollTop - box.clientHeight < 40; });
  if (typeof ResizeObserver === "function") new ResizeObserver(() => { if (stick) toBottom(); }).observe(box);

  function append(li) {
    box.append(li);
    while (box.children.length > 500) box.firstElementChild.remove();
    if (stick || li.classList.contains("own")) { toBottom(); stick = true; }
  }

  // ---- helpers ------------------------------------------------------------------
  function cleanName(n) {
    const s = typeof n === "string" ? n.trim().slice(0, MAX_NAME) : "";
    return s || "someone";
  }

  function avatar(id, n) {
    const a = document.createElement("span");
    a.className = "avatar";
    a.setAttribute("aria-hidden", "true");
    a.textContent = (n.trim()[0] || "?").toUpperCase();
    let h = 0;
    for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
    a.style.setProperty("--hue", String(h % 360));
    return a;
  }

  function randomId() {
    const b = new Uint8Array(9);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }
})();
