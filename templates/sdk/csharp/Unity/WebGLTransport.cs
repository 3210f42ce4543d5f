// Unity WebGL has no sockets and no threads: this transport drives a
// browser WebSocket through MqantWebSocket.jslib and collects its events in
// Poll, which MqttConnection.Tick calls every frame. Compiled only in Unity.

#if UNITY_5_3_OR_NEWER
using System;
using System.Runtime.InteropServices;

namespace Mqant
{
    /// <summary>
    /// WebGLTransport is MQTT over the browser's WebSocket, for Unity WebGL
    /// builds (subprotocol mqtt, binary frames). Everything happens in Poll,
    /// on the game's thread. Outside a WebGL player it throws
    /// PlatformNotSupportedException: use TcpTransport or WebSocketTransport there.
    /// </summary>
    public sealed class WebGLTransport : ITransport
    {
        private readonly string url;
        private readonly byte[] buffer = new byte[16384];
        private ITransportListener listener;
        private int id;
        private bool opened, closed;

        /// <summary>Creates a transport to url, e.g. ws://127.0.0.1:3653/mqtt.</summary>
        public WebGLTransport(string url)
        {
            this.url = url;
        }

        /// <inheritdoc/>
        public void Open(ITransportListener l)
        {
            listener = l;
            id = MqantWsOpen(url, "mqtt");
        }

        /// <inheritdoc/>
        public void Send(byte[] data, int offset, int count)
        {
            if (closed || MqantWsSend(id, data, offset, count) != 0)
            {
                throw new InvalidOperationException("WebSocket is not open");
            }
        }

        /// <inheritdoc/>
        public void Poll()
        {
            if (closed || id == 0)
            {
                return;
            }
            int state = MqantWsState(id); // 0 connecting, 1 open, 2 closed
            if (state >= 1 && !opened)
            {
                opened = true;
                listener.OnOpen();
            }
            // Data received before a close is still delivered.
            int n;
            while ((n = MqantWsRecv(id, buffer, buffer.Length)) > 0)
            {
                listener.OnData(buffer, 0, n);
            }
            if (state == 2)
            {
                int code = MqantWsCloseCode(id);
                Release();
                listener.OnClosed("WebSocket closed (code " + code + ")");
            }
        }

        /// <inheritdoc/>
        public void Close()
        {
            if (!closed && id != 0)
            {
                Release();
                listener.OnClosed(null);
            }
        }

        private void Release()
        {
            closed = true;
            MqantWsClose(id);
        }

#if UNITY_WEBGL && !UNITY_EDITOR
        [DllImport("__Internal")] private static extern int MqantWsOpen(string url, string protocol);
        [DllImport("__Internal")] private static extern int MqantWsState(int id);
        [DllImport("__Internal")] private static extern int MqantWsSend(int id, byte[] data, int offset, int count);
        [DllImport("__Internal")] private static extern int MqantWsRecv(int id, byte[] buffer, int capacity);
        [DllImport("__Internal")] private static extern int MqantWsCloseCode(int id);
        [DllImport("__Internal")] private static extern void MqantWsClose(int id);
#else
        // Outside WebGL players there is no jslib to link against (and an
        // unresolved __Internal import breaks IL2CPP builds for iOS).
        private static int MqantWsOpen(string url, string protocol) { throw NotWebGL(); }
        private static int MqantWsState(int id) { throw NotWebGL(); }
        private static int MqantWsSend(int id, byte[] data, int offset, int count) { throw NotWebGL(); }
        private static int MqantWsRecv(int id, byte[] buffer, int capacity) { throw NotWebGL(); }
        private static int MqantWsCloseCode(int id) { throw NotWebGL(); }
        private static void MqantWsClose(int id) { throw NotWebGL(); }

        private static Exception NotWebGL()
        {
            return new PlatformNotSupportedException("WebGLTransport works only in Unity WebGL players; use TcpTransport or WebSocketTransport");
        }
#endif
    }
}
#endif
