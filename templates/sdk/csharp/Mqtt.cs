// A small MQTT 3.1.1 client: what a game needs to talk to the gate and no
// more. Transports call in from their own threads; every packet is handled,
// and every task completes, inside Tick on the game's thread.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Text;
using System.Threading.Tasks;

namespace Mqant
{
    /// <summary>MqttOptions are a connection's CONNECT settings.</summary>
    public sealed class MqttOptions
    {
        /// <summary>The client id; empty with CleanSession lets the gate assign one.</summary>
        public string ClientId = "";

        /// <summary>User name for the gate's auth hook; null sends none.</summary>
        public string Username;

        /// <summary>Password for the gate's auth hook; null sends none.</summary>
        public string Password;

        /// <summary>True ends the session with the connection; false asks the gate to keep it (a persistent session).</summary>
        public bool CleanSession = true;

        /// <summary>Seconds of silence after which the gate may close the connection; 0 turns keep-alive off. Tick sends PINGREQ at half of it.</summary>
        public int KeepAliveSeconds = 30;

        /// <summary>Milliseconds Connect waits for CONNACK.</summary>
        public int ConnectTimeoutMs = 10000;

        /// <summary>Largest packet accepted from the gate; a bigger one closes the connection.</summary>
        public int MaxPacketSize = 1 << 20;
    }

    /// <summary>
    /// MqttConnection is one MQTT 3.1.1 connection over an ITransport:
    /// CONNECT with credentials and the clean-session choice, PUBLISH at QoS
    /// 0 and 1, keep-alive pings, DISCONNECT. The gate sends replies and
    /// pushes without a SUBSCRIBE, so there is none. Call Tick every frame.
    /// </summary>
    public sealed class MqttConnection : ITransportListener
    {
        private enum State { Idle, Opening, Connecting, Connected, Closed }

        private sealed class Inbound
        {
            public int Kind; // 0 open, 1 packet, 2 closed
            public byte Header;
            public byte[] Body;
            public string Reason;
        }

        /// <summary>The transport it speaks over.</summary>
        public readonly ITransport Transport;

        /// <summary>The CONNECT settings.</summary>
        public readonly MqttOptions Options;

        /// <summary>Called inside Tick with each PUBLISH received: topic and payload.</summary>
        public Action<string, byte[]> MessageReceived;

        /// <summary>Raised inside Tick once when the connection ends, with why (null after Disconnect).</summary>
        public event Action<string> Closed;

        private readonly object gate = new object();
        private readonly Queue<Inbound> inbox = new Queue<Inbound>();
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private readonly Dictionary<ushort, TaskCompletionSource<bool>> unacked = new Dictionary<ushort, TaskCompletionSource<bool>>();
        private readonly HashSet<ushort> qos2Received = new HashSet<ushort>();
        private State state = State.Idle;
        private TaskCompletionSource<bool> connecting;
        private long connectStarted, lastSent, pingSent = -1;
        private ushort nextPacketId;
        // The reader's partial packet, touched only by the transport's thread.
        private byte[] partial = new byte[0];
        private int partialLen;

        /// <summary>Creates a connection; nothing happens before Connect.</summary>
        public MqttConnection(ITransport transport, MqttOptions options = null)
        {
            if (transport == null)
            {
                throw new ArgumentNullException("transport");
            }
            Transport = transport;
            Options = options ?? new MqttOptions();
        }

        /// <summary>True between CONNACK and the end of the connection.</summary>
        public bool IsConnected
        {
            get { return state == State.Connected; }
        }

        /// <summary>The gate's session-present flag from CONNACK: true when a persistent session was resumed.</summary>
        public bool SessionPresent { get; private set; }

        /// <summary>
        /// Connect opens the transport and sends CONNECT; the task completes
        /// inside Tick when CONNACK accepts, and fails with a MqantException
        /// (code Connect) when the gate refuses, the transport fails, or no
        /// CONNACK comes within ConnectTimeoutMs.
        /// </summary>
        public Task Connect()
        {
            if (state != State.Idle)
            {
                throw new InvalidOperationException("Connect may be called once per MqttConnection");
            }
            state = State.Opening;
            connecting = new TaskCompletionSource<bool>();
            connectStarted = clock.ElapsedMilliseconds;
            Transport.Open(this);
            return connecting.Task;
        }

        /// <summary>
        /// Publish sends one PUBLISH. At QoS 0 the task completes once it is
        /// written; at QoS 1 when the gate's PUBACK arrives (inside Tick).
        /// It fails with code Closed when the connection is not up.
        /// </summary>
        public Task Publish(string topic, byte[] payload, int qos)
        {
            if (qos < 0 || qos > 1)
            {
                throw new ArgumentOutOfRangeException("qos", "QoS 0 or 1");
            }
            if (state != State.Connected)
            {
                return Failed(new MqantException(MqantErrorCode.Closed, "not connected", topic));
            }
            byte[] t = Encoding.UTF8.GetBytes(topic);
            var body = new List<byte>(2 + t.Length + 2 + payload.Length);
            AppendShort(body, t.Length);
            body.AddRange(t);
            TaskCompletionSource<bool> ack = null;
            if (qos == 1)
            {
                ushort id = NextPacketId();
                AppendShort(body, id);
                ack = new TaskCompletionSource<bool>();
                unacked[id] = ack;
            }
            body.AddRange(payload);
            if (!Write((byte)(0x30 | (qos << 1)), body))
            {
                return Failed(new MqantException(MqantErrorCode.Closed, "connection lost", topic));
            }
            return ack != null ? (Task)ack.Task : Done;
        }

        /// <summary>Disconnect sends DISCONNECT and closes the transport; Closed is raised with a null reason.</summary>
        public void Disconnect()
        {
            if (state == State.Connected)
            {
                Write(0xE0, null);
            }
            Finish(null);
        }

        /// <summary>
        /// Tick handles what arrived since the last call (completing tasks and
        /// calling MessageReceived on this thread), sends keep-alive pings and
        /// enforces the connect timeout. Call it every frame.
        /// </summary>
        public void Tick()
        {
            if (state == State.Idle || state == State.Closed)
            {
                return;
            }
            Transport.Poll();
            for (;;)
            {
                Inbound m;
                lock (gate)
                {
                    if (inbox.Count == 0)
                    {
                        break;
                    }
                    m = inbox.Dequeue();
                }
                if (state == State.Closed)
                {
                    return;
                }
                switch (m.Kind)
                {
                    case 0:
                        SendConnect();
                        break;
                    case 1:
                        Handle(m.Header, m.Body);
                        break;
                    default:
                        Finish(m.Reason ?? "transport closed");
                        return;
                }
            }
            long now = clock.ElapsedMilliseconds;
            if (state != State.Connected)
            {
                if (now - connectStarted > Options.ConnectTimeoutMs)
                {
                    Finish("no CONNACK within " + Options.ConnectTimeoutMs + " ms");
                }
                return;
            }
            long keepAlive = Options.KeepAliveSeconds * 1000L;
            if (keepAlive <= 0)
            {
                return;
            }
            if (pingSent >= 0 && now - pingSent > keepAlive)
            {
                Finish("no PINGRESP within the keep-alive of " + Options.KeepAliveSeconds + " s");
                return;
            }
            if (now - lastSent >= keepAlive / 2)
            {
                if (pingSent < 0)
                {
                    pingSent = now;
                }
                Write(0xC0, null);
            }
        }

        // --- transport side: any thread ---

        void ITransportListener.OnOpen()
        {
            Enqueue(new Inbound { Kind = 0 });
        }

        void ITransportListener.OnData(byte[] data, int offset, int count)
        {
            // Append, then cut off every whole packet.
            if (partialLen + count > partial.Length)
            {
                Array.Resize(ref partial, Math.Max(partialLen + count, partial.Length * 2));
            }
            Buffer.BlockCopy(data, offset, partial, partialLen, count);
            partialLen += count;
            int pos = 0;
            while (partialLen - pos >= 2)
            {
                int len = 0, mul = 1, n = 1;
                bool whole = false;
                for (; n <= 4 && pos + n < partialLen; n++)
                {
                    byte b = partial[pos + n];
                    len += (b & 0x7F) * mul;
                    mul *= 128;
                    if ((b & 0x80) == 0)
                    {
                        whole = true;
                        break;
                    }
                }
                if (!whole)
                {
                    if (n > 4)
                    {
                        Enqueue(new Inbound { Kind = 2, Reason = "malformed packet length" });
                        Transport.Close();
                        return;
                    }
                    break;
                }
                if (len > Options.MaxPacketSize)
                {
                    Enqueue(new Inbound { Kind = 2, Reason = "packet of " + len + " bytes exceeds MaxPacketSize" });
                    Transport.Close();
                    return;
                }
                int start = pos + n + 1;
                if (partialLen - start < len)
                {
                    break;
                }
                var body = new byte[len];
                Buffer.BlockCopy(partial, start, body, 0, len);
                Enqueue(new Inbound { Kind = 1, Header = partial[pos], Body = body });
                pos = start + len;
            }
            if (pos > 0)
            {
                Buffer.BlockCopy(partial, pos, partial, 0, partialLen - pos);
                partialLen -= pos;
            }
        }

        void ITransportListener.OnClosed(string reason)
        {
            Enqueue(new Inbound { Kind = 2, Reason = reason });
        }

        private void Enqueue(Inbound m)
        {
            lock (gate)
            {
                inbox.Enqueue(m);
            }
        }

        // --- game thread ---

        private void SendConnect()
        {
            if (state != State.Opening)
            {
                return;
            }
            state = State.Connecting;
            var o = Options;
            var body = new List<byte>(64);
            AppendString(body, "MQTT");
            body.Add(4); // protocol level 3.1.1
            byte flags = 0;
            if (o.CleanSession)
            {
                flags |= 0x02;
            }
            if (o.Username != null)
            {
                flags |= 0x80;
                if (o.Password != null)
                {
                    flags |= 0x40; // [MQTT-3.1.2-22]: no password without a user name
                }
            }
            body.Add(flags);
            AppendShort(body, Math.Max(0, Math.Min(o.KeepAliveSeconds, 65535)));
            AppendString(body, o.ClientId ?? "");
            if (o.Username != null)
            {
                AppendString(body, o.Username);
                if (o.Password != null)
                {
                    AppendString(body, o.Password);
                }
            }
            Write(0x10, body);
        }

        private void Handle(byte header, byte[] b)
        {
            switch (header >> 4)
            {
                case 2: // CONNACK
                    if (state != State.Connecting || b.Length != 2)
                    {
                        Finish("unexpected CONNACK");
                        return;
                    }
                    if (b[1] != 0)
                    {
                        Finish("the gate refused the connection: " + ConnackText(b[1]) + " (" + b[1] + ")");
                        return;
                    }
                    SessionPresent = (b[0] & 1) != 0;
                    state = State.Connected;
                    connecting.TrySetResult(true);
                    return;
                case 3: // PUBLISH
                    {
                        int qos = (header >> 1) & 3;
                        if (b.Length < 2)
                        {
                            Finish("malformed PUBLISH");
                            return;
                        }
                        int tl = (b[0] << 8) | b[1];
                        int p = 2 + tl + (qos > 0 ? 2 : 0);
                        if (p > b.Length || qos == 3)
                        {
                            Finish("malformed PUBLISH");
                            return;
                        }
                        string topic = Encoding.UTF8.GetString(b, 2, tl);
                        var payload = new byte[b.Length - p];
                        Buffer.BlockCopy(b, p, payload, 0, payload.Length);
                        if (qos > 0)
                        {
                            ushort id = (ushort)((b[2 + tl] << 8) | b[3 + tl]);
                            Write(qos == 1 ? (byte)0x40 : (byte)0x50, IdBody(id));
                            if (qos == 2 && !qos2Received.Add(id))
                            {
                                return; // a retransmission: handled once [MQTT-4.3.3-2]
                            }
                        }
                        var h = MessageReceived;
                        if (h != null)
                        {
                            h(topic, payload);
                        }
                        return;
                    }
                case 4: // PUBACK
                    if (b.Length == 2)
                    {
                        ushort id = (ushort)((b[0] << 8) | b[1]);
                        TaskCompletionSource<bool> t;
                        if (unacked.TryGetValue(id, out t))
                        {
                            unacked.Remove(id);
                            t.TrySetResult(true);
                        }
                    }
                    return;
                case 6: // PUBREL: the gate's QoS 2 delivery is complete
                    if (b.Length == 2)
                    {
                        qos2Received.Remove((ushort)((b[0] << 8) | b[1]));
                        Write(0x70, new List<byte>(b));
                    }
                    return;
                case 13: // PINGRESP
                    pingSent = -1;
                    return;
                default: // SUBACK, UNSUBACK and the like: nothing to do
                    return;
            }
        }

        private static string ConnackText(byte code)
        {
            switch (code)
            {
                case 1: return "unacceptable protocol version";
                case 2: return "identifier rejected";
                case 3: return "server unavailable";
                case 4: return "bad user name or password";
                case 5: return "not authorized";
                default: return "refused";
            }
        }

        private void Finish(string reason)
        {
            if (state == State.Closed)
            {
                return;
            }
            bool wasConnecting = state != State.Connected && state != State.Idle;
            state = State.Closed;
            Transport.Close();
            if (wasConnecting && connecting != null)
            {
                connecting.TrySetException(new MqantException(MqantErrorCode.Connect, reason ?? "disconnected before CONNACK", ""));
            }
            var lost = new List<TaskCompletionSource<bool>>(unacked.Values);
            unacked.Clear();
            foreach (var t in lost)
            {
                t.TrySetException(new MqantException(MqantErrorCode.Closed, reason ?? "disconnected", ""));
            }
            var h = Closed;
            if (h != null)
            {
                h(reason);
            }
        }

        private ushort NextPacketId()
        {
            do
            {
                nextPacketId++;
            }
            while (nextPacketId == 0 || unacked.ContainsKey(nextPacketId));
            return nextPacketId;
        }

        // Write frames one packet and hands it to the transport.
        private bool Write(byte header, List<byte> body)
        {
            int len = body == null ? 0 : body.Count;
            var buf = new byte[1 + 4 + len];
            int n = 0;
            buf[n++] = header;
            int rem = len;
            do
            {
                byte d = (byte)(rem % 128);
                rem /= 128;
                if (rem > 0)
                {
                    d |= 0x80;
                }
                buf[n++] = d;
            }
            while (rem > 0);
            if (body != null)
            {
                body.CopyTo(buf, n);
            }
            try
            {
                Transport.Send(buf, 0, n + len);
            }
            catch (Exception e)
            {
                Finish("send failed: " + e.Message);
                return false;
            }
            lastSent = clock.ElapsedMilliseconds;
            return true;
        }

        private static List<byte> IdBody(ushort id)
        {
            return new List<byte> { (byte)(id >> 8), (byte)id };
        }

        private static void AppendShort(List<byte> b, int v)
        {
            b.Add((byte)(v >> 8));
            b.Add((byte)v);
        }

        private static void AppendString(List<byte> b, string s)
        {
            byte[] u = Encoding.UTF8.GetBytes(s);
            AppendShort(b, u.Length);
            b.AddRange(u);
        }

        private static readonly Task Done = Task.FromResult(true);

        private static Task Failed(Exception e)
        {
            var t = new TaskCompletionSource<bool>();
            t.SetException(e);
            return t.Task;
        }
    }
}
