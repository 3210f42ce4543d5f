// The mqant chat demo's browser client: MQTT over WebSocket with MQTT.js,
// and the client SDK mqantgen generates from the server's handlers
// (generated/web, served under ./generated/): typed calls that resolve with
// the reply or reject with the server's error text, and typed pushes. No
// topic strings, msgids or JSON by hand. See /work/shared/PROTOCOL.md for
// what travels underneath.
import { LoginClient } from './generated/js/login.js';
import { ChatClient } from './generated/js/chat.js';

const REQUEST_TIMEOUT_MS = 10000;

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
const rooms = new Set(); // rooms joined on this connection

// ---- page state ------------------------------------------------------

function setStatus(state, text) {
  ui.status.className = 'status state-' + state;
  ui.status.textContent = text;
  const connected = state === 'connected' || state === 'online';
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

function disconnect() {
  if (!client) return;
  const c = client;
  client = null;
  clientURL = '';
  dropClients('Disconnected');
  c.removeAllListeners();
  c.on('error', () => {}); // late socket errors of a client we dropped
  c.end(true);
  me = '';
  rooms.clear();
  updateJoined();
  setStatus('disconnected', 'Disconnected');
}

// connect opens a new connection to url and resolves once it is up.
function connect(url) {
  disconnect();
  return new Promise((resolve, reject) => {
    let c;
    try {
      c = mqtt.connect(url, {
        protocolVersion: 4,
        clientId: 'mqant-web-' + Math.random().toString(16).slice(2, 10),
        keepalive: 30,
        clean: true,
        reconnectPeriod: 0, // a new connection is a new session: log in again by hand
        connectTimeout: 10000,
      });
    } catch (e) {
      reject(new Error('Cannot connect to ' + url + ': ' + e.message));
      return;
    }
    client = c;
    clientURL = url;
    // The generated clients: one per module, sharing the connection.
    const options = { timeout: REQUEST_TIMEOUT_MS, qos: 1 };
    loginClient = new LoginClient(c, options);
    chatClient = new ChatClient(c, options);
    chatClient.onSay((m) => addMessage('say', m.userName, m.roomName, m.say));
    chatClient.onJoin((m) => addMessage('join', m.userName, m.roomName, 'joined'));
    chatClient.onLeave((m) => addMessage('leave', m.userName, m.roomName, 'left'));
    chatClient.core.onError = (e) => console.log('unreadable push', e);
    let up = false;
    setStatus('connecting', 'Connecting to ' + url + '…');
    c.on('connect', () => {
      up = true;
      setStatus('connected', 'Connected, not logged in');
      // Not needed to receive replies and pushes (the gate sends them
      // anyway), but what a standard MQTT client would do.
      c.subscribe(['Chat/#', 'Login/#'], { qos: 0 });
      resolve();
    });
    c.on('error', (err) => {
      if (!up) {
        reject(new Error('Cannot connect to ' + url + ': ' + (err && err.message || err)));
      } else {
        showError('Connection error: ' + (err && err.message || err));
      }
    });
    c.on('close', () => {
      if (client !== c) return;
      const wasUp = up;
      client = null;
      clientURL = '';
      dropClients('Connection closed');
      me = '';
      rooms.clear();
      updateJoined();
      setStatus('disconnected', 'Disconnected');
      if (wasUp) {
        showError('Connection to ' + url + ' closed');
        addMessage('info', '', '', 'Disconnected from the server.');
      } else {
        reject(new Error('Cannot connect to ' + url + ': connection refused or closed'));
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
  disconnect();
  if (wasConnected) addMessage('info', '', '', 'Disconnected.');
});
ui.errorClose.addEventListener('click', clearError);
ui.server.addEventListener('input', () => setStatus(
  client && client.connected ? (me ? 'online' : 'connected') : 'disconnected',
  ui.status.textContent));

if (typeof mqtt === 'undefined') {
  showError('mqtt.min.js did not load: the page cannot connect.');
  ui.login.disabled = true;
}
setStatus('disconnected', 'Disconnected');
