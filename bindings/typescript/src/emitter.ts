/**
 * Typed events for the binding's classes: `on` adds a handler (and returns what removes it), `emit` calls each
 * handler of a type with the payload. A handler that throws does not stop the others; what happens to its error is
 * the owner's (`onError`).
 */
export class Emitter<E> {
  private readonly handlers = new Map<keyof E, Set<(payload: never) => void>>();

  constructor(private readonly onError: (type: keyof E, error: unknown) => void) {}

  on<K extends keyof E>(type: K, handler: (payload: E[K]) => void): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler as (payload: never) => void);
    return () => this.off(type, handler);
  }

  off<K extends keyof E>(type: K, handler: (payload: E[K]) => void): void {
    this.handlers.get(type)?.delete(handler as (payload: never) => void);
  }

  emit<K extends keyof E>(type: K, payload: E[K]): void {
    for (const h of [...(this.handlers.get(type) ?? [])]) {
      try {
        (h as (p: E[K]) => void)(payload);
      } catch (e) {
        this.onError(type, e);
      }
    }
  }
}
