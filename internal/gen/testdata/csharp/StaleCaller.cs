// A game's call written against the first version of Greeter's request.
using System.Threading.Tasks;
using Mqant;
using Mqant.Api.Greeter;

public static class StaleCaller
{
    public static Task<GreetReply> Greet(MqantClient core)
    {
        return new GreeterClient(core).Greet(new GreetRequest { name = "ann" });
    }
}
