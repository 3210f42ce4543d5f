// Runs the generated JavaScript client (the web golden module's js/web.js
// and the runtime js/mqant.js, from the directory in MQANT_SDK_JS) against a
// scripted MQTT.js-like connection. Started by TestSDKRuntimeInNode.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { pathToFileURL } from "node:url";
import path from "node:path";

const dir = process.env.MQANT_SDK_JS;
assert.ok(dir, "MQANT_SDK_JS must name the generated js/ directory");
const { WebClient } = await import(pathToFileURL(path.join(dir, "web.js")).href);
const mqant = await import(pathToFileURL(path.join(dir, "mqant.js")).href);

// FakeConnection records publishes and lets the test play the gate.
class FakeConnection extends EventEmitter {
  constructor() {
    super();
    this.published = [];
    this.failNext = null;
  }
  publish(topic, message, options, callback) {
    this.published.push({ topic, body: JSON.parse(message), qos: options.qos });
    const err = this.failNext;
    this.failNext = null;
    queueMicrotask(() => callback(err ?? undefined));
    return this;
  }
  // deliver sends a message to the client as the gate would: bytes.
  deliver(topic, value) {
    this.emit("message", topic, Buffer.from(typeof value === "string" ? value : JSON.stringify(value)));
  }
  reply(i, value) {
    this.deliver(this.published[i].topic, value);
  }
}

const tick = () => new Promise((r) => setImmediate(r));

test("a call publishes the request with a msgid and resolves with the reply's Result", async () => {
  const conn = new FakeConnection();
  const web = new WebClient(conn);
  const req = { seq: 1, kind: 2, named: { seq: 3, kind: "k" }, items: null };
  const call = web.envelope(req);
  await tick();
  assert.deepEqual(conn.published[0], { topic: "Web/Handler_Envelope/1", body: req, qos: 0 });
  conn.reply(0, { Result: [{ id: 7, note: "n" }], Error: "" });
  assert.deepEqual(await call, [{ id: 7, note: "n" }]);
  assert.equal(web.core.pending, 0);
});

test("a handler without a request sends {} and one without a result resolves with null", async () => {
  const conn = new FakeConnection();
  const web = new WebClient(conn);
  const call = web.bare();
  await tick();
  assert.deepEqual(conn.published[0].body, {});
  conn.reply(0, { Result: null, Error: "" });
  assert.equal(await call, null);
});

test("the server's error rejects the promise with its exact text", async () => {
  const conn = new FakeConnection();
  const web = new WebClient(conn);
  const call = web.count();
  await tick();
  conn.reply(0, { Result: null, Error: "You haven't been in the room yet" });
  await assert.rejects(call, (err) => {
    assert.ok(err instanceof mqant.MqantError);
    assert.ok(err instanceof Error);
    assert.equal(err.code, "remote");
    assert.equal(err.message, "You haven't been in the room yet");
    assert.equal(err.topic, "Web/Handler_Count/1");
    return true;
  });
});

test("module clients on one connection share msgids and one listener; replies match by topic", async () => {
  const conn = new FakeConnection();
  const a = new WebClient(conn);
  const b = new WebClient(conn, { qos: 1 });
  assert.equal(a.core, b.core);
  assert.equal(conn.listenerCount("message"), 1);
  const first = a.count();
  const second = b.httpGet();
  await tick();
  assert.deepEqual(conn.published.map((p) => [p.topic, p.qos]), [["Web/Handler_Count/1", 0], ["Web/Handler_HTTPGet/2", 1]]);
  conn.reply(1, { Result: "got", Error: "" });
  conn.reply(0, { Result: 42, Error: "" });
  assert.equal(await first, 42);
  assert.equal(await second, "got");
});

test("a call without a reply in time rejects with code timeout, and a late reply is ignored", async () => {
  const conn = new FakeConnection();
  const web = new WebClient(conn, { timeout: 5000 });
  const call = web.count({ timeout: 20 });
  await assert.rejects(call, (err) => err instanceof mqant.MqantError && err.code === "timeout" && err.message.includes("Web/Handler_Count/1"));
  assert.equal(web.core.pending, 0);
  conn.reply(0, { Result: 1, Error: "" });
});

test("a failed publish rejects with code publish", async () => {
  const conn = new FakeConnection();
  conn.failNext = new Error("client disconnecting");
  const web = new WebClient(conn);
  await assert.rejects(web.count(), (err) => err.code === "publish" && err.message.includes("client disconnecting"));
  assert.equal(web.core.pending, 0);
});

test("an aborted call rejects with code aborted", async () => {
  const conn = new FakeConnection();
  const web = new WebClient(conn);
  const ac = new AbortController();
  const call = web.count({ signal: ac.signal });
  ac.abort();
  await assert.rejects(call, (err) => err.code === "aborted");
  const before = new AbortController();
  before.abort();
  await assert.rejects(web.count({ signal: before.signal }), (err) => err.code === "aborted");
});

test("a reply that is not JSON rejects with code decode", async () => {
  const conn = new FakeConnection();
  const web = new WebClient(conn);
  const call = web.count();
  await tick();
  conn.reply(0, "not json");
  await assert.rejects(call, (err) => err.code === "decode");
});

test("pushes reach their typed listeners until stopped", async () => {
  const conn = new FakeConnection();
  const web = new WebClient(conn);
  const ticks = [];
  const news = [];
  const stop = web.onTick((t) => ticks.push(t.n));
  web.onNews((n) => news.push(n.text));
  conn.deliver("Web/Tick", { n: 1 });
  conn.deliver("Web/OnNews", { text: "hi", at: "2024-01-01T00:00:00Z" });
  stop();
  conn.deliver("Web/Tick", { n: 2 });
  conn.deliver("Other/Topic", { n: 3 });
  assert.deepEqual(ticks, [1]);
  assert.deepEqual(news, ["hi"]);
});

test("a push that is not JSON, or a listener that throws, goes to onError", async () => {
  const conn = new FakeConnection();
  const web = new WebClient(conn);
  const errors = [];
  web.core.onError = (e) => errors.push(e);
  web.onTick(() => {
    throw new Error("listener bug");
  });
  conn.deliver("Web/Tick", "{broken");
  conn.deliver("Web/Tick", { n: 1 });
  assert.equal(errors.length, 2);
  assert.equal(errors[0].code, "decode");
  assert.equal(errors[1].message, "listener bug");
});

test("close rejects waiting calls and stops listening", async () => {
  const conn = new FakeConnection();
  const web = new WebClient(conn);
  const call = web.count({ timeout: 0 });
  await tick();
  web.core.close("logged out");
  await assert.rejects(call, (err) => err.code === "closed" && err.message === "logged out");
  assert.equal(conn.listenerCount("message"), 0);
  // A new client over the same connection gets a fresh core.
  const again = new WebClient(conn);
  assert.notEqual(again.core, web.core);
  assert.equal(conn.listenerCount("message"), 1);
});

test("send publishes without a msgid", async () => {
  const conn = new FakeConnection();
  const core = mqant.MqantClient.of(conn);
  await core.send("Web/Handler_Bare", { a: 1 });
  assert.deepEqual(conn.published[0], { topic: "Web/Handler_Bare", body: { a: 1 }, qos: 0 });
  assert.equal(WebClient.module, "Web");
});

// LiveConnection plays an MQTT.js client's life: CONNACKs, drops and
// reconnect(), as the SDK's reconnection sees them.
class LiveConnection extends FakeConnection {
  constructor() {
    super();
    this.connected = false;
    this.disconnecting = false;
    this.reconnects = 0;
  }
  connack(sessionPresent) {
    this.connected = true;
    this.emit("connect", { cmd: "connack", sessionPresent, returnCode: 0 });
  }
  drop() {
    this.connected = false;
    this.emit("close");
  }
  refuse(code) {
    const err = new Error("Connection refused: Bad username or password");
    err.code = code;
    this.emit("error", err);
    this.emit("close");
  }
  reconnect() {
    this.reconnects++;
  }
  push(topic, value, messageId, dup) {
    this.emit("message", topic, Buffer.from(JSON.stringify(value)), { qos: 1, dup, messageId });
  }
}

const until = async (cond) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), "condition not met in time");
};

test("a remote error carries the server's code as serverCode; code stays remote", async () => {
  const conn = new FakeConnection();
  const web = new WebClient(conn);
  const call = web.count();
  const old = web.count();
  await tick();
  conn.reply(0, { Result: null, Error: "room lobby is full", Code: "room_full" });
  conn.reply(1, { Result: null, Error: "old server" });
  await assert.rejects(call, (err) => err.code === "remote" && err.serverCode === "room_full" && err.message === "room lobby is full");
  await assert.rejects(old, (err) => err.code === "remote" && err.serverCode === "");
});

test("state events: connected, a drop fails calls in flight at once, reconnecting with backoff, resumed", async () => {
  const conn = new LiveConnection();
  const core = mqant.MqantClient.of(conn, { reconnect: { initialDelay: 20, maxDelay: 50 } });
  const web = new WebClient(core);
  const states = [];
  core.onState((s) => states.push(s));
  conn.connack(false);
  assert.deepEqual(states, [{ type: "connected", resumed: false }]);
  const call = web.count({ timeout: 0 });
  await tick();
  conn.drop();
  await assert.rejects(call, (err) => err.code === "disconnected" && err.message.includes("Web/Handler_Count/1"));
  assert.equal(core.pending, 0);
  // Down: a call fails at once, nothing is published.
  await assert.rejects(web.count(), (err) => err.code === "disconnected");
  assert.equal(conn.published.length, 1);
  assert.equal(core.state, "reconnecting");
  const r1 = states[2];
  assert.equal(states[1].type, "disconnected");
  assert.equal(r1.type, "reconnecting");
  assert.equal(r1.attempt, 1);
  assert.ok(r1.delay >= 10 && r1.delay <= 20, "first delay " + r1.delay + " in [10, 20]");
  await until(() => conn.reconnects === 1);
  assert.deepEqual(states[3], { type: "connecting", attempt: 1 });
  conn.drop(); // the attempt fails
  const r2 = states[4];
  assert.equal(r2.type, "reconnecting");
  assert.equal(r2.attempt, 2);
  assert.ok(r2.delay >= 20 && r2.delay <= 40, "second delay " + r2.delay + " in [20, 40]");
  await until(() => conn.reconnects === 2);
  conn.drop();
  assert.ok(states[6].delay >= 25 && states[6].delay <= 50, "capped delay " + states[6].delay);
  await until(() => conn.reconnects === 3);
  conn.connack(true);
  assert.deepEqual(states.at(-1), { type: "connected", resumed: true });
  const again = web.count();
  await tick();
  conn.reply(conn.published.length - 1, { Result: 5, Error: "" });
  assert.equal(await again, 5);
  core.close();
  assert.deepEqual(states.at(-1), { type: "closed", reason: "client closed" });
  assert.equal(conn.listenerCount("close"), 0);
});

test("a refused CONNACK (bad credentials) closes: no reconnecting", async () => {
  const conn = new LiveConnection();
  const core = mqant.MqantClient.of(conn, { reconnect: { initialDelay: 1 } });
  const states = [];
  core.onState((s) => states.push(s));
  conn.refuse(4);
  assert.equal(states.length, 1);
  assert.equal(states[0].type, "closed");
  assert.equal(states[0].error.code, 4);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(conn.reconnects, 0);
});

test("without reconnect, a drop still fails calls at once and is reported", async () => {
  const conn = new LiveConnection();
  const web = new WebClient(conn);
  const states = [];
  web.core.onState((s) => states.push(s.type));
  conn.connack(false);
  const call = web.count();
  await tick();
  conn.drop();
  await assert.rejects(call, (err) => err.code === "disconnected");
  assert.deepEqual(states, ["connected", "disconnected"]);
  conn.disconnecting = true; // the app's end()
  conn.emit("close");
  assert.deepEqual(states, ["connected", "disconnected", "closed"]);
});

test("a redelivered push (DUP, same packet id and body) reaches listeners once; $mqant/missed is a state event", async () => {
  const conn = new LiveConnection();
  const core = mqant.MqantClient.of(conn, { reconnect: true });
  const web = new WebClient(core);
  const ticks = [];
  const missed = [];
  web.onTick((t) => ticks.push(t.n));
  core.onState((s) => s.type === "missed" && missed.push(s.dropped));
  conn.connack(false);
  conn.push("Web/Tick", { n: 1 }, 1, false);
  conn.push("Web/Tick", { n: 2 }, 2, false);
  conn.drop();
  conn.connack(true);
  conn.push("$mqant/missed", { dropped: 3 }, 3, false);
  conn.push("Web/Tick", { n: 2 }, 2, true); // its PUBACK was lost: already delivered
  conn.push("Web/Tick", { n: 4 }, 4, true); // sent before the drop, never arrived
  conn.push("Web/Tick", { n: 5 }, 1, false); // id 1 reused for a new push
  conn.push("Web/Tick", { n: 5 }, 1, true); // and redelivered
  conn.push("Web/Tick", { n: 6 }, 5, true); // a DUP never seen
  assert.deepEqual(ticks, [1, 2, 4, 5, 6]);
  assert.deepEqual(missed, [3]);
  // A new session forgets what the old one delivered.
  conn.drop();
  conn.connack(false);
  conn.push("Web/Tick", { n: 6 }, 5, true);
  assert.deepEqual(ticks, [1, 2, 4, 5, 6, 6]);
  core.close();
});

test("sessionIdentity keeps the secret per install and the client id per tab", () => {
  const mem = () => {
    const m = new Map();
    return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v) };
  };
  const install = mem();
  const tab1 = mem();
  const a = mqant.sessionIdentity({ install, tab: tab1 });
  const b = mqant.sessionIdentity({ install, tab: tab1 });
  const c = mqant.sessionIdentity({ install, tab: mem() });
  assert.deepEqual(a, b);
  assert.notEqual(c.clientId, a.clientId);
  assert.equal(c.username, a.username);
  assert.equal(c.password, a.password);
  assert.match(a.password, /^[0-9a-f]{32}$/);
  const o = mqant.persistentOptions(a);
  assert.deepEqual(o, { ...a, protocolVersion: 4, clean: false, reconnectPeriod: 0, queueQoSZero: false });
  assert.equal(mqant.sessionIdentity({ install, tab: tab1, username: "alice" }).username, "alice");
});
