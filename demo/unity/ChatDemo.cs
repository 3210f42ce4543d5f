// ChatDemo is the chat demo's Unity client: attach it to a GameObject in a
// scene whose Assets/ hold generated/csharp (the SDK). It logs in, joins a
// room, shows every push and says what is typed. In a WebGL build it speaks
// MQTT over the browser's WebSocket (Runtime/Unity/MqantWebSocket.jslib);
// elsewhere over TCP.

using System.Collections.Generic;
using Mqant;
using Mqant.Api.Chat;
using Mqant.Api.Login;
using UnityEngine;

public class ChatDemo : MonoBehaviour
{
    public string host = "127.0.0.1";
    public int tcpPort = 3563;
    public string webSocketUrl = "ws://127.0.0.1:3653/mqtt";
    public string userName = "unity";
    public string password = "secret";
    public string room = "lobby";

    private MqantClient client;
    private LoginClient login;
    private ChatClient chat;
    private readonly List<string> lines = new List<string>();
    private string draft = "";

    private async void Start()
    {
        ITransport transport;
#if UNITY_WEBGL && !UNITY_EDITOR
        transport = new WebGLTransport(webSocketUrl); // WebGL has no sockets and no threads
#else
        transport = new TcpTransport(host, tcpPort);
#endif
        client = new MqantClient(new MqttConnection(transport, new MqttOptions { KeepAliveSeconds = 30 }));
        login = new LoginClient(client);
        chat = new ChatClient(client);
        chat.OnJoin += m => Show(m.userName + " joined " + m.roomName);
        chat.OnSay += m => Show(m.userName + ": " + m.say);
        chat.OnLeave += m => Show(m.userName + " left " + m.roomName);
        client.Connection.Closed += reason => Show("disconnected: " + (reason ?? "by us"));
        try
        {
            await client.Connect();
            Show(await login.Login(new LoginRequest { userName = userName, passWord = password }));
            Show(await chat.JoinChat(new JoinRequest { roomName = room }));
        }
        catch (MqantException e)
        {
            // e.Code tells a refused login (Remote, with the server's text) from a lost connection or a timeout.
            Debug.LogError("chat: " + e.Code + ": " + e.Message);
        }
    }

    // Replies complete and pushes arrive here, on the main thread.
    private void Update()
    {
        if (client != null)
        {
            client.Tick();
        }
    }

    private void OnGUI()
    {
        foreach (var line in lines)
        {
            GUILayout.Label(line);
        }
        draft = GUILayout.TextField(draft);
        if (GUILayout.Button("Say") && draft != "")
        {
            Say(draft);
            draft = "";
        }
    }

    private async void Say(string text)
    {
        try
        {
            await chat.Say(new SayRequest { roomName = room, say = text });
        }
        catch (MqantException e)
        {
            Show("say failed: " + e.Message);
        }
    }

    private void Show(string line)
    {
        Debug.Log(line);
        lines.Add(line);
        if (lines.Count > 20)
        {
            lines.RemoveAt(0);
        }
    }

    private void OnDestroy()
    {
        if (client != null)
        {
            client.Dispose();
        }
    }
}
