/**
 * Typed events for the binding's classes: `on` adds a handler (and returns what removes it), `emit` calls each
 * handler of a type with the payload. A handler that throws does not stop the others; what happens to its error is
 * the owner's (`onError`).
 */
export class Emitter {
    onError;
    handlers = new Map();
    constructor(onError) {
        this.onError = onError;
    }
    on(type, handler) {
        let set = this.handlers.get(type);
        if (!set) {
            set = new Set();
            this.handlers.set(type, set);
        }
        set.add(handler);
        return () => this.off(type, handler);
    }
    off(type, handler) {
        this.handlers.get(type)?.delete(handler);
    }
    emit(type, payload) {
        for (const h of [...(this.handlers.get(type) ?? [])]) {
            try {
                h(payload);
            }
            catch (e) {
                this.onError(type, e);
            }
        }
    }
}
