/**
 * Components loaded on first use, so the first bundle holds only what the first screen draws
 * (docs/benchmarks.md § Desktop app). `lazyComponent` wraps a dynamic import: until the chunk is
 * there it draws its `fallback` prop (nothing by default), then the component with the same props.
 * {@link preloadLazyComponents} fetches every chunk once the first screen is painted, so a dialog
 * opened by a shortcut is normally there at once.
 *
 * Not preact/compat's `lazy`/`Suspense`: importing preact/compat installs React-compatibility
 * hooks on every element of the app (event-prop renaming, controlled inputs), which changes how
 * the existing components behave; this is the small part of it the app needs.
 */
import { Fragment, h, type ComponentChildren, type ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";

const loaders: (() => Promise<unknown>)[] = [];

/** What a lazy component accepts besides its own props. */
export interface LazyProps {
  /** Drawn while the chunk loads (nothing when absent). */
  fallback?: ComponentChildren;
}

/** A component whose code is fetched on first render: `load` resolves to the component itself. */
export function lazyComponent<P extends object>(
  load: () => Promise<ComponentType<P>>,
): ComponentType<P & LazyProps> & { preload: () => Promise<ComponentType<P>> } {
  let loaded: ComponentType<P> | null = null;
  let pending: Promise<ComponentType<P>> | null = null;
  const preload = (): Promise<ComponentType<P>> => {
    if (pending === null) {
      pending = load().then(
        (component) => (loaded = component),
        (error: unknown) => {
          pending = null; // fetched again on the next render
          throw error;
        },
      );
    }
    return pending;
  };
  loaders.push(preload);

  function Lazy({ fallback, ...props }: P & LazyProps) {
    const [, setReady] = useState(loaded !== null);
    useEffect(() => {
      if (loaded !== null) return;
      let live = true;
      preload().then(
        () => live && setReady(true),
        () => undefined,
      );
      return () => {
        live = false;
      };
    }, []);
    if (loaded === null) return h(Fragment, null, fallback);
    return h(loaded, props as P);
  }
  return Object.assign(Lazy, { preload });
}

/** Starts loading every lazy component (idempotent); resolves when all have settled. */
export function preloadLazyComponents(): Promise<void> {
  return Promise.allSettled(loaders.map((load) => load())).then(() => undefined);
}
