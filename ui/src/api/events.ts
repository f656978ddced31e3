/**
 * Typed subscriptions to engine events, wrapping Tauri's `listen` (or the mock's emitter outside
 * Tauri). Each returns a function that stops listening.
 */
import { listen } from "@tauri-apps/api/event";
import { hasTauri, loadMock } from "./runtime";
import type { EngineEventName, EngineEvents } from "./types";

/** Stops a subscription. */
export type Unlisten = () => void;

/** Listens to one engine event with a typed payload. */
export async function onEngineEvent<E extends EngineEventName>(
  name: E,
  handler: (payload: EngineEvents[E]) => void,
): Promise<Unlisten> {
  if (hasTauri()) {
    return await listen<EngineEvents[E]>(name, (event) => handler(event.payload));
  }
  const mock = await loadMock();
  return mock.mockListen(name, handler);
}

/**
 * Subscribes to several events at once; the returned function stops them all, even if it is
 * called before every subscription has been set up.
 */
export function subscribeAll(
  handlers: { [E in EngineEventName]?: (payload: EngineEvents[E]) => void },
): Unlisten {
  let stopped = false;
  const unlisteners: Unlisten[] = [];
  for (const name of Object.keys(handlers) as EngineEventName[]) {
    const handler = handlers[name] as ((payload: unknown) => void) | undefined;
    if (handler === undefined) continue;
    void onEngineEvent(name, handler as never).then((unlisten) => {
      if (stopped) unlisten();
      else unlisteners.push(unlisten);
    });
  }
  return () => {
    stopped = true;
    for (const unlisten of unlisteners.splice(0)) unlisten();
  };
}
