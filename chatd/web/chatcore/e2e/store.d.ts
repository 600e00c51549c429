/**
 * The machine's whole state as bytes, encrypted at rest with WebCrypto
 * AES-GCM under a `CryptoKey` the application gives (in browsers a
 * non-extractable key kept in IndexedDB; in Node any AES-GCM key), and where
 * those bytes are kept ({@link MachineStore}).
 *
 * Layout: `CCEW` (chatcore end-to-end, web), a format byte (1), a 12-byte
 * random nonce, then the AES-256-GCM ciphertext of a MessagePack map (named
 * fields, `schema` inside) with the 5 header bytes as associated data.
 * vodozemac's objects are kept as its pickles, under a fixed pickle key: the
 * AES-GCM layer is what protects them. (The Rust client's state, `CCE2`, is
 * another format: each client reads its own.)
 *
 * @module
 */
import type { Vodozemac } from "../vodozemac.js";
import { MachineState } from "./state.js";
/** Where a device's encrypted state is kept between runs. */
export interface MachineStore {
    /** The bytes saved last, or `null` when nothing was saved yet. */
    load(): Promise<Uint8Array | null>;
    /** Replaces the saved bytes; when it resolves, a later `load` sees them (also after a crash, for a durable store). */
    save(bytes: Uint8Array): Promise<void>;
}
/** Keeps the state in memory: for tests, and apps that start afresh each time. */
export declare class MemoryStore implements MachineStore {
    private bytes;
    /** The bytes saved last (a copy). */
    load(): Promise<Uint8Array | null>;
    /** Keeps a copy of `bytes`. */
    save(bytes: Uint8Array): Promise<void>;
}
/**
 * A new AES-256-GCM key for the state at rest: non-extractable unless
 * `extractable` (a browser keeps the `CryptoKey` itself in IndexedDB; a Node
 * app that keeps the key elsewhere needs it extractable, or imports its own
 * 32 bytes with `crypto.subtle.importKey("raw", bytes, "AES-GCM", false, ["encrypt", "decrypt"])`).
 */
export declare function generateStoreKey(extractable?: boolean): Promise<CryptoKey>;
/** The state as a MessagePack map (pickled now, synchronously: later changes do not leak in). */
export declare function snapshot(s: MachineState): Uint8Array;
/** Encrypts a snapshot under the layout of the module documentation. */
export declare function seal(data: Uint8Array, key: CryptoKey): Promise<Uint8Array>;
/** Decrypts bytes written by {@link seal}. */
export declare function open(bytes: Uint8Array, key: CryptoKey): Promise<Uint8Array>;
/** Rebuilds the state of a snapshot; every vodozemac object made so far is freed when it fails. */
export declare function restore(vz: Vodozemac, data: Uint8Array): MachineState;
/** Frees every vodozemac object of the state. */
export declare function freeState(s: MachineState): void;
