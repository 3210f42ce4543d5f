#!/usr/bin/env python3
"""Command-line client for the mqant chat demo, over MQTT on TCP.

Interactive, like mqant's original demo client: it logs in, then each line
you type is said in the room; the line "join" joins the room, "quit" (or end
of input) leaves.

    /usr/bin/python3 mqtt_chat_client.py --user alice --room lobby

Scripted: with --say or --expect it logs in, joins the room, says each --say
message, waits until it has received --expect Chat/OnSay pushes (your own
messages come back as pushes too) and exits 0; it exits non-zero if the
server answers with an error, the connection fails or --timeout passes.

    /usr/bin/python3 mqtt_chat_client.py --user py --room lobby --say hi --expect 2

With --persistent the client keeps its session across a lost connection
(MQTT clean session 0, client id --client-id, the user name and password
sent in CONNECT so only they can resume it): it reconnects by itself with
backoff, stays logged in and in the room, and gets the pushes sent while it
was away; a request in flight when the connection drops fails at once.

    /usr/bin/python3 mqtt_chat_client.py --user alice --persistent --client-id alice-laptop

Every reply and push is printed as one line:

    reply Login/Handler_Login/1: login success alice
    push Chat/OnSay: bob: hello

Needs paho-mqtt 1.6 (Debian: apt-get install python3-paho-mqtt, then run
with /usr/bin/python3). Exit codes: 0 done, 1 server error or timeout,
2 usage, 3 connection failure.
"""

import argparse
import collections
import json
import os
import sys
import threading
import time

try:
    import paho.mqtt.client as mqtt
except ImportError:
    sys.stderr.write("error: paho-mqtt is missing: install python3-paho-mqtt "
                     "(apt-get install -y python3-paho-mqtt) and run with /usr/bin/python3\n")
    sys.exit(3)

EXIT_SERVER_ERROR = 1
EXIT_CONNECTION = 3

PUSH_ON_SAY = "Chat/OnSay"
PUSH_ON_JOIN = "Chat/OnJoin"
PUSH_ON_LEAVE = "Chat/OnLeave"
MISSED_TOPIC = "$mqant/missed"   # first push after a resume when pushes were dropped
LOST = object()                  # a reply that will never come: the connection dropped


class ChatError(Exception):
    """A failure the user should read: server error, timeout, lost connection."""

    def __init__(self, message, code=EXIT_SERVER_ERROR):
        super().__init__(message)
        self.code = code


class ChatClient:
    """One MQTT connection to the gate, with request/reply on top."""

    def __init__(self, host, port, qos, client_id, persistent=False, user=None, password=None):
        self.host, self.port, self.qos = host, port, qos
        self.persistent = persistent
        self.resumed = 0            # reconnects that found the session kept
        self._seen = collections.OrderedDict()  # packet id -> payload of recent QoS 1 pushes
        self._lock = threading.Lock()
        self._print_lock = threading.Lock()
        self._msgid = 0
        self._pending = {}          # topic -> [threading.Event, reply or None]
        self._connected = threading.Event()
        self._connect_rc = None
        self._lost = None           # why the connection ended, once it has
        self._changed = threading.Condition(self._lock)
        self.on_say_count = 0
        if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x
            self._mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id,
                                     clean_session=not persistent, protocol=mqtt.MQTTv311)
        else:
            self._mqtt = mqtt.Client(client_id=client_id, clean_session=not persistent,
                                     protocol=mqtt.MQTTv311)
        if persistent:
            # The gate lets only the credentials that created a session
            # resume it; paho reconnects on its own, 1 s to 8 s apart.
            self._mqtt.username_pw_set(user, password)
            self._mqtt.reconnect_delay_set(1, 8)
        self._mqtt.on_connect = self._on_connect
        self._mqtt.on_disconnect = self._on_disconnect
        self._mqtt.on_message = self._on_message

    # ---- output ----

    def say_line(self, line, err=False):
        with self._print_lock:
            stream = sys.stderr if err else sys.stdout
            stream.write(line + "\n")
            stream.flush()

    # ---- connection ----

    def connect(self, timeout):
        try:
            self._mqtt.connect(self.host, self.port, keepalive=30)
        except (OSError, ValueError) as e:
            raise ChatError("cannot connect to %s:%d: %s" % (self.host, self.port, e),
                            EXIT_CONNECTION)
        self._mqtt.loop_start()
        if not self._connected.wait(timeout):
            self.close()
            raise ChatError("cannot connect to %s:%d: no CONNACK within %.0f s"
                            % (self.host, self.port, timeout), EXIT_CONNECTION)
        if self._connect_rc is None:
            self.close()
            raise ChatError("cannot connect to %s:%d: closed before CONNACK"
                            % (self.host, self.port), EXIT_CONNECTION)
        if self._connect_rc != 0:
            self.close()
            raise ChatError("cannot connect to %s:%d: %s" % (
                self.host, self.port, mqtt.connack_string(self._connect_rc)), EXIT_CONNECTION)

    def close(self):
        with self._lock:
            if self._lost is None:
                self._lost = "closed"
        self._mqtt.disconnect()
        self._mqtt.loop_stop()

    def _on_connect(self, client, userdata, flags, rc):
        first = not self._connected.is_set()
        self._connect_rc = rc
        self._connected.set()
        if first or not self.persistent:
            return
        if rc != 0:
            self.say_line("reconnect refused: %s" % mqtt.connack_string(rc), err=True)
        elif flags.get("session present"):
            with self._lock:
                self.resumed += 1
            self.say_line("reconnected: session resumed")
        else:
            self.say_line("reconnected: new session (the server no longer had ours); log in again",
                          err=True)

    def _on_disconnect(self, client, userdata, rc):
        if self.persistent and rc != 0:
            with self._lock:
                closing = self._lost is not None
                if not closing:
                    # Replies to requests in flight are gone with the connection.
                    for waiter in self._pending.values():
                        waiter[1] = LOST
                        waiter[0].set()
            if not closing:
                self.say_line("connection lost (%s); reconnecting" % mqtt.error_string(rc), err=True)
                return  # paho's network thread reconnects
        with self._lock:
            if self._lost is None:
                self._lost = "connection to %s:%d lost (%s)" % (
                    self.host, self.port, mqtt.error_string(rc))
            self._changed.notify_all()
        # paho would reconnect; a new connection is a new session, so stop.
        client.loop_stop()
        self._connected.set()

    # ---- messages ----

    def _duplicate(self, msg):
        """A QoS 1 push sent again with DUP after a reconnect, whose first copy
        was shown but whose PUBACK was lost with the connection."""
        if msg.qos != 1:
            return False
        with self._lock:
            if msg.dup and self._seen.get(msg.mid) == msg.payload:
                return True
            self._seen[msg.mid] = msg.payload
            self._seen.move_to_end(msg.mid)
            while len(self._seen) > 1000:
                self._seen.popitem(last=False)
        return False

    def _on_message(self, client, userdata, msg):
        if self._duplicate(msg):
            return
        try:
            body = json.loads(msg.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self.say_line("push %s: (not JSON) %r" % (msg.topic, msg.payload))
            return
        with self._lock:
            waiter = self._pending.get(msg.topic)
            if waiter is not None:
                waiter[1] = body
                waiter[0].set()
                return
        self._print_push(msg.topic, body)

    def _print_push(self, topic, body):
        if not isinstance(body, dict):
            self.say_line("push %s: %s" % (topic, json.dumps(body)))
            return
        user, room = body.get("userName", "?"), body.get("roomName", "?")
        if topic == PUSH_ON_SAY:
            self.say_line("push %s: %s: %s" % (topic, user, body.get("say", "")))
            with self._lock:
                self.on_say_count += 1
                self._changed.notify_all()
        elif topic == PUSH_ON_JOIN:
            self.say_line("push %s: %s joined %s" % (topic, user, room))
        elif topic == PUSH_ON_LEAVE:
            self.say_line("push %s: %s left %s" % (topic, user, room))
        elif topic == MISSED_TOPIC:
            self.say_line("push %s: missed %s pushes while away" % (topic, body.get("dropped", "?")))
        else:
            self.say_line("push %s: %s" % (topic, json.dumps(body, ensure_ascii=False)))

    def request(self, route, body, timeout):
        """Publish body on route/<msgid> and wait for the reply on the same topic.

        Prints the reply and returns its Result; raises ChatError on an Error
        reply, a lost connection or no reply within timeout seconds.
        """
        with self._lock:
            if self._lost is not None:
                raise ChatError(self._lost, EXIT_CONNECTION)
            self._msgid += 1
            topic = "%s/%d" % (route, self._msgid)
            waiter = [threading.Event(), None]
            self._pending[topic] = waiter
        try:
            info = self._mqtt.publish(topic, json.dumps(body), qos=self.qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise ChatError("publish %s failed: %s" % (topic, mqtt.error_string(info.rc)),
                                EXIT_CONNECTION)
            deadline = time.monotonic() + timeout
            while not waiter[0].wait(0.1):
                with self._lock:
                    if self._lost is not None:
                        raise ChatError("%s (no reply to %s)" % (self._lost, topic),
                                        EXIT_CONNECTION)
                if time.monotonic() > deadline:
                    raise ChatError("no reply to %s within %.0f s" % (topic, timeout))
        finally:
            with self._lock:
                self._pending.pop(topic, None)
        reply = waiter[1]
        if reply is LOST:
            raise ChatError("connection lost with %s in flight (reconnecting)" % topic)
        if not isinstance(reply, dict):
            raise ChatError("reply %s: not a reply object: %s" % (topic, json.dumps(reply)))
        if reply.get("Error"):
            raise ChatError("reply %s: server error: %s" % (topic, reply["Error"]))
        result = reply.get("Result")
        self.say_line("reply %s: %s" % (topic, result if isinstance(result, str)
                                         else json.dumps(result, ensure_ascii=False)))
        return result

    def wait_on_say(self, n, deadline):
        """Wait until n Chat/OnSay pushes have arrived or deadline (monotonic) passes."""
        with self._lock:
            while self.on_say_count < n:
                if self._lost is not None:
                    raise ChatError("%s after %d of %d Chat/OnSay pushes"
                                    % (self._lost, self.on_say_count, n), EXIT_CONNECTION)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChatError("timed out with %d of %d Chat/OnSay pushes"
                                    % (self.on_say_count, n))
                self._changed.wait(min(left, 0.5))

    # ---- the chat demo's requests ----

    def login(self, user, password, timeout):
        return self.request("Login/Handler_Login", {"userName": user, "passWord": password},
                            timeout)

    def join(self, room, timeout):
        return self.request("Chat/Handler_JoinChat", {"roomName": room}, timeout)

    def say(self, room, text, timeout):
        return self.request("Chat/Handler_Say", {"roomName": room, "say": text}, timeout)


def run_script(c, args):
    deadline = time.monotonic() + args.timeout

    def left():
        t = deadline - time.monotonic()
        if t <= 0:
            raise ChatError("timed out after %.0f s" % args.timeout)
        return t

    c.connect(left())
    c.login(args.user, args.password, left())
    c.join(args.room, left())
    for text in args.say or []:
        c.say(args.room, text, left())
    if args.expect:
        c.wait_on_say(args.expect, deadline)


def run_interactive(c, args):
    c.connect(min(args.timeout, 10))
    c.login(args.user, args.password, args.timeout)
    c.say_line("logged in as %s; type \"join\" to join room %s, any other text to say it "
               "there, \"quit\" to leave" % (args.user, args.room))
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if line in ("quit", "exit"):
            break
        try:
            if line == "join":
                c.join(args.room, args.timeout)
            else:
                c.say(args.room, line, args.timeout)
        except ChatError as e:
            if e.code == EXIT_CONNECTION:
                raise
            c.say_line("error: %s" % e, err=True)


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Chat client for the mqant chat demo (MQTT over TCP).",
        epilog="Without --say or --expect the client is interactive: \"join\" joins the "
               "room, other lines are said there.")
    p.add_argument("--host", default="127.0.0.1", help="gate host (default %(default)s)")
    p.add_argument("--port", type=int, default=3563, help="gate MQTT TCP port (default %(default)s)")
    p.add_argument("--user", default="python", help="user name (default %(default)s)")
    p.add_argument("--password", default="123456", help="password (default %(default)s)")
    p.add_argument("--room", default="mqant", help="chat room (default %(default)s)")
    p.add_argument("--say", action="append", metavar="TEXT",
                   help="say TEXT after joining (repeatable; makes the run scripted)")
    p.add_argument("--expect", type=int, default=0, metavar="N",
                   help="exit 0 once N Chat/OnSay pushes arrived, your own included "
                        "(makes the run scripted)")
    p.add_argument("--timeout", type=float, default=30, metavar="SECONDS",
                   help="scripted: give up after this long; interactive: wait this long for "
                        "each reply (default %(default)s)")
    p.add_argument("--persistent", action="store_true",
                   help="keep the session across lost connections (clean session 0) and "
                        "reconnect by itself; needs --client-id")
    p.add_argument("--client-id", metavar="ID",
                   help="MQTT client id (default: one per run); a persistent session is "
                        "resumed by reconnecting with the same id, user and password")
    p.add_argument("--qos", type=int, choices=(0, 1, 2), default=2,
                   help="QoS of requests (default %(default)s, as the original client)")
    args = p.parse_args(argv)
    if args.expect < 0:
        p.error("--expect must be >= 0")
    if args.timeout <= 0:
        p.error("--timeout must be > 0")
    if args.persistent and not args.client_id:
        p.error("--persistent needs --client-id: a session is found again by its client id")

    c = ChatClient(args.host, args.port, args.qos,
                   args.client_id or "mqant-py-%s-%d" % (args.user, os.getpid()),
                   persistent=args.persistent, user=args.user, password=args.password)
    try:
        if args.say or args.expect:
            run_script(c, args)
        else:
            run_interactive(c, args)
    except ChatError as e:
        c.say_line("error: %s" % e, err=True)
        return e.code
    except KeyboardInterrupt:
        return 130
    finally:
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
