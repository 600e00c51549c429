/**
 * End-to-end encryption for the TypeScript binding, byte-compatible with the
 * Rust client (`chatcore_client::e2e` and `secure`): the sans-IO
 * {@link Machine}, its encrypted state at rest ({@link MachineStore}), and
 * {@link SecureChat}, the machine wired to a {@link ChatClient}.
 *
 * ```ts
 * import { ChatClient, msgpackCodec } from "@chatcore/client";
 * import { SecureChat, MemoryStore, generateStoreKey } from "@chatcore/client/e2e";
 * const client = new ChatClient({ url, codec: msgpackCodec });
 * const secure = new SecureChat(client, { store: new MemoryStore(), key: await generateStoreKey() });
 * await client.login({ login: "alice", password });
 * await secure.start();
 * secure.on("message", (m) => console.log(m.text));
 * await secure.sendEncrypted(conv, "only the members' devices read this");
 * ```
 *
 * @module
 */
export { Machine, seal } from "./machine.js";
export { BACKUP_KEYS_PER_PUT, BACKUP_V1, RecoveryKey, backupKeyText, type BackupBatch, type NewBackup, } from "./backup.js";
export { E2eError, isE2eError, type E2eErrorCode } from "./errors.js";
export { ONE_TIME_KEY_TARGET, type KeyUpload } from "./account.js";
export type { DeviceChange, DeviceTrust, MasterKeyUpload, UserKeys } from "./devices.js";
export { delivered, type Outcome, type Received, type ToDeviceOut } from "./olm.js";
export { MAX_SESSION_AGE, MAX_SESSION_MESSAGES, type Decrypted, type Encrypted, type EncryptedContent, type ExportedRoomKey, } from "./megolm.js";
export type { SessionRef, ToDeviceIn } from "./state.js";
export { safetyNumber } from "./safety.js";
export { generateStoreKey, MemoryStore, open as unseal, type MachineStore } from "./store.js";
export { BrowserKeys, DEFAULT_DATABASE } from "./idb-store.js";
export { FileStore } from "./file-store.js";
export { MEGOLM_V1, OLM_V1, decodeBase64, encodeBase64, deviceKeysText, deviceSignatureText, masterKeyText, oneTimeKeyText, } from "./texts.js";
export { SecureChat, type SecureBody, type SecureChatEvents, type SecureChatOptions, type SecureMessage, type Restored, } from "./secure.js";
