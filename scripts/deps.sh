#!/usr/bin/env bash
# Installs what the tests need when it is missing: Debian's mosquitto clients
# and broker, python3-paho-mqtt, chromium, rabbitmq-server, prometheus (the
# real server a metrics test scrapes the cluster demo with), and mono (the C#
# compiler mcs, the runtime, Newtonsoft.Json) for the C# SDK tests.
set -euo pipefail

missing=()
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
/usr/bin/python3 -c 'import paho.mqtt.client' >/dev/null 2>&1 || missing+=(python3-paho-mqtt)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
command -v mcs >/dev/null 2>&1 || missing+=(mono-mcs libmono-system-runtime-serialization4.0-cil)
command -v mono >/dev/null 2>&1 || missing+=(mono-runtime)
[ -f /usr/lib/cli/Newtonsoft.Json-5.0/Newtonsoft.Json.dll ] || missing+=(libnewtonsoft-json5.0-cil)

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: not root; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
