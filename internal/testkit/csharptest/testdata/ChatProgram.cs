// ChatProgram drives the generated C# SDK against a running chat demo gate,
// as a game would: no async Main, a loop that calls Tick every "frame", and
// calls whose tasks complete inside it. Two users, alice and bob, share a
// room. Each step prints "OK <step> <detail>"; any failure prints "FAIL ..."
// and exits 1. The Go test (csharp_test.go) checks the lines.
//
// Usage: mono ChatProgram.exe tcp|ws <address> mini|newtonsoft <suffix>

using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Mqant;
using Mqant.Api.Chat;
using Mqant.Api.Login;
using Mqant.Api.Slow;

public static class ChatProgram
{
    private static MqantClient alice, bob;
    private static readonly Stopwatch clock = Stopwatch.StartNew();
    private const int StepMs = 10000; // bound on every wait: the test never hangs

    public static int Main(string[] args)
    {
        int code = 0;
        try
        {
            Run(args[0], args[1], args[2], args[3]);
            Console.WriteLine("DONE");
        }
        catch (Exception e)
        {
            Console.WriteLine("FAIL " + e);
            code = 1;
        }
        // Debian's mono 6.8 now and then hangs in its own shutdown after Main
        // returns, with no managed frame left on any thread (a thread dump
        // shows only an idle pool worker and the finalizer): 1 run in 29 of
        // the WebSocket case with both cores busy. What the program checks is
        // done and printed, so it leaves without the runtime's shutdown.
        Console.Out.Flush();
        _exit(code);
        return code;
    }

    [DllImport("libc")]
    private static extern void _exit(int status);

    private static MqantClient Connect(string transport, string address, string codec, string clientId)
    {
        ITransport t;
        if (transport == "tcp")
        {
            int colon = address.LastIndexOf(':');
            t = new TcpTransport(address.Substring(0, colon), int.Parse(address.Substring(colon + 1)));
        }
        else
        {
            t = new WebSocketTransport(new Uri("ws://" + address + "/mqtt"));
        }
        IJsonCodec json = codec == "newtonsoft" ? (IJsonCodec)new NewtonsoftJsonCodec() : new MiniJsonCodec();
        // A 1 s keep-alive: the gate closes a connection silent for 1.5 s,
        // so the idle wait below proves Tick's pings.
        var options = new MqttOptions { ClientId = clientId, Username = "u", Password = "p", KeepAliveSeconds = 1 };
        var c = new MqantClient(new MqttConnection(t, options), json);
        return c;
    }

    private static void Run(string transport, string address, string codec, string suffix)
    {
        string room = "room-" + suffix;
        string aliceName = "alice-" + suffix, bobName = "bob-" + suffix;
        alice = Connect(transport, address, codec, "cs-alice-" + suffix);
        bob = Connect(transport, address, codec, "cs-bob-" + suffix);
        Await(alice.Connect());
        Await(bob.Connect());
        Ok("connect", transport + " " + codec);

        var aliceLogin = new LoginClient(alice);
        var aliceChat = new ChatClient(alice);
        var slow = new SlowClient(alice);
        var bobLogin = new LoginClient(bob);
        var bobChat = new ChatClient(bob);
        OnJoin joined = null;
        OnSay said = null;
        OnLeave left = null;
        OnSay bobHeard = null;
        aliceChat.OnJoin += m => { if (m.userName == bobName) joined = m; };
        aliceChat.OnSay += m => { if (m.userName == bobName) said = m; };
        aliceChat.OnLeave += m => { if (m.userName == bobName) left = m; };
        bobChat.OnSay += m => { if (m.userName == aliceName) bobHeard = m; };

        Expect("login", Await(aliceLogin.Login(new LoginRequest { userName = aliceName, passWord = "x" })), "login success " + aliceName);

        // A handler's error arrives as a MqantException with code Remote and the server's text.
        var e = Fails(bobChat.JoinChat(new JoinRequest { roomName = room }));
        if (e.Code != MqantErrorCode.Remote || e.Message != "Not Logined" || e.ServerCode != "error")
        {
            throw new Exception("join before login: got " + e.Code + " " + e.ServerCode + " " + e.Message);
        }
        Ok("remote-error", e.Code + " " + e.ServerCode + " " + e.Message + " on " + e.Topic);

        Expect("join", Await(aliceChat.JoinChat(new JoinRequest { roomName = room })), "join success");
        Await(bobLogin.Login(new LoginRequest { userName = bobName, passWord = "y" }));
        Await(bobChat.JoinChat(new JoinRequest { roomName = room }));
        Pump(() => joined != null, "alice hears bob join");
        Ok("push-join", joined.userName + " " + joined.roomName);

        Expect("say", Await(bobChat.Say(new SayRequest { roomName = room, say = "hello from bob" })), "say success");
        Pump(() => said != null, "alice hears bob say");
        Ok("push-say", said.userName + ": " + said.say);

        // The NR form: no reply, but the handler runs (bob hears it).
        Await(aliceChat.SayNR(new SayRequest { roomName = room, say = "no reply needed" }));
        Pump(() => bobHeard != null, "bob hears alice's NR say");
        Ok("nr", bobHeard.say);

        // A handler slower than the call's timeout: the call fails with code
        // Timeout at the deadline, before the reply would come, while Tick
        // keeps the connection alive.
        long start = clock.ElapsedMilliseconds;
        var timeout = Fails(slow.Wait(new WaitRequest { ms = 4000 }, new CallOptions { TimeoutMs = 2000 }));
        long took = clock.ElapsedMilliseconds - start;
        if (timeout.Code != MqantErrorCode.Timeout || took < 2000 || took >= 4000)
        {
            throw new Exception("slow call: got " + timeout.Code + " after " + took + " ms");
        }
        Ok("timeout", timeout.Code + " after >= 2000 ms: " + timeout.Message);
        if (alice.PendingCalls != 0)
        {
            throw new Exception("a timed-out call is still pending");
        }
        Expect("say-after-idle", Await(aliceChat.Say(new SayRequest { roomName = room, say = "still here" })), "say success");
        Expect("slow", Await(slow.Wait(new WaitRequest { ms = 1 })).waited.ToString(), "1");

        bob.Dispose();
        Pump(() => left != null, "alice hears bob leave");
        Ok("push-leave", left.userName + " " + left.roomName);

        // Calls on a closed client fail with code Closed.
        alice.Dispose();
        var closed = Fails(aliceChat.Say(new SayRequest { roomName = room, say = "gone" }));
        Ok("closed", closed.Code.ToString());
    }

    private static void Ok(string step, string detail)
    {
        Console.WriteLine("OK " + step + " " + detail);
    }

    private static void Expect(string step, string got, string want)
    {
        if (got != want)
        {
            throw new Exception(step + ": got \"" + got + "\", want \"" + want + "\"");
        }
        Ok(step, got);
    }

    // Frame is one game frame: both clients tick, then the frame ends.
    private static void Frame()
    {
        alice.Tick();
        bob.Tick();
        Thread.Sleep(2); // a frame's length, not synchronisation: Tick is what completes things
    }

    private static void Pump(Func<bool> done, string what)
    {
        long deadline = clock.ElapsedMilliseconds + StepMs;
        while (!done())
        {
            if (clock.ElapsedMilliseconds > deadline)
            {
                throw new TimeoutException("waiting for: " + what);
            }
            Frame();
        }
    }

    private static T Await<T>(Task<T> t)
    {
        Pump(() => t.IsCompleted, "a call");
        return t.GetAwaiter().GetResult();
    }

    private static void Await(Task t)
    {
        Pump(() => t.IsCompleted, "a call");
        t.GetAwaiter().GetResult();
    }

    private static MqantException Fails(Task t)
    {
        Pump(() => t.IsCompleted, "a failing call");
        if (!t.IsFaulted)
        {
            throw new Exception("the call succeeded; want a MqantException");
        }
        var e = t.Exception.GetBaseException() as MqantException;
        if (e == null)
        {
            throw new Exception("want a MqantException, got " + t.Exception.GetBaseException());
        }
        return e;
    }
}
