// Transports carry MQTT bytes: TCP and .NET's ClientWebSocket on their own
// threads, and in Unity WebGL (no sockets, no threads) a JavaScript
// WebSocket polled from Tick (Unity/WebGLTransport.cs).

using System;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Threading;
using System.Threading.Tasks;

namespace Mqant
{
    /// <summary>ITransportListener hears a transport's events, from any thread.</summary>
    public interface ITransportListener
    {
        /// <summary>The transport is open and may send.</summary>
        void OnOpen();

        /// <summary>Bytes arrived; data may be reused once the call returns.</summary>
        void OnData(byte[] data, int offset, int count);

        /// <summary>The transport closed or failed to open; called at most once.</summary>
        void OnClosed(string reason);
    }

    /// <summary>
    /// ITransport is a byte stream to the gate. MqttConnection calls Open,
    /// Send, Poll and Close on the game's thread; the transport calls its
    /// listener from any thread.
    /// </summary>
    public interface ITransport
    {
        /// <summary>Open starts connecting without blocking; the listener hears OnOpen or OnClosed.</summary>
        void Open(ITransportListener listener);

        /// <summary>Send writes bytes, in order; it may throw when the transport is broken.</summary>
        void Send(byte[] data, int offset, int count);

        /// <summary>Poll is called from every Tick: transports without threads deliver their events here.</summary>
        void Poll();

        /// <summary>Close closes the transport; calling it more than once is harmless.</summary>
        void Close();
    }

    /// <summary>TcpTransport is MQTT over TCP (the gate's :3563), optionally over TLS, with a reader thread.</summary>
    public sealed class TcpTransport : ITransport
    {
        private readonly string host;
        private readonly int port;
        private readonly bool tls;
        private readonly object sendLock = new object();
        private TcpClient client;
        private Stream stream;
        private ITransportListener listener;
        private int closed;

        /// <summary>Creates a transport to host:port; tls wraps it in TLS checked against host.</summary>
        public TcpTransport(string host, int port, bool tls = false)
        {
            this.host = host;
            this.port = port;
            this.tls = tls;
        }

        /// <inheritdoc/>
        public void Open(ITransportListener l)
        {
            listener = l;
            var t = new Thread(Run) { IsBackground = true, Name = "mqant-tcp" };
            t.Start();
        }

        private void Run()
        {
            try
            {
                var c = new TcpClient();
                c.NoDelay = true; // requests are small and a game waits on each reply
                c.Connect(host, port);
                Stream s = c.GetStream();
                if (tls)
                {
                    var ssl = new SslStream(s);
                    ssl.AuthenticateAsClient(host);
                    s = ssl;
                }
                lock (sendLock)
                {
                    client = c;
                    stream = s;
                }
                if (Volatile.Read(ref closed) != 0)
                {
                    c.Close();
                    return;
                }
                listener.OnOpen();
                var buf = new byte[16384];
                for (;;)
                {
                    int n = s.Read(buf, 0, buf.Length);
                    if (n <= 0)
                    {
                        Closed("the gate closed the connection");
                        return;
                    }
                    listener.OnData(buf, 0, n);
                }
            }
            catch (Exception e)
            {
                Closed(e.Message);
            }
        }

        private void Closed(string reason)
        {
            if (Interlocked.Exchange(ref closed, 1) == 0)
            {
                CloseSocket();
                listener.OnClosed(reason);
            }
        }

        /// <inheritdoc/>
        public void Send(byte[] data, int offset, int count)
        {
            lock (sendLock)
            {
                if (stream == null)
                {
                    throw new IOException("not open");
                }
                stream.Write(data, offset, count);
            }
        }

        /// <inheritdoc/>
        public void Poll()
        {
        }

        /// <inheritdoc/>
        public void Close()
        {
            if (Interlocked.Exchange(ref closed, 1) == 0)
            {
                CloseSocket(); // ends the reader's blocking Read
                listener.OnClosed(null);
            }
        }

        private void CloseSocket()
        {
            lock (sendLock)
            {
                if (client != null)
                {
                    client.Close();
                }
            }
        }
    }

    /// <summary>
    /// WebSocketTransport is MQTT over WebSocket (the gate's :3653,
    /// subprotocol mqtt) with .NET's ClientWebSocket. Not for Unity WebGL: use
    /// WebGLTransport there.
    /// </summary>
    public sealed class WebSocketTransport : ITransport
    {
        private readonly Uri url;
        private readonly ClientWebSocket ws = new ClientWebSocket();
        private readonly CancellationTokenSource stop = new CancellationTokenSource();
        private readonly object sendLock = new object();
        private Task sending = Task.FromResult(true);
        private ITransportListener listener;
        private int closed;

        /// <summary>Creates a transport to url, e.g. ws://127.0.0.1:3653/mqtt.</summary>
        public WebSocketTransport(Uri url)
        {
            this.url = url;
            ws.Options.AddSubProtocol("mqtt");
        }

        /// <inheritdoc/>
        public void Open(ITransportListener l)
        {
            listener = l;
            Task.Run(Run);
        }

        private async Task Run()
        {
            try
            {
                await ws.ConnectAsync(url, stop.Token).ConfigureAwait(false);
                listener.OnOpen();
                var buf = new byte[16384];
                for (;;)
                {
                    var r = await ws.ReceiveAsync(new ArraySegment<byte>(buf), stop.Token).ConfigureAwait(false);
                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        Closed("the gate closed the WebSocket");
                        return;
                    }
                    listener.OnData(buf, 0, r.Count);
                }
            }
            catch (Exception e)
            {
                Closed(e.Message);
            }
        }

        private void Closed(string reason)
        {
            if (Interlocked.Exchange(ref closed, 1) == 0)
            {
                stop.Cancel();
                ws.Abort();
                listener.OnClosed(reason);
            }
        }

        /// <inheritdoc/>
        public void Send(byte[] data, int offset, int count)
        {
            if (Volatile.Read(ref closed) != 0)
            {
                throw new IOException("closed");
            }
            var copy = new byte[count];
            Buffer.BlockCopy(data, offset, copy, 0, count);
            // ClientWebSocket allows one send at a time: chain them, one frame per packet.
            lock (sendLock)
            {
                sending = sending.ContinueWith(prev =>
                {
                    if (prev.IsFaulted || Volatile.Read(ref closed) != 0)
                    {
                        return prev;
                    }
                    return ws.SendAsync(new ArraySegment<byte>(copy), WebSocketMessageType.Binary, true, stop.Token);
                }, TaskScheduler.Default).Unwrap();
                sending.ContinueWith(t => Closed("send failed: " + t.Exception.GetBaseException().Message),
                    TaskContinuationOptions.OnlyOnFaulted);
            }
        }

        /// <inheritdoc/>
        public void Poll()
        {
        }

        /// <inheritdoc/>
        public void Close()
        {
            if (Interlocked.Exchange(ref closed, 1) == 0)
            {
                stop.Cancel();
                ws.Abort();
                listener.OnClosed(null);
            }
        }
    }
}
