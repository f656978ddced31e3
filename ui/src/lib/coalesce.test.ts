import { describe, expect, it } from "vitest";

import { coalesce } from "./coalesce";

function deferred() {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

describe("coalesce", () => {
  it("runs a burst of calls as one run in flight plus one more after it", async () => {
    const runs: Array<ReturnType<typeof deferred>> = [];
    const refresh = coalesce(() => {
      const run = deferred();
      runs.push(run);
      return run.promise;
    });
    const calls = Array.from({ length: 1000 }, () => refresh());
    expect(runs).toHaveLength(1);
    runs[0]?.resolve();
    for (let tick = 0; tick < 20 && runs.length < 2; tick += 1) await Promise.resolve();
    expect(runs).toHaveLength(2);
    runs[1]?.resolve();
    await Promise.all(calls);
    expect(runs).toHaveLength(2);
  });

  it("starts a fresh run for a call after the previous one finished", async () => {
    let count = 0;
    const refresh = coalesce(async () => {
      count += 1;
    });
    await refresh();
    await refresh();
    expect(count).toBe(2);
  });

  it("keeps going after a failed run", async () => {
    let count = 0;
    const refresh = coalesce(async () => {
      count += 1;
      if (count === 1) throw new Error("relay down");
    });
    await refresh();
    await refresh();
    expect(count).toBe(2);
  });
});
