// The mqant client runtime that generated module clients share: requests
// over MQTT with msgids, replies, per-call timeouts and pushes, all settled
// inside Tick so a game sees them on its own thread, with no timers (Unity
// WebGL has none that fire).

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Mqant
{
    /// <summary>
    /// MqantErrorCode says why a call failed: Remote, the server answered
    /// with an error (the handler's or the gate's); Timeout, no reply in
    /// time; Publish, the request could not be encoded or sent; Aborted, the
    /// call's cancellation token fired; Closed, the connection or client
    /// closed; Decode, the reply was not the JSON expected; Connect, the
    /// connection could not be made.
    /// </summary>
    public enum MqantErrorCode
    {
        /// <summary>The server answered with an error; Message is its text.</summary>
        Remote,
        /// <summary>No reply within the call's timeout.</summary>
        Timeout,
        /// <summary>The request could not be encoded or sent.</summary>
        Publish,
        /// <summary>The call's cancellation token fired (the server may still run the handler).</summary>
        Aborted,
        /// <summary>The connection or the client closed before the reply.</summary>
        Closed,
        /// <summary>The reply or push was not the JSON expected.</summary>
        Decode,
        /// <summary>The gate refused the connection, or it could not be made.</summary>
        Connect,
    }

    /// <summary>MqantException is how calls fail. For code Remote, Message is exactly the server's error text.</summary>
    public sealed class MqantException : Exception
    {
        /// <summary>Why the call failed.</summary>
        public readonly MqantErrorCode Code;

        /// <summary>The request topic with its msgid, or the push topic.</summary>
        public readonly string Topic;

        /// <summary>
        /// For code Remote, the server's stable error code ("room_full",
        /// "not_found", "error" for a handler's error without one; README
        /// "RPC"); "" otherwise and from servers that send none.
        /// </summary>
        public readonly string ServerCode;

        /// <summary>Creates an exception of code with message on topic.</summary>
        public MqantException(MqantErrorCode code, string message, string topic, Exception inner = null)
            : this(code, message, topic, "", inner)
        {
        }

        /// <summary>Creates an exception of code with message on topic and the server's code.</summary>
        public MqantException(MqantErrorCode code, string message, string topic, string serverCode, Exception inner = null)
            : base(message, inner)
        {
            Code = code;
            Topic = topic;
            ServerCode = serverCode ?? "";
        }
    }

    /// <summary>CallOptions tune one call, or every call of a module client (its Defaults).</summary>
    public sealed class CallOptions
    {
        /// <summary>Milliseconds to wait for the reply; 0 waits without limit. Default 10000, the server's own RPC timeout.</summary>
        public int TimeoutMs = MqantClient.DefaultTimeoutMs;

        /// <summary>QoS of the request's PUBLISH, 0 or 1. Default 0: the gate answers every request it receives.</summary>
        public int Qos;

        /// <summary>Cancelling it fails the call with code Aborted at the next Tick.</summary>
        public CancellationToken Cancellation;
    }

    /// <summary>
    /// MqantClient carries requests and pushes over one MqttConnection.
    /// Module clients (ChatClient, ...) made over it share its msgids and
    /// listeners. Nothing happens between calls to Tick: call it every frame
    /// (Unity Update, Godot _Process); replies complete their tasks and pushes
    /// raise their events inside it, on the calling thread.
    /// </summary>
    public sealed class MqantClient : IDisposable
    {
        /// <summary>The reply timeout of calls that set none, in milliseconds.</summary>
        public const int DefaultTimeoutMs = 10000;

        /// <summary>The MQTT connection.</summary>
        public readonly MqttConnection Connection;

        /// <summary>The JSON codec of bodies, replies and pushes.</summary>
        public readonly IJsonCodec Json;

        /// <summary>
        /// OnError hears of pushes that do not decode and of push listeners
        /// that threw. When it is null, such an exception propagates out of
        /// Tick (Unity logs it); the next Tick goes on with what is left.
        /// </summary>
        public Action<Exception> OnError;

        private abstract class Pending
        {
            public string Topic;
            public long Deadline; // clock ms; long.MaxValue for none
            public int TimeoutMs;
            public CancellationToken Cancellation;

            public abstract void Resolve(MqantClient c, string json);

            public abstract void Fail(MqantException e);
        }

        private sealed class Pending<T> : Pending
        {
            public readonly TaskCompletionSource<T> Tcs = new TaskCompletionSource<T>();

            public override void Resolve(MqantClient c, string json)
            {
                Reply<T> r;
                try
                {
                    r = (Reply<T>)c.Json.Decode(json, typeof(Reply<T>));
                }
                catch (Exception e)
                {
                    Tcs.TrySetException(new MqantException(MqantErrorCode.Decode, "reply on " + Topic + " is not the JSON expected: " + e.Message, Topic, e));
                    return;
                }
                if (r == null)
                {
                    Tcs.TrySetException(new MqantException(MqantErrorCode.Decode, "reply on " + Topic + " is null", Topic));
                }
                else if (!string.IsNullOrEmpty(r.Error))
                {
                    Tcs.TrySetException(new MqantException(MqantErrorCode.Remote, r.Error, Topic, r.Code));
                }
                else
                {
                    Tcs.TrySetResult(r.Result);
                }
            }

            public override void Fail(MqantException e)
            {
                Tcs.TrySetException(e);
            }
        }

        private sealed class Listener
        {
            public Type Type;
            public Action<object> Fn;
        }

        private sealed class Subscription : IDisposable
        {
            public MqantClient Client;
            public string Topic;
            public Listener Listener;

            public void Dispose()
            {
                List<Listener> list;
                if (Client.listeners.TryGetValue(Topic, out list) && list.Remove(Listener) && list.Count == 0)
                {
                    Client.listeners.Remove(Topic);
                }
            }
        }

        private readonly Dictionary<string, Pending> pending = new Dictionary<string, Pending>();
        private readonly Dictionary<string, List<Listener>> listeners = new Dictionary<string, List<Listener>>();
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private readonly Queue<KeyValuePair<string, byte[]>> arrived = new Queue<KeyValuePair<string, byte[]>>();
        private int nextId = 1;
        private bool closed;

        /// <summary>Creates a client over connection; json defaults to MiniJsonCodec.</summary>
        public MqantClient(MqttConnection connection, IJsonCodec json = null)
        {
            if (connection == null)
            {
                throw new ArgumentNullException("connection");
            }
            Connection = connection;
            Json = json ?? new MiniJsonCodec();
            connection.MessageReceived = (topic, payload) => arrived.Enqueue(new KeyValuePair<string, byte[]>(topic, payload));
            connection.Closed += reason => FailAll(MqantErrorCode.Closed, reason ?? "disconnected");
        }

        /// <summary>Connect connects the MQTT connection (see MqttConnection.Connect); it completes inside Tick.</summary>
        public Task Connect()
        {
            return Connection.Connect();
        }

        /// <summary>The number of calls waiting for their reply.</summary>
        public int PendingCalls
        {
            get { return pending.Count; }
        }

        /// <summary>
        /// Call publishes body as JSON on route/msgid and completes with the
        /// reply's Result, or fails with a MqantException whose Message is
        /// the reply's Error (code Remote).
        /// </summary>
        public Task<T> Call<T>(string route, object body, CallOptions options = null)
        {
            var o = options ?? new CallOptions();
            var p = new Pending<T> { Cancellation = o.Cancellation };
            p.Topic = NextTopic(route);
            if (closed)
            {
                p.Fail(new MqantException(MqantErrorCode.Closed, "client closed", p.Topic));
                return p.Tcs.Task;
            }
            if (o.Cancellation.IsCancellationRequested)
            {
                p.Fail(new MqantException(MqantErrorCode.Aborted, "call aborted before it was sent", p.Topic));
                return p.Tcs.Task;
            }
            byte[] payload;
            try
            {
                payload = Encoding.UTF8.GetBytes(body == null ? "{}" : Json.Encode(body));
            }
            catch (Exception e)
            {
                p.Fail(new MqantException(MqantErrorCode.Publish, "request cannot be encoded as JSON: " + e.Message, p.Topic, e));
                return p.Tcs.Task;
            }
            p.TimeoutMs = o.TimeoutMs;
            p.Deadline = o.TimeoutMs > 0 ? clock.ElapsedMilliseconds + o.TimeoutMs : long.MaxValue;
            pending[p.Topic] = p;
            Connection.Publish(p.Topic, payload, o.Qos).ContinueWith(t =>
            {
                // Only a failed publish matters here; it fails in Tick, so on the game's thread.
                if (t.IsFaulted)
                {
                    Drop(p.Topic, p, new MqantException(MqantErrorCode.Publish, "publish on " + p.Topic + " failed: " + t.Exception.GetBaseException().Message, p.Topic));
                }
            }, TaskContinuationOptions.ExecuteSynchronously);
            return p.Tcs.Task;
        }

        /// <summary>Call for a handler without a result: the task completes when the reply says it succeeded.</summary>
        public Task Call(string route, object body, CallOptions options = null)
        {
            return Call<object>(route, body, options);
        }

        /// <summary>
        /// Send publishes body as JSON on route without a msgid: the server
        /// runs the handler and sends no reply. The task completes once the
        /// request is written (QoS 0) or acknowledged (QoS 1).
        /// </summary>
        public Task Send(string route, object body, CallOptions options = null)
        {
            var o = options ?? new CallOptions();
            byte[] payload;
            try
            {
                payload = Encoding.UTF8.GetBytes(body == null ? "{}" : Json.Encode(body));
            }
            catch (Exception e)
            {
                var t = new TaskCompletionSource<bool>();
                t.SetException(new MqantException(MqantErrorCode.Publish, "request cannot be encoded as JSON: " + e.Message, route, e));
                return t.Task;
            }
            return Connection.Publish(route, payload, o.Qos);
        }

        /// <summary>On calls fn inside Tick with every push on topic, decoded as T; dispose the result to stop.</summary>
        public IDisposable On<T>(string topic, Action<T> fn)
        {
            var l = new Listener { Type = typeof(T), Fn = msg => fn((T)msg) };
            List<Listener> list;
            if (!listeners.TryGetValue(topic, out list))
            {
                list = new List<Listener>();
                listeners[topic] = list;
            }
            list.Add(l);
            return new Subscription { Client = this, Topic = topic, Listener = l };
        }

        /// <summary>
        /// Tick runs the connection (reads, keep-alive), completes the calls
        /// whose replies arrived, raises push events, and fails calls past
        /// their timeout or cancelled. Call it every frame on the game's thread.
        /// </summary>
        public void Tick()
        {
            Connection.Tick();
            while (arrived.Count > 0)
            {
                var m = arrived.Dequeue();
                Dispatch(m.Key, m.Value);
            }
            if (pending.Count == 0)
            {
                return;
            }
            long now = clock.ElapsedMilliseconds;
            List<Pending> expired = null;
            foreach (var p in pending.Values)
            {
                if (now >= p.Deadline || p.Cancellation.IsCancellationRequested)
                {
                    (expired ?? (expired = new List<Pending>())).Add(p);
                }
            }
            if (expired == null)
            {
                return;
            }
            // Removed first: a continuation may start a new call.
            foreach (var p in expired)
            {
                pending.Remove(p.Topic);
            }
            foreach (var p in expired)
            {
                if (p.Cancellation.IsCancellationRequested)
                {
                    p.Fail(new MqantException(MqantErrorCode.Aborted, "call aborted", p.Topic));
                }
                else
                {
                    p.Fail(new MqantException(MqantErrorCode.Timeout, "no reply on " + p.Topic + " within " + p.TimeoutMs + " ms", p.Topic));
                }
            }
        }

        /// <summary>Close fails every waiting call with code Closed and disconnects.</summary>
        public void Close(string reason = "client closed")
        {
            if (closed)
            {
                return;
            }
            closed = true;
            FailAll(MqantErrorCode.Closed, reason);
            listeners.Clear();
            Connection.Disconnect();
        }

        /// <summary>Dispose is Close.</summary>
        public void Dispose()
        {
            Close();
        }

        private void Dispatch(string topic, byte[] payload)
        {
            Pending p;
            if (pending.TryGetValue(topic, out p))
            {
                pending.Remove(topic);
                p.Resolve(this, Encoding.UTF8.GetString(payload));
                return;
            }
            List<Listener> list;
            if (!listeners.TryGetValue(topic, out list))
            {
                return; // a late reply or a push nobody listens to
            }
            string json = Encoding.UTF8.GetString(payload);
            var decoded = new Dictionary<Type, object>();
            foreach (var l in list.ToArray())
            {
                try
                {
                    object msg;
                    if (!decoded.TryGetValue(l.Type, out msg))
                    {
                        try
                        {
                            msg = Json.Decode(json, l.Type);
                        }
                        catch (Exception e)
                        {
                            throw new MqantException(MqantErrorCode.Decode, "push on " + topic + " is not the JSON expected: " + e.Message, topic, e);
                        }
                        decoded[l.Type] = msg;
                    }
                    l.Fn(msg);
                }
                catch (Exception e)
                {
                    var h = OnError;
                    if (h == null)
                    {
                        throw;
                    }
                    h(e);
                }
            }
        }

        private void Drop(string topic, Pending p, MqantException e)
        {
            Pending cur;
            if (pending.TryGetValue(topic, out cur) && cur == p)
            {
                pending.Remove(topic);
                p.Fail(e);
            }
        }

        private void FailAll(MqantErrorCode code, string reason)
        {
            var all = new List<Pending>(pending.Values);
            pending.Clear();
            foreach (var p in all)
            {
                p.Fail(new MqantException(code, reason, p.Topic));
            }
        }

        // NextTopic returns route/msgid with a msgid no waiting call uses.
        private string NextTopic(string route)
        {
            for (;;)
            {
                int id = nextId;
                nextId = id >= int.MaxValue ? 1 : id + 1;
                string topic = route + "/" + id;
                if (!pending.ContainsKey(topic))
                {
                    return topic;
                }
            }
        }
    }

    /// <summary>Reply is the body of every reply: Error is "" on success, Result is null on error.</summary>
    [Serializable, Preserve]
    public sealed class Reply<T>
    {
        /// <summary>The error text; "" on success.</summary>
        public string Error;

        /// <summary>The server's stable error code beside Error ("" or absent on success and from older servers).</summary>
        public string Code;

        /// <summary>The handler's result.</summary>
        public T Result;
    }
}
