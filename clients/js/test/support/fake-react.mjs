// Just enough of React's hook semantics to exercise react.mjs without installing React:
// useState (with updater functions and bail-out on an unchanged value), useRef, and
// useEffect with dependency arrays, cleanups before re-runs and on unmount. State set
// during effects or from outside re-renders on a microtask, batching like React 18.

export function createFakeReact() {
  let rendering = null;

  function slot(initialize) {
    const instance = rendering;
    if (!instance) throw new Error('hook called outside a component render');
    const index = instance.cursor++;
    if (!(index in instance.hooks)) instance.hooks[index] = initialize();
    return instance.hooks[index];
  }

  function useState(initial) {
    const instance = rendering;
    const state = slot(() => ({ value: typeof initial === 'function' ? initial() : initial }));
    state.set ??= (next) => {
      const value = typeof next === 'function' ? next(state.value) : next;
      if (Object.is(value, state.value)) return;
      state.value = value;
      instance.schedule();
    };
    return [state.value, state.set];
  }

  function useRef(initial) {
    return slot(() => ({ current: initial }));
  }

  function useEffect(effect, deps) {
    const instance = rendering;
    const state = slot(() => ({ deps: undefined, cleanup: undefined, ran: false }));
    const changed = !state.ran || !deps || !state.deps || deps.length !== state.deps.length
      || deps.some((dep, i) => !Object.is(dep, state.deps[i]));
    if (changed) instance.pending.push(() => {
      if (typeof state.cleanup === 'function') state.cleanup();
      state.cleanup = effect();
      state.deps = deps;
      state.ran = true;
    });
  }

  /** Mounts `Component(props)`; returns a handle to re-render, inspect and unmount it. */
  function render(Component, props) {
    const instance = {
      hooks: [],
      cursor: 0,
      pending: [],
      props,
      result: undefined,
      renders: 0,
      mounted: true,
      scheduled: false,
      watchers: new Set(),
      schedule() {
        if (!instance.mounted || instance.scheduled) return;
        instance.scheduled = true;
        queueMicrotask(() => {
          instance.scheduled = false;
          if (instance.mounted) run();
        });
      },
    };
    const run = () => {
      instance.cursor = 0;
      rendering = instance;
      try {
        instance.result = Component(instance.props);
      } finally {
        rendering = null;
      }
      instance.renders += 1;
      const effects = instance.pending.splice(0);
      for (const effect of effects) effect();
      for (const watcher of [...instance.watchers]) watcher();
    };
    run();
    return {
      get result() { return instance.result; },
      get renders() { return instance.renders; },
      rerender(nextProps) {
        instance.props = nextProps;
        run();
      },
      /** Resolves when `check(result)` holds after some render. */
      waitFor(check, { timeout = 10_000, what = 'a render' } = {}) {
        if (check(instance.result)) return Promise.resolve(instance.result);
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            instance.watchers.delete(watcher);
            reject(new Error(`waited ${timeout} ms for ${what}; last render returned ${JSON.stringify(summary(instance.result))}`));
          }, timeout);
          const watcher = () => {
            if (!check(instance.result)) return;
            clearTimeout(timer);
            instance.watchers.delete(watcher);
            resolve(instance.result);
          };
          instance.watchers.add(watcher);
        });
      },
      unmount() {
        if (!instance.mounted) return;
        instance.mounted = false;
        for (const hook of instance.hooks) {
          if (hook && typeof hook.cleanup === 'function') hook.cleanup();
        }
      },
    };
  }

  return { React: { useState, useRef, useEffect }, render };
}

function summary(result) {
  if (!result || typeof result !== 'object') return result;
  const { client, ...rest } = result;
  return { client: client ? `GatewayClient(${client.status})` : null, ...rest };
}
