/**
 * Safety numbers: what two users compare to know that no one sits between
 * them. Made from the users' master keys, so a new device does not change
 * it, as the Rust client makes it: 60 digits in 12 groups of 5, each user's
 * half 30 digits from 5200 rounds of SHA-512 over version, master key and
 * user id, the two halves in sorted order so both sides read the same number.
 *
 * @module
 */
/**
 * The safety number of two users from their master keys (base64): the same
 * whichever side computes it. 60 digits in 12 groups of 5, spaced.
 */
export declare function safetyNumber(userA: string, masterA: string, userB: string, masterB: string): Promise<string>;
