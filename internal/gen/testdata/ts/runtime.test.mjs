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
