"""The MQTT transport: availability (last will), the daemon's topics, commands in and Home
Assistant discovery, over ``paho-mqtt`` 2.x with reconnect and republish.

The topics, their retain flags, QoS and payloads are the table in
:mod:`edge.publish.topics`; this module is the transport only.

While the broker is away, retained state is kept (the latest payload per topic) and
republished, with ``online`` and the discovery message, on every reconnect; other
messages are dropped and counted.  Only the derived numbers and labels the daemon
hands in are published: this module never sees audio or frames.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import HomeAssistantConfig, MqttConfig
from edge.lograte import RepeatLog
from edge.publish.discovery import discovery_payload
from edge.publish.topics import BY_NAME, DISCOVERY, Topics

log = logging.getLogger(__name__)

MAX_PUBLISH_BYTES = 64 * 1024
ONLINE, OFFLINE = "online", "offline"


def make_client(mqtt: MqttConfig, client_id: str | None = None) -> paho.Client:
    """A paho client with the configured credentials, TLS and reconnect backoff."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or mqtt.client_id,
                         protocol=paho.MQTTv311, clean_session=True)
    if mqtt.username is not None:
        client.username_pw_set(mqtt.username, mqtt.password)
    if mqtt.tls.enabled:
        client.tls_set(
            ca_certs=str(mqtt.tls.ca_file) if mqtt.tls.ca_file else None,
            certfile=str(mqtt.tls.cert_file) if mqtt.tls.cert_file else None,
            keyfile=str(mqtt.tls.key_file) if mqtt.tls.key_file else None,
        )
        client.tls_insecure_set(mqtt.tls.insecure)
    client.reconnect_delay_set(min_delay=max(1, round(mqtt.reconnect_min_s)),
                               max_delay=max(1, round(mqtt.reconnect_max_s)))
    return client


_CAUSES = (  # (kind, words in the reason, what to check), most specific first
    ("client-certificate", ("certificate_required", "certificate required"),
     "; the broker requires a client certificate: set mqtt.tls.cert_file and key_file"),
    ("hostname", ("mismatch", "hostname"), "; the broker's certificate does not name mqtt.host"),
    ("ca", ("certificate_verify_failed", "unknown ca"),
     "; check mqtt.tls.ca_file (the CA that signed the broker's certificate)"),
)
_SPECIFIC = {kind for kind, _, _ in _CAUSES}
_CLOSED = ("reset by peer", "wrong_version", "eof", "record layer")  # TLS: closed, no reason


def _cause(reason: str, tls: bool, client_cert: bool) -> tuple[str, str]:
    """``(kind, hint)`` of a connection failure's reason: the kind compared for the log,
    the hint saying what to check (TLS ones above all)."""
    r = reason.lower()
    for kind, words, hint in _CAUSES:
        if any(w in r for w in words):
            return kind, hint
    if tls and any(w in r for w in _CLOSED):
        return "closed", ("; is mqtt.port a TLS listener?" + (
            "" if client_cert else " (if it is, it may require a client certificate: "
                                   "mqtt.tls.cert_file and key_file)"))
    return reason, ""


def encode(payload: Any) -> bytes:
    """Compact JSON; NaN/inf and non-JSON types are refused (ValueError/TypeError)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")


class MqttPublisher:
    """The daemon's MQTT side.  Thread-safe: any stage may call ``publish``.

    ``on_command(payload, topic)`` is called on paho's network thread for every
    ``…/cmd`` message; it must return quickly and never raise (errors are logged).
    A *retained* ``…/cmd`` message (the broker replays it at every subscribe: a retained
    ``pause`` would pause the device at every boot and reconnect) is not a command: it
    goes to ``on_retained(payload, topic)`` instead (or is logged and dropped).
    """

    def __init__(self, mqtt: MqttConfig, ha: HomeAssistantConfig,
                 on_command: Callable[[bytes, str], None] | None = None,
                 on_retained: Callable[[bytes, str], None] | None = None) -> None:
        self.cfg = mqtt
        self.ha = ha
        self.topics = Topics.of(mqtt, ha)
        self.on_command = on_command
        self.on_retained = on_retained
        self._discovery = (
            encode(discovery_payload(mqtt.device_id, self.topics.base, ha.name))
            if ha.discovery else None
        )
        self._lock = threading.Lock()
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._connected = False
        self._closing = False
        self.counters = {"published": 0, "dropped": 0, "connects": 0, "disconnects": 0,
                         "commands": 0, "retained_commands": 0, "connect_failures": 0}
        self.last_error: str | None = None  # why the last connection attempt failed
        self._socket_error: str | None = None  # paho's last error line (on_log)
        self._refused = False
        self._failures = RepeatLog(log, level=logging.ERROR)
        self._known: tuple[str, str] | None = None  # cause of the last failure that gave one
        c = self.client = make_client(mqtt)
        avail = BY_NAME["availability"]
        c.will_set(self.topics.availability, OFFLINE, qos=avail.qos, retain=True)
        c.max_inflight_messages_set(100)
        c.max_queued_messages_set(5000)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_connect_fail = self._on_connect_fail
        c.on_log = self._on_log

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Connect in the background; paho's thread retries with backoff until stop()."""
        log.info("MQTT: connecting to %s:%d as %s (topics %s/…)", self.cfg.host, self.cfg.port,
                 self.cfg.client_id, self.topics.base)
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def stop(self, timeout: float = 1.0) -> None:
        """Publish ``offline`` (waiting up to ``timeout``), disconnect and stop the thread."""
        with self._lock:
            self._closing = True
            connected = self._connected
        if connected:
            try:
                info = self.client.publish(self.topics.availability, OFFLINE,
                                           qos=BY_NAME["availability"].qos, retain=True)
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:
                log.warning("MQTT: could not publish offline: %s", exc)
        self.client.disconnect()
        stopper = threading.Thread(target=self.client.loop_stop, daemon=True)
        stopper.start()
        stopper.join(timeout)

    # -- publishing --------------------------------------------------------------------
    def publish(self, name: str, payload: dict[str, Any]) -> None:
        """Publish ``payload`` on the topic ``name`` of the topic table, with its QoS and
        retain flag (KeyError for a topic not in the table)."""
        t = BY_NAME[name]
        self._publish(getattr(self.topics, name), payload, t.qos, bool(t.retain))

    def _publish(self, topic: str, payload: dict[str, Any], qos: int, retain: bool) -> None:
        try:
            data = encode(payload)
        except (TypeError, ValueError) as exc:
            log.error("MQTT: not publishing to %s: payload is not valid JSON (%s)", topic, exc)
            self.counters["dropped"] += 1
            return
        if len(data) > MAX_PUBLISH_BYTES:
            log.error("MQTT: not publishing %d bytes to %s (limit %d)", len(data), topic,
                      MAX_PUBLISH_BYTES)
            self.counters["dropped"] += 1
            return
        with self._lock:
            if retain:
                self._retained[topic] = (data, qos)
            if not self._connected or self._closing:
                self.counters["dropped"] += 0 if retain else 1
                return
            self._send(topic, data, qos, retain)

    def _send(self, topic: str, data: bytes | str, qos: int, retain: bool) -> None:
        info = self.client.publish(topic, data, qos=qos, retain=retain)
        if info.rc == paho.MQTT_ERR_SUCCESS:
            self.counters["published"] += 1
        else:
            self.counters["dropped"] += 1
            log.debug("MQTT: publish to %s failed: %s", topic, paho.error_string(info.rc))

    # -- paho callbacks (network thread; must never raise) --------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        try:
            if reason_code.is_failure:
                self._refused = True  # the disconnect that follows is this failure
                self._failed(f"the broker refused the connection: {reason_code}")
                return
            self._socket_error = self.last_error = self._known = None
            self._failures.clear("connect", f"MQTT: connected to {self.cfg.host}:"
                                            f"{self.cfg.port} again")
            client.subscribe([(self.topics.cmd, BY_NAME["cmd"].qos), (self.topics.ha_status, 1)])
            with self._lock:
                self._connected = True
                self.counters["connects"] += 1
                self._send(self.topics.availability, ONLINE, BY_NAME["availability"].qos, True)
                if self._discovery is not None:
                    self._send(self.topics.discovery, self._discovery, DISCOVERY.qos, True)
                for topic, (data, qos) in self._retained.items():
                    self._send(topic, data, qos, True)
            log.info("MQTT: connected to %s:%d; online, %d retained topic(s) republished",
                     self.cfg.host, self.cfg.port, len(self._retained))
        except Exception:  # noqa: BLE001 - a callback must not kill paho's thread
            log.exception("MQTT: error in on_connect")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
            if was:
                self.counters["disconnects"] += 1
        if was and not self._closing:
            log.warning("MQTT: disconnected from %s:%d (%s); reconnecting with backoff",
                        self.cfg.host, self.cfg.port, reason_code)
        elif self._refused:
            self._refused = False
        elif not was and not self._closing and reason_code.is_failure:
            # closed before CONNACK: e.g. mutual TLS without a client certificate
            self._failed(self._socket_error or str(reason_code))

    def _on_connect_fail(self, client, userdata) -> None:
        """paho's connect-failure path (socket or TLS handshake): called inside its
        ``except OSError``, so the exception is the reason."""
        exc = sys.exc_info()[1]
        self._failed(str(exc) if exc is not None else (self._socket_error or "unknown error"))

    def _on_log(self, client, userdata, level, message) -> None:
        if level == paho.MQTT_LOG_ERR:
            self._socket_error = message

    def _failed(self, reason: str) -> None:
        """A failed connection attempt: counted; logged once, then counted in the log
        every minute while the same cause repeats (paho keeps retrying with backoff).
        A TLS session closed without a reason, after one that gave it, is taken for the
        same cause: a broker refusing a client certificate under TLS 1.3 sends its alert
        after the client's handshake, and the alert is lost when the client's CONNECT
        crosses the close (so the same refusal reads "EOF" one attempt in a few)."""
        self.counters["connect_failures"] += 1
        self.last_error = reason
        self._socket_error = None
        tls = self.cfg.tls.enabled
        cause = _cause(reason, tls, self.cfg.tls.cert_file is not None)
        if cause[0] == "closed" and self._known is not None:
            cause = self._known
        elif cause[0] in _SPECIFIC:
            self._known = cause
        self._failures.report("connect", f"MQTT: cannot connect to {self.cfg.host}:"
                              f"{self.cfg.port}{' (TLS)' if tls else ''}: {reason}"
                              f"{cause[1]}; retrying with backoff", kind=cause[0])

    def _on_message(self, client, userdata, msg) -> None:
        try:
            if msg.topic == self.topics.cmd and msg.retain:
                self.counters["retained_commands"] += 1
                if self.on_retained is not None:
                    self.on_retained(msg.payload, msg.topic)
                else:
                    log.warning("MQTT: ignoring a retained message on %s", msg.topic)
            elif msg.topic == self.topics.cmd:
                self.counters["commands"] += 1
                if self.on_command is not None:
                    self.on_command(msg.payload, msg.topic)
            elif msg.topic == self.topics.ha_status and msg.payload.strip() == b"online":
                if self._discovery is not None:
                    with self._lock:
                        if self._connected:
                            self._send(self.topics.discovery, self._discovery, DISCOVERY.qos,
                                       True)
                    log.info("MQTT: Home Assistant is online; discovery re-sent")
        except Exception:  # noqa: BLE001 - a callback must not kill paho's thread
            log.exception("MQTT: error handling a message on %s", msg.topic)


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    ts: float

    def json(self) -> Any:
        """The payload as JSON, or as text when it is not JSON."""
        try:
            return json.loads(self.payload)
        except ValueError:
            return self.payload.decode("utf-8", "replace")


class Subscriber:
    """Subscribes to ``topics`` and queues every :class:`Message` (listen, demo, tests)."""

    def __init__(self, mqtt: MqttConfig, topics: list[str], client_id: str | None = None) -> None:
        self._time = time.time
        self.topics = topics
        self.messages: queue.Queue[Message] = queue.Queue()
        self._subscribed = threading.Event()
        self.cfg = mqtt
        self.client = make_client(mqtt, client_id or f"moodedge-listen-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a, **k: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if not reason_code.is_failure:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg) -> None:
        self.messages.put(Message(msg.topic, bytes(msg.payload), bool(msg.retain), self._time()))

    def start(self, timeout: float = 10.0) -> Subscriber:
        """Connect and wait until subscribed; TimeoutError names the broker."""
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise TimeoutError(f"no MQTT broker answered at {self.cfg.host}:{self.cfg.port} "
                               f"within {timeout:g} s")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
