/**
 * Interception of a real client's method in integration tests: something happens right after a call
 * (a lease broken between two phases, a fault), the call itself goes through unchanged.
 */

type AsyncMethod = (...args: never[]) => Promise<unknown>;
type ArgsOf<M> = M extends (...args: infer A) => Promise<unknown> ? A : never;

/**
 * Replaces `target[name]` by a wrapper that calls the original, then `then` with the same
 * arguments, and returns the original's answer. Returns the function that puts the original back.
 */
export function afterCall<T extends object, K extends keyof T>(
  target: T,
  name: K,
  then: (...args: ArgsOf<T[K]>) => Promise<void> | void,
): () => void {
  const original = (target[name] as unknown as AsyncMethod).bind(target) as unknown as (
    ...args: unknown[]
  ) => Promise<unknown>;
  const wrapper = async (...args: unknown[]): Promise<unknown> => {
    const answer = await original(...args);
    await then(...(args as ArgsOf<T[K]>));
    return answer;
  };
  target[name] = wrapper as T[K];
  return () => {
    target[name] = original as T[K];
  };
}

/** `effect` on the first call only. */
export function once<A extends unknown[]>(
  effect: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  let done = false;
  return async (...args) => {
    if (done) return;
    done = true;
    await effect(...args);
  };
}
