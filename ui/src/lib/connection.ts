/** Summarises relay connections into one indicator state. */
import type { RelayConnection } from "../api/types";

/** Overall connection state shown in the sidebar. */
export interface ConnectionSummary {
  state: "connected" | "connecting" | "offline" | "proxy_unreachable" | "none";
  /** Relays connected / total. */
  connected: number;
  total: number;
  /** Soonest retry among offline relays, in seconds, when all are offline. */
  retryInSeconds: number | null;
}

/** Connected if any relay is; connecting if any is trying; offline otherwise. */
export function summarizeConnections(connections: readonly RelayConnection[]): ConnectionSummary {
  const total = connections.length;
  const connected = connections.filter((c) => c.state === "connected").length;
  if (total === 0) return { state: "none", connected, total, retryInSeconds: null };
  if (connected > 0) return { state: "connected", connected, total, retryInSeconds: null };
  if (connections.some((c) => c.state === "connecting")) {
    return { state: "connecting", connected, total, retryInSeconds: null };
  }
  const retries = connections.map((c) => c.retryInSeconds).filter((r): r is number => r !== null);
  return {
    // The proxy is the one to fix when it is why we are offline.
    state: connections.some((c) => c.state === "proxy_unreachable") ? "proxy_unreachable" : "offline",
    connected,
    total,
    retryInSeconds: retries.length > 0 ? Math.min(...retries) : null,
  };
}
