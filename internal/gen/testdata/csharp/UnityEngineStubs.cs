// Stand-ins for the UnityEngine types the SDK's Unity files and the demo's
// MonoBehaviour use, so the test compiles them with mcs as Unity would.
namespace UnityEngine
{
    public class Object
    {
    }

    public class Component : Object
    {
    }

    public class Behaviour : Component
    {
        public bool enabled;
    }

    public class MonoBehaviour : Behaviour
    {
    }

    public static class Debug
    {
        public static void Log(object message)
        {
        }

        public static void LogError(object message)
        {
        }
    }

    public static class GUILayout
    {
        public static void Label(string text)
        {
        }

        public static string TextField(string text)
        {
            return text;
        }

        public static bool Button(string text)
        {
            return false;
        }
    }
}
