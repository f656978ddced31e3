import { describe, expect, it } from "vitest";
import type { RelayConnection } from "../api/types";
import { summarizeConnections } from "./connection";

const c = (state: RelayConnection["state"], retryInSeconds: number | null = null): RelayConnection => ({
  relayUrl: `wss://r${Math.random()}`,
  state,
  retryInSeconds,
});

describe("summarizeConnections", () => {
  it("none when no relay is configured", () => expect(summarizeConnections([]).state).toBe("none"));
  it("connected when any relay is", () => {
    const s = summarizeConnections([c("offline", 5), c("connected")]);
    expect(s).toMatchObject({ state: "connected", connected: 1, total: 2, retryInSeconds: null });
  });
  it("connecting when none is connected but one tries", () =>
    expect(summarizeConnections([c("offline", 5), c("connecting")]).state).toBe("connecting"));
  it("offline with the soonest retry", () =>
    expect(summarizeConnections([c("offline", 30), c("offline", 4), c("offline")])).toMatchObject({
      state: "offline",
      retryInSeconds: 4,
    }));
  it("offline without retry when none is scheduled", () =>
    expect(summarizeConnections([c("offline")]).retryInSeconds).toBeNull());
});
