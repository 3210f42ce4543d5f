import type { ConnectionState, PacketInfo, ReconnectOptions } from "./mqant-link.js";
export { MISSED_TOPIC, persistentOptions, sessionIdentity } from "./mqant-link.js";
export type { ConnectionState, IdentityOptions, PacketInfo, ReconnectOptions, SessionIdentity, StorageLike, } from "./mqant-link.js";
/**
 * Connection is the part of an MQTT client the SDK uses. An MQTT.js client
 * (`mqtt.connect(url)`) is one; so is anything else with these methods.
 * The gate sends replies and pushes to the connection without a SUBSCRIBE.
 */
export interface Connection {
    publish(topic: string, message: string, options: {
        qos: 0 | 1 | 2;
    }, callback: (error?: Error) => void): unknown;
    on(event: "message", listener: (topic: string, payload: Uint8Array, packet: PacketInfo) => void): unknown;
    removeListener(event: "message", listener: (topic: string, payload: Uint8Array, packet: PacketInfo) => void): unknown;
}
/** ClientOptions tune an MqantClient; they apply when MqantClient.of makes it. */
export interface ClientOptions {
    /**
     * Reconnect a lost connection (it must have MQTT.js's reconnect(), and
     * reconnectPeriod: 0 so MQTT.js does not reconnect too): true for the
     * defaults. Off by default.
     */
    reconnect?: boolean | ReconnectOptions;
}
/** AbortSignalLike is the part of an AbortSignal a call listens to. */
export interface AbortSignalLike {
    readonly aborted: boolean;
    addEventListener(type: "abort", listener: () => void): void;
    removeEventListener(type: "abort", listener: () => void): void;
}
/** CallOptions tune one call, or every call of a module client. */
export interface CallOptions {
    /** Milliseconds to wait for the reply; 0 waits without limit. Default 10000, the server's own RPC timeout. */
    timeout?: number;
    /** QoS of the request's PUBLISH. Default 0: the gate answers every request it receives. */
    qos?: 0 | 1 | 2;
    /** Aborting it rejects the call with code "aborted" (the server may still run the handler). */
    signal?: AbortSignalLike;
}
/**
 * ErrorCode says why a call failed: "remote", the server answered with an
 * error (the handler's error, or the gate's: serverCode says which);
 * "timeout", no reply in time; "publish", the request could not be sent;
 * "aborted", the call's signal fired; "closed", the MqantClient was closed;
 * "decode", the reply was not JSON; "disconnected", the connection was lost
 * (or was down) before the reply: the reply will never come, the server may
 * or may not have run the handler.
 */
export type ErrorCode = "remote" | "timeout" | "publish" | "aborted" | "closed" | "decode" | "disconnected";
/** MqantError is how calls fail. For code "remote", message is exactly the server's error text. */
export declare class MqantError extends Error {
    readonly code: ErrorCode;
    /** The request topic, with its msgid; the push topic for push decode errors. */
    readonly topic: string;
    /**
     * For code "remote", the server's stable code ("room_full", "not_found",
     * "error" for a handler's error without one: README "RPC"); "" otherwise
     * and from servers that send none.
     */
    readonly serverCode: string;
    constructor(code: ErrorCode, message: string, topic: string, serverCode?: string);
}
/** DEFAULT_TIMEOUT is the reply timeout of calls that set none, in milliseconds. */
export declare const DEFAULT_TIMEOUT = 10000;
/**
 * MqantClient carries requests and pushes over one connection. Module
 * clients made over the same connection share one, and so share msgids and
 * one "message" listener.
 */
export declare class MqantClient {
    #private;
    /**
     * of returns the MqantClient of a connection, made on first use with
     * options (later calls get that one: make it first to set options).
     */
    static of(conn: Connection | MqantClient, options?: ClientOptions): MqantClient;
    readonly connection: Connection;
    /** onError hears of pushes that are not JSON and of push listeners that threw. */
    onError: ((error: unknown) => void) | undefined;
    constructor(connection: Connection, options?: ClientOptions);
    /**
     * onState calls fn with every change of the connection's state (see
     * ConnectionState); it returns a function that stops it.
     */
    onState(fn: (state: ConnectionState) => void): () => void;
    /** state is the connection's last state: its type, "connecting" before any event. */
    get state(): ConnectionState["type"];
    /**
     * request publishes body as JSON on route/<msgid> and settles with the
     * reply on that topic: resolved with its Result, or rejected with an
     * MqantError whose message is its Error.
     */
    request<T>(route: string, body: unknown, options?: CallOptions): Promise<T>;
    /**
     * send publishes body as JSON on route without a msgid: the server runs
     * the handler and sends no reply. It resolves once the message is sent.
     */
    send(route: string, body: unknown, options?: {
        qos?: 0 | 1 | 2;
    }): Promise<void>;
    /** on calls fn with every push on topic, decoded; it returns a function that stops it. */
    on<T>(topic: string, fn: (msg: T) => void): () => void;
    /** pending is the number of calls waiting for their reply. */
    get pending(): number;
    /**
     * close stops listening to the connection and rejects every waiting call
     * with code "closed". It does not close the connection itself.
     */
    close(reason?: string): void;
}
