/**
 * Typed events for the binding's classes: `on` adds a handler (and returns what removes it), `emit` calls each
 * handler of a type with the payload. A handler that throws does not stop the others; what happens to its error is
 * the owner's (`onError`).
 */
export declare class Emitter<E> {
    private readonly onError;
    private readonly handlers;
    constructor(onError: (type: keyof E, error: unknown) => void);
    on<K extends keyof E>(type: K, handler: (payload: E[K]) => void): () => void;
    off<K extends keyof E>(type: K, handler: (payload: E[K]) => void): void;
    emit<K extends keyof E>(type: K, payload: E[K]): void;
}
