/** PacketInfo is what the SDK reads of an incoming PUBLISH besides topic and payload. */
export interface PacketInfo {
    qos?: number;
    dup?: boolean;
    messageId?: number | undefined;
}
/**
 * The events and methods of an MQTT.js client the SDK also uses when the
 * connection has them: "connect" (with the CONNACK), "close" and "error"
 * tell it the connection's state; reconnect() is how it reconnects.
 */
export interface Lifecycle {
    on(event: string, listener: (...args: never[]) => void): unknown;
    removeListener(event: string, listener: (...args: never[]) => void): unknown;
    reconnect?(): unknown;
    readonly connected?: boolean;
    readonly disconnecting?: boolean;
}
/** ReconnectOptions tune how the SDK reconnects a lost connection. */
export interface ReconnectOptions {
    /** Milliseconds before the first attempt; each next one doubles it. Default 500. */
    initialDelay?: number;
    /** The cap of the delay, in milliseconds. Default 30000. */
    maxDelay?: number;
}
/**
 * ConnectionState is an event of the connection's life:
 * "connecting", an attempt starts; "connected", the gate accepted it, and
 * resumed says whether it kept the session (false: a new session, the app
 * must log in again); "reconnecting", the next attempt is in delay ms;
 * "disconnected", the connection is lost (calls in flight fail with code
 * "disconnected"); "closed", the SDK will not reconnect (the app ended the
 * connection, closed the client, or the gate refused the credentials:
 * error says which); "missed", the gate dropped pushes while the client was
 * away ($mqant/missed): dropped is how many. MQTT.js may deliver a resumed
 * session's first pushes ("missed" included) just before "connected".
 */
export type ConnectionState = {
    type: "connecting";
    attempt: number;
} | {
    type: "connected";
    resumed: boolean;
} | {
    type: "reconnecting";
    attempt: number;
    delay: number;
} | {
    type: "disconnected";
    reason: string;
} | {
    type: "closed";
    reason: string;
    error?: Error;
} | {
    type: "missed";
    dropped: number;
};
/** MISSED_TOPIC is the gate's reserved topic for pushes dropped while away. */
export declare const MISSED_TOPIC = "$mqant/missed";
export declare class Link {
    #private;
    state: ConnectionState["type"];
    constructor(conn: Lifecycle, reconnect: boolean | ReconnectOptions | undefined, onLost: (reason: string) => void);
    get up(): boolean;
    listen(fn: (state: ConnectionState) => void): () => void;
    emit(state: ConnectionState): void;
    fresh(topic: string, payload: Uint8Array | string, packet: PacketInfo | undefined): boolean;
    stop(reason: string, error?: Error): void;
}
/** StorageLike is the part of localStorage or sessionStorage sessionIdentity uses. */
export interface StorageLike {
    getItem(key: string): string | null;
    setItem(key: string, value: string): void;
}
/** SessionIdentity is what a client sends in CONNECT to resume its persistent session. */
export interface SessionIdentity {
    clientId: string;
    username: string;
    password: string;
}
/** IdentityOptions say where sessionIdentity keeps what it makes. */
export interface IdentityOptions {
    /** Prefix of the storage keys and of the client id. Default "mqant". */
    name?: string;
    /** The username; default a random one kept with the secret. */
    username?: string;
    /** Keeps the per-install username and secret. Default localStorage; null keeps them in memory. */
    install?: StorageLike | null;
    /** Keeps the client id, one per tab. Default sessionStorage; null keeps it in memory. */
    tab?: StorageLike | null;
}
/**
 * sessionIdentity returns the client id, username and password that let a
 * client resume its persistent session: the gate (without an auth hook)
 * resumes a session only for the username and password that created it. The
 * username and secret are made once per install (localStorage), the client
 * id once per tab (sessionStorage: two tabs are two sessions, a reload
 * resumes).
 */
export declare function sessionIdentity(options?: IdentityOptions): SessionIdentity;
/**
 * persistentOptions are the MQTT.js connect options for a persistent session
 * the SDK reconnects (MqantClient.of(conn, { reconnect: true })): clean
 * session 0 with identity, no reconnecting or queueing by MQTT.js itself.
 */
export declare function persistentOptions(identity?: SessionIdentity): SessionIdentity & {
    protocolVersion: 4;
    clean: false;
    reconnectPeriod: 0;
    queueQoSZero: false;
};
