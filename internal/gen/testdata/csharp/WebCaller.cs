// Uses the golden modules' C# as a game would: every mapped type, the NR
// form, push events, a codec of each kind. Compiled, never run. Generated
// together, the three Go types named Item get their package names.
using System.Collections.Generic;
using System.Threading.Tasks;
using Mqant;
using Mqant.Api.Cs;
using Mqant.Api.Web;

public static class WebCaller
{
    public static async Task Use(MqantClient core)
    {
        var web = new WebClient(core, new CallOptions { TimeoutMs = 500, Qos = 1 });
        web.OnTick += t => System.Console.WriteLine(t.n);
        web.OnNews += n => System.Console.WriteLine(n.text + n.at);
        Kinds k = await web.Kinds(new Kinds { name = "x", count = 1, small = 2, big = 3UL, ratio = 0.5, ok = true, maybe = null, when = "2024-01-01T00:00:00Z", blob = new byte[] { 1 } });
        long count = await web.Count();
        List<WebapiItem> items = await web.Envelope(new Envelope { seq = 1, hint = "h", kind = 2, items = new List<WebapiItem>() });
        Dictionary<string, List<string>> m = await web.Map(new Dictionary<string, long> { { "a", 1 } });
        await web.Bare();
        await web.BareNR();
        string legacy = await web.Legacy(new Dictionary<string, object> { { "k", 1 } });
        KindsInline inline = k.inline;
        List<List<double?>> matrix = k.matrix;
        OtherItem other = k.other;
        string odd = k.odd_name + k.Untagged + k._;
        var cs = new CsClient(core);
        cs.OnPing += p => System.Console.WriteLine(p.seq);
        PutReply r = await cs.Put(new CsharpItem { Item = "i", @class = "c", odd_name_2 = "o", _9lives = 9, small = 1, wide = 2, maybeN = null, points = new List<CsharpItemPointsItem> { new CsharpItemPointsItem { X = 1, Y = 2 } } });
        await cs.Anon(new AnonRequest { name = "n" });
        List<List<CsharpItem>> lists = await cs.List();
        System.Console.WriteLine("" + count + items + m + legacy + inline + matrix + other + odd + r.ok + lists);
        core.Dispose();
    }

    public static MqantClient Connect(bool newtonsoft)
    {
        IJsonCodec json = new MiniJsonCodec();
#if MQANT_NEWTONSOFT
        if (newtonsoft)
        {
            json = new NewtonsoftJsonCodec();
        }
#endif
        return new MqantClient(new MqttConnection(new WebSocketTransport(new System.Uri("ws://127.0.0.1:3653/mqtt"))), json);
    }
}
