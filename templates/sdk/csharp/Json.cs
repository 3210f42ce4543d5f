// The SDK's JSON seam and its zero-dependency codec. Generated message
// classes are plain public fields named as on the wire, so any JSON library
// that maps fields by name works; WireName covers the names C# cannot spell.

using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace Mqant
{
    /// <summary>
    /// IJsonCodec turns request bodies into JSON and replies and pushes back
    /// into typed values. MiniJsonCodec needs nothing; NewtonsoftJsonCodec
    /// (compiled with MQANT_NEWTONSOFT) uses Newtonsoft.Json, Unity's own.
    /// </summary>
    public interface IJsonCodec
    {
        /// <summary>Encode returns the JSON text of value.</summary>
        string Encode(object value);

        /// <summary>Decode reads json as a value of type; it throws on malformed JSON or a value of the wrong kind.</summary>
        object Decode(string json, Type type);
    }

    /// <summary>WireName gives a field's JSON name where C# cannot spell it (odd-name, a clash with its class).</summary>
    [AttributeUsage(AttributeTargets.Field | AttributeTargets.Property)]
    public sealed class WireNameAttribute : Attribute
    {
        /// <summary>The member's name in JSON.</summary>
        public readonly string Name;

        /// <summary>Creates the attribute for JSON name name.</summary>
        public WireNameAttribute(string name)
        {
            Name = name;
        }
    }

    /// <summary>
    /// Preserve keeps a class and its fields through Unity's managed code
    /// stripping: the linker honours any attribute of this name, and the
    /// codecs reach message fields only by reflection.
    /// </summary>
    [AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct | AttributeTargets.Field | AttributeTargets.Method | AttributeTargets.Constructor)]
    public sealed class PreserveAttribute : Attribute
    {
    }

    /// <summary>
    /// MiniJsonCodec is a small reflection-based codec with no dependencies:
    /// public fields (named by WireName or as declared), strings, booleans,
    /// every integer and floating type, their Nullable forms, byte[] as
    /// base64, List&lt;T&gt;, arrays, Dictionary&lt;string, T&gt; and object, which
    /// reads as Dictionary&lt;string, object&gt;, List&lt;object&gt;, string,
    /// long, double, bool or null.
    /// </summary>
    public sealed class MiniJsonCodec : IJsonCodec
    {
        private readonly Dictionary<Type, FieldMap> fieldMaps = new Dictionary<Type, FieldMap>();

        private sealed class FieldMap
        {
            public readonly List<KeyValuePair<string, FieldInfo>> Ordered = new List<KeyValuePair<string, FieldInfo>>();
            public readonly Dictionary<string, FieldInfo> ByName = new Dictionary<string, FieldInfo>();
        }

        /// <inheritdoc/>
        public string Encode(object value)
        {
            var sb = new StringBuilder();
            Write(sb, value);
            return sb.ToString();
        }

        /// <inheritdoc/>
        public object Decode(string json, Type type)
        {
            var p = new JsonParser(json);
            object tree = p.ParseDocument();
            return Convert(tree, type, "$");
        }

        private FieldMap Fields(Type t)
        {
            lock (fieldMaps)
            {
                FieldMap m;
                if (fieldMaps.TryGetValue(t, out m))
                {
                    return m;
                }
                m = new FieldMap();
                foreach (var f in t.GetFields(BindingFlags.Public | BindingFlags.Instance))
                {
                    var a = (WireNameAttribute)Attribute.GetCustomAttribute(f, typeof(WireNameAttribute));
                    string name = a != null ? a.Name : f.Name;
                    m.Ordered.Add(new KeyValuePair<string, FieldInfo>(name, f));
                    m.ByName[name] = f;
                }
                fieldMaps[t] = m;
                return m;
            }
        }

        private void Write(StringBuilder sb, object v)
        {
            if (v == null)
            {
                sb.Append("null");
                return;
            }
            var s = v as string;
            if (s != null)
            {
                WriteString(sb, s);
                return;
            }
            if (v is bool)
            {
                sb.Append((bool)v ? "true" : "false");
                return;
            }
            if (v is double || v is float)
            {
                double d = System.Convert.ToDouble(v, CultureInfo.InvariantCulture);
                if (double.IsNaN(d) || double.IsInfinity(d))
                {
                    throw new FormatException("JSON has no form for " + d);
                }
                sb.Append(d.ToString("R", CultureInfo.InvariantCulture));
                return;
            }
            if (v is Enum)
            {
                v = System.Convert.ChangeType(v, Enum.GetUnderlyingType(v.GetType()), CultureInfo.InvariantCulture);
            }
            if (v is IConvertible && v.GetType().IsPrimitive || v is decimal)
            {
                sb.Append(((IConvertible)v).ToString(CultureInfo.InvariantCulture));
                return;
            }
            var bytes = v as byte[];
            if (bytes != null)
            {
                WriteString(sb, System.Convert.ToBase64String(bytes));
                return;
            }
            var dict = v as IDictionary;
            if (dict != null)
            {
                sb.Append('{');
                bool first = true;
                foreach (DictionaryEntry e in dict)
                {
                    if (!first)
                    {
                        sb.Append(',');
                    }
                    first = false;
                    WriteString(sb, System.Convert.ToString(e.Key, CultureInfo.InvariantCulture));
                    sb.Append(':');
                    Write(sb, e.Value);
                }
                sb.Append('}');
                return;
            }
            var list = v as IEnumerable;
            if (list != null)
            {
                sb.Append('[');
                bool first = true;
                foreach (object e in list)
                {
                    if (!first)
                    {
                        sb.Append(',');
                    }
                    first = false;
                    Write(sb, e);
                }
                sb.Append(']');
                return;
            }
            sb.Append('{');
            bool firstField = true;
            foreach (var kv in Fields(v.GetType()).Ordered)
            {
                if (!firstField)
                {
                    sb.Append(',');
                }
                firstField = false;
                WriteString(sb, kv.Key);
                sb.Append(':');
                Write(sb, kv.Value.GetValue(v));
            }
            sb.Append('}');
        }

        private static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 0x20 || c == '\u2028' || c == '\u2029')
                        {
                            sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        }
                        else
                        {
                            sb.Append(c);
                        }
                        break;
                }
            }
            sb.Append('"');
        }

        // Convert maps a parsed tree (Dictionary, List, string, JsonNumber,
        // bool, null) onto type t; path names the value in errors.
        private object Convert(object v, Type t, string path)
        {
            if (t == typeof(object))
            {
                return Plain(v);
            }
            Type under = Nullable.GetUnderlyingType(t);
            if (v == null)
            {
                if (t.IsValueType && under == null)
                {
                    return Activator.CreateInstance(t); // as encoding/json: null leaves the zero value
                }
                return null;
            }
            if (under != null)
            {
                t = under;
            }
            if (t == typeof(string))
            {
                var s = v as string;
                if (s == null)
                {
                    throw Mismatch(path, "a string", v);
                }
                return s;
            }
            if (t == typeof(bool))
            {
                if (!(v is bool))
                {
                    throw Mismatch(path, "a boolean", v);
                }
                return v;
            }
            if (t.IsPrimitive || t == typeof(decimal) || t.IsEnum)
            {
                var n = v as JsonNumber;
                if (n == null)
                {
                    throw Mismatch(path, "a number", v);
                }
                try
                {
                    if (t.IsEnum)
                    {
                        return Enum.ToObject(t, long.Parse(n.Text, NumberStyles.Integer, CultureInfo.InvariantCulture));
                    }
                    NumberStyles style = t == typeof(double) || t == typeof(float) || t == typeof(decimal) ? NumberStyles.Float : NumberStyles.Integer;
                    object parsed = t.GetMethod("Parse", new[] { typeof(string), typeof(NumberStyles), typeof(IFormatProvider) })
                        .Invoke(null, new object[] { n.Text, style, CultureInfo.InvariantCulture });
                    return parsed;
                }
                catch (TargetInvocationException e)
                {
                    throw new FormatException(path + ": " + n.Text + " is not a " + t.Name + ": " + e.InnerException.Message);
                }
            }
            if (t == typeof(byte[]))
            {
                var s = v as string;
                if (s == null)
                {
                    throw Mismatch(path, "a base64 string", v);
                }
                return System.Convert.FromBase64String(s);
            }
            if (t.IsArray)
            {
                var items = v as List<object>;
                if (items == null)
                {
                    throw Mismatch(path, "an array", v);
                }
                Type et = t.GetElementType();
                Array arr = Array.CreateInstance(et, items.Count);
                for (int i = 0; i < items.Count; i++)
                {
                    arr.SetValue(Convert(items[i], et, path + "[" + i + "]"), i);
                }
                return arr;
            }
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>))
            {
                var items = v as List<object>;
                if (items == null)
                {
                    throw Mismatch(path, "an array", v);
                }
                Type et = t.GetGenericArguments()[0];
                var list = (IList)Activator.CreateInstance(t);
                for (int i = 0; i < items.Count; i++)
                {
                    list.Add(Convert(items[i], et, path + "[" + i + "]"));
                }
                return list;
            }
            var obj = v as Dictionary<string, object>;
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            {
                if (obj == null)
                {
                    throw Mismatch(path, "an object", v);
                }
                Type[] args = t.GetGenericArguments();
                if (args[0] != typeof(string))
                {
                    throw new FormatException(path + ": JSON object keys are strings, not " + args[0].Name);
                }
                var dict = (IDictionary)Activator.CreateInstance(t);
                foreach (var kv in obj)
                {
                    dict[kv.Key] = Convert(kv.Value, args[1], path + "." + kv.Key);
                }
                return dict;
            }
            if (obj == null)
            {
                throw Mismatch(path, "an object for " + t.Name, v);
            }
            object result = Activator.CreateInstance(t);
            FieldMap fields = Fields(t);
            foreach (var kv in obj)
            {
                FieldInfo f;
                if (fields.ByName.TryGetValue(kv.Key, out f))
                {
                    f.SetValue(result, Convert(kv.Value, f.FieldType, path + "." + kv.Key));
                }
            }
            return result;
        }

        // Plain turns the parser's numbers into long (integers that fit) or double.
        private static object Plain(object v)
        {
            var n = v as JsonNumber;
            if (n != null)
            {
                long l;
                if (long.TryParse(n.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l))
                {
                    return l;
                }
                return double.Parse(n.Text, NumberStyles.Float, CultureInfo.InvariantCulture);
            }
            var list = v as List<object>;
            if (list != null)
            {
                for (int i = 0; i < list.Count; i++)
                {
                    list[i] = Plain(list[i]);
                }
                return list;
            }
            var obj = v as Dictionary<string, object>;
            if (obj != null)
            {
                foreach (var k in new List<string>(obj.Keys))
                {
                    obj[k] = Plain(obj[k]);
                }
            }
            return v;
        }

        private static FormatException Mismatch(string path, string want, object got)
        {
            string kind = got is string ? "a string" : got is bool ? "a boolean" : got is JsonNumber ? "a number"
                : got is List<object> ? "an array" : "an object";
            return new FormatException(path + ": want " + want + ", got " + kind);
        }
    }

    // JsonNumber keeps a number's text so it converts to the target type without loss.
    internal sealed class JsonNumber
    {
        public readonly string Text;

        public JsonNumber(string text)
        {
            Text = text;
        }
    }

    // JsonParser is a strict RFC 8259 parser into Dictionary/List/string/JsonNumber/bool/null.
    internal sealed class JsonParser
    {
        private const int MaxDepth = 512;
        private readonly string s;
        private int i;

        public JsonParser(string s)
        {
            this.s = s;
        }

        public object ParseDocument()
        {
            object v = Value(0);
            Space();
            if (i != s.Length)
            {
                throw Error("text after the JSON value");
            }
            return v;
        }

        private FormatException Error(string what)
        {
            return new FormatException("invalid JSON at offset " + i + ": " + what);
        }

        private void Space()
        {
            while (i < s.Length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            {
                i++;
            }
        }

        private object Value(int depth)
        {
            if (depth > MaxDepth)
            {
                throw Error("nested too deeply");
            }
            Space();
            if (i >= s.Length)
            {
                throw Error("unexpected end");
            }
            char c = s[i];
            switch (c)
            {
                case '{':
                    {
                        i++;
                        var obj = new Dictionary<string, object>();
                        Space();
                        if (i < s.Length && s[i] == '}')
                        {
                            i++;
                            return obj;
                        }
                        for (;;)
                        {
                            Space();
                            if (i >= s.Length || s[i] != '"')
                            {
                                throw Error("want a member name");
                            }
                            string key = String();
                            Space();
                            Expect(':');
                            obj[key] = Value(depth + 1);
                            Space();
                            if (i < s.Length && s[i] == ',')
                            {
                                i++;
                                continue;
                            }
                            Expect('}');
                            return obj;
                        }
                    }
                case '[':
                    {
                        i++;
                        var list = new List<object>();
                        Space();
                        if (i < s.Length && s[i] == ']')
                        {
                            i++;
                            return list;
                        }
                        for (;;)
                        {
                            list.Add(Value(depth + 1));
                            Space();
                            if (i < s.Length && s[i] == ',')
                            {
                                i++;
                                continue;
                            }
                            Expect(']');
                            return list;
                        }
                    }
                case '"':
                    return String();
                case 't':
                    Word("true");
                    return true;
                case 'f':
                    Word("false");
                    return false;
                case 'n':
                    Word("null");
                    return null;
                default:
                    return Number();
            }
        }

        private void Expect(char c)
        {
            if (i >= s.Length || s[i] != c)
            {
                throw Error("want '" + c + "'");
            }
            i++;
        }

        private void Word(string w)
        {
            if (string.CompareOrdinal(s, i, w, 0, w.Length) != 0)
            {
                throw Error("want " + w);
            }
            i += w.Length;
        }

        private JsonNumber Number()
        {
            int start = i;
            if (i < s.Length && s[i] == '-')
            {
                i++;
            }
            int digits = Digits();
            if (digits == 0 || (digits > 1 && s[i - digits] == '0'))
            {
                throw Error("malformed number");
            }
            if (i < s.Length && s[i] == '.')
            {
                i++;
                if (Digits() == 0)
                {
                    throw Error("malformed number");
                }
            }
            if (i < s.Length && (s[i] == 'e' || s[i] == 'E'))
            {
                i++;
                if (i < s.Length && (s[i] == '+' || s[i] == '-'))
                {
                    i++;
                }
                if (Digits() == 0)
                {
                    throw Error("malformed number");
                }
            }
            return new JsonNumber(s.Substring(start, i - start));
        }

        private int Digits()
        {
            int n = 0;
            while (i < s.Length && s[i] >= '0' && s[i] <= '9')
            {
                i++;
                n++;
            }
            return n;
        }

        private string String()
        {
            i++; // the opening quote
            var sb = new StringBuilder();
            for (;;)
            {
                if (i >= s.Length)
                {
                    throw Error("unterminated string");
                }
                char c = s[i++];
                if (c == '"')
                {
                    return sb.ToString();
                }
                if (c < 0x20)
                {
                    throw Error("control character in string");
                }
                if (c != '\\')
                {
                    sb.Append(c);
                    continue;
                }
                if (i >= s.Length)
                {
                    throw Error("unterminated string");
                }
                char e = s[i++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        int code;
                        if (i + 4 > s.Length || !int.TryParse(s.Substring(i, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out code))
                        {
                            throw Error("malformed \\u escape");
                        }
                        i += 4;
                        sb.Append((char)code); // surrogate pairs arrive as two escapes and stay two chars
                        break;
                    default:
                        throw Error("unknown escape \\" + e);
                }
            }
        }
    }
}
