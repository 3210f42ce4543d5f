// The mqant chat demo's browser client: MQTT over WebSocket with MQTT.js,
// and the client SDK mqantgen generates from the server's handlers
// (generated/web, served under ./generated/): typed calls that resolve with
// the reply or reject with the server's error text, and typed pushes. No
// topic strings, msgids or JSON by hand. See /work/shared/PROTOCOL.md for
// what travels underneath.
//
// The connection is a persistent session (clean session 0, a per-tab client
// id and a per-install secret from the SDK's sessionIdentity): when the
// network drops, the SDK reconnects by itself, the gate resumes the session
// (the player stays in its rooms) and delivers the pushes sent meanwhile.
import { LoginClient } from './generated/js/login.js';
import { ChatClient } from './generated/js/chat.js';
import { MqantClient, persistentOptions, sessionIdentity } from './generated/js/mqant.js';

const REQUEST_TIMEOUT_MS = 10000;
const RECONNECT = { initialDelay: 500, maxDelay: 10000 };
const identity = sessionIdentity({ name: 'mqant-web' });

const $ = (id) => document.getElementById(id);
const ui = {
  server: $('server'), user: $('user'), password: $('password'),
  login: $('login'), logout: $('logout'), loginForm: $('login-form'),
  room: $('room'), join: $('join'), joinForm: $('join-form'), joined: $('joined'),
  sayText: $('say-text'), say: $('say'), sayForm: $('say-form'),
  messages: $('messages'), status: $('status'),
  error: $('error'), errorText: $('error-text'), errorClose: $('error-close'),
};

let client = null;      // the MQTT.js client, null when disconnected
let clientURL = '';     // the address client was made for
let loginClient = null; // generated Login client over client
let chatClient = null;  // generated Chat client over client (shares its msgids)
let me = '';            // the user name the server accepted
let myPassword = '';    // its password, to log in again when a session was not resumed
const rooms = new Set(); // rooms joined in this session

// ---- page state ------------------------------------------------------

function setStatus(state, text) {
  ui.status.className = 'status state-' + state;
  ui.status.textContent = text;
  const connected = (state === 'connected' || state === 'online') && !!client && client.connected;
  ui.logout.disabled = !client;
  ui.join.disabled = !connected;
  ui.say.disabled = !connected;
  ui.sayText.disabled = !connected;
  ui.login.textContent = connected && clientURL === ui.server.value.trim()
    ? 'Log in again' : 'Connect & log in';
}

function showError(text) {
  ui.errorText.textContent = text;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.errorText.textContent = '';
}

function updateJoined() {
  ui.joined.textContent = rooms.size ? Array.from(rooms).sort().join(', ') : 'none yet';
}

function timeNow() {
  return new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function span(cls, text) {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

// addMessage appends one line to the list. kind is say, join, leave or info.
function addMessage(kind, user, room, text) {
  const li = document.createElement('li');
  li.className = 'msg msg-' + kind + (user && user === me ? ' msg-self' : '');
  li.dataset.kind = kind;
  if (user) li.dataset.user = user;
  if (room) li.dataset.room = room;
  const meta = document.createElement('div');
  meta.className = 'meta';
  if (kind === 'say') meta.append(span('who', user));
  if (room) meta.append(span('room', '#' + room));
  meta.append(span('time', timeNow()));
  li.append(meta);
  if (kind === 'say') {
    li.append(span('text', text));
  } else {
    li.append(span('text', user ? user + ' ' + text : text));
  }
  const atBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
  ui.messages.append(li);
  if (atBottom) ui.messages.scrollTop = ui.messages.scrollHeight;
}

// ---- MQTT and the generated clients ----------------------------------

// clients returns the generated module clients, or fails when there is
// no connection to call through.
function clients() {
  if (!client || !client.connected) {
    throw new Error('Not connected: press "Connect & log in" first');
  }
  return { login: loginClient, chat: chatClient };
}

// dropClients rejects the calls still waiting for a reply and forgets
// the module clients of a connection that is gone.
function dropClients(reason) {
  if (chatClient) chatClient.core.close(reason); // loginClient shares it
  loginClient = null;
  chatClient = null;
}

// disconnect drops the connection. With endSession the session ends too
// (others see the player leave): a clean-session CONNECT of the same client
// id discards it. Without, it stays on the gate until it expires.
function disconnect(endSession = false) {
  if (!client) return;
  const c = client;
  const url = clientURL;
  client = null;
  clientURL = '';
  dropClients('Disconnected');
  c.removeAllListeners();
  c.on('error', () => {}); // late socket errors of a client we dropped
  c.end(true);
  if (endSession) {
    const e = mqtt.connect(url, { ...persistentOptions(identity), clean: true, connectTimeout: 5000 });
    const done = () => { e.removeAllListeners(); e.on('error', () => {}); e.end(true); };
    e.on('connect', done);
    e.on('error', done);
  }
  me = '';
  myPassword = '';
  rooms.clear();
  updateJoined();
  setStatus('disconnected', 'Disconnected');
}

// relogin runs when the gate did not resume the session (it expired, or the
// gate restarted): log in and join the rooms again.
async function relogin() {
  const user = me;
  const joined = Array.from(rooms);
  addMessage('info', '', '', 'The session was not resumed: logging in again.');
  try {
    await clients().login.login({ userName: user, passWord: myPassword });
    for (const roomName of joined) await clients().chat.joinChat({ roomName });
    setStatus('online', 'Logged in as ' + user);
  } catch (e) {
    showError('Logging in again failed: ' + e.message);
  }
}

// connect opens a new connection to url and resolves once it is up. The
// SDK then keeps it up: it reconnects a lost connection with backoff and
// reports each step to onState.
function connect(url) {
  disconnect();
  return new Promise((resolve, reject) => {
    let c;
    try {
      c = mqtt.connect(url, {
        ...persistentOptions(identity), // clean: false, no reconnecting by MQTT.js itself
        keepalive: 30,
        connectTimeout: 10000,
      });
    } catch (e) {
      reject(new Error('Cannot connect to ' + url + ': ' + e.message));
      return;
    }
    client = c;
    clientURL = url;
    // One core per connection, made first so that it reconnects; the
    // generated clients (one per module) share it.
    const core = MqantClient.of(c, { reconnect: RECONNECT });
    const options = { timeout: REQUEST_TIMEOUT_MS };
    loginClient = new LoginClient(core, options);
    chatClient = new ChatClient(core, options);
    chatClient.onSay((m) => addMessage('say', m.userName, m.roomName, m.say));
    chatClient.onJoin((m) => addMessage('join', m.userName, m.roomName, 'joined'));
    chatClient.onLeave((m) => addMessage('leave', m.userName, m.roomName, 'left'));
    core.onError = (e) => console.log('unreadable push', e);
    let up = false;
    let lastError = '';
    setStatus('connecting', 'Connecting to ' + url + '…');
    c.on('error', (err) => { lastError = (err && err.message) || String(err); });
    core.onState((s) => {
      if (client !== c) return;
      switch (s.type) {
        case 'connected':
          if (!up) {
            up = true;
            setStatus('connected', 'Connected, not logged in');
            resolve();
          } else if (me && !s.resumed) {
            setStatus('connected', 'Reconnected, logging in again…');
            relogin();
          } else {
            setStatus(me ? 'online' : 'connected', me ? 'Logged in as ' + me : 'Connected, not logged in');
            addMessage('info', '', '', 'Reconnected.');
          }
          break;
        case 'disconnected':
          if (up) addMessage('info', '', '', 'Connection lost.');
          break;
        case 'reconnecting':
          if (!up) {
            // The first connection failed: report it rather than retry.
            disconnect();
            reject(new Error('Cannot connect to ' + url + ': ' + (lastError || 'connection refused or closed')));
            return;
          }
          setStatus('reconnecting', 'Reconnecting… (attempt ' + s.attempt + ')');
          break;
        case 'missed':
          addMessage('info', '', '', s.dropped + (s.dropped === 1 ? ' message' : ' messages') + ' missed');
          break;
        case 'closed':
          disconnect();
          if (up) {
            showError('Connection to ' + url + ' closed: ' + s.reason);
            addMessage('info', '', '', 'Disconnected from the server.');
          } else {
            reject(new Error('Cannot connect to ' + url + ': ' + (s.error ? s.error.message : s.reason)));
          }
          break;
      }
    });
  });
}

// ---- user actions ----------------------------------------------------

async function login() {
  clearError();
  const url = ui.server.value.trim();
  const userName = ui.user.value.trim();
  const passWord = ui.password.value;
  ui.login.disabled = true;
  try {
    if (!client || !client.connected || clientURL !== url) {
      await connect(url);
    }
    const result = await clients().login.login({ userName, passWord });
    me = userName;
    myPassword = passWord;
    setStatus('online', 'Logged in as ' + userName);
    addMessage('info', '', '', String(result));
    ui.room.focus();
  } catch (e) {
    showError(e.message);
  } finally {
    ui.login.disabled = false;
  }
}

async function join() {
  clearError();
  const roomName = ui.room.value.trim();
  try {
    await clients().chat.joinChat({ roomName });
    rooms.add(roomName);
    updateJoined();
    ui.sayText.focus();
  } catch (e) {
    showError(e.message);
  }
}

async function say() {
  clearError();
  const roomName = ui.room.value.trim();
  const text = ui.sayText.value;
  try {
    await clients().chat.say({ roomName, say: text });
    if (ui.sayText.value === text) ui.sayText.value = '';
  } catch (e) {
    showError(e.message);
  }
}

// ---- wiring ------------------------------------------------------------

ui.server.value = 'ws://' + (location.hostname || 'localhost') + ':3653/mqtt';
ui.user.value = 'guest' + Math.floor(100 + Math.random() * 900);
ui.password.value = '123456';
ui.room.value = 'mqant';

ui.loginForm.addEventListener('submit', (ev) => { ev.preventDefault(); login(); });
ui.joinForm.addEventListener('submit', (ev) => { ev.preventDefault(); join(); });
ui.sayForm.addEventListener('submit', (ev) => { ev.preventDefault(); say(); });
ui.logout.addEventListener('click', () => {
  clearError();
  const wasConnected = !!client;
  disconnect(true);
  if (wasConnected) addMessage('info', '', '', 'Disconnected.');
});
ui.errorClose.addEventListener('click', clearError);
ui.server.addEventListener('input', () => setStatus(
  client ? (client.connected ? (me ? 'online' : 'connected') : 'reconnecting') : 'disconnected',
  ui.status.textContent));

if (typeof mqtt === 'undefined') {
  showError('mqtt.min.js did not load: the page cannot connect.');
  ui.login.disabled = true;
}
setStatus('disconnected', 'Disconnected');
