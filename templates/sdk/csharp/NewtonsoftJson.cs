// The Newtonsoft.Json codec: compiled only with the MQANT_NEWTONSOFT symbol,
// so the SDK itself needs no package. In Unity, add the package
// com.unity.nuget.newtonsoft-json and define MQANT_NEWTONSOFT (Player
// Settings, Scripting Define Symbols).

#if MQANT_NEWTONSOFT
using System;
using System.Reflection;
using Newtonsoft.Json;
using Newtonsoft.Json.Serialization;

namespace Mqant
{
    /// <summary>NewtonsoftJsonCodec is IJsonCodec over Newtonsoft.Json (6.0 and later), honouring WireName.</summary>
    public sealed class NewtonsoftJsonCodec : IJsonCodec
    {
        private readonly JsonSerializerSettings settings;

        /// <summary>Creates the codec with mqant's settings: names as declared, date-like strings left as strings.</summary>
        public NewtonsoftJsonCodec()
        {
            settings = new JsonSerializerSettings
            {
                ContractResolver = new WireNameResolver(),
                // A string field holding an RFC 3339 time must stay that string.
                DateParseHandling = DateParseHandling.None,
                MissingMemberHandling = MissingMemberHandling.Ignore,
            };
        }

        /// <inheritdoc/>
        public string Encode(object value)
        {
            return JsonConvert.SerializeObject(value, settings);
        }

        /// <inheritdoc/>
        public object Decode(string json, Type type)
        {
            return JsonConvert.DeserializeObject(json, type, settings);
        }

        private sealed class WireNameResolver : DefaultContractResolver
        {
            protected override JsonProperty CreateProperty(MemberInfo member, MemberSerialization serialization)
            {
                JsonProperty p = base.CreateProperty(member, serialization);
                var a = (WireNameAttribute)Attribute.GetCustomAttribute(member, typeof(WireNameAttribute));
                if (a != null)
                {
                    p.PropertyName = a.Name;
                }
                return p;
            }
        }
    }
}
#endif
