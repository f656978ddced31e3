/**
 * Chooses the backend: the real engine through Tauri IPC when the page runs inside the Tauri
 * webview, otherwise the in-memory mock (browser development, screenshots, tests).
 */
import type { EngineError } from "./types";

declare global {
  interface Window {
    __TAURI_INTERNALS__?: unknown;
  }
}

/** True inside the Tauri webview. */
export function hasTauri(): boolean {
  return typeof window !== "undefined" && window.__TAURI_INTERNALS__ !== undefined;
}

type MockModule = typeof import("./mock");
let mockModule: Promise<MockModule> | null = null;

/** Loads the mock backend once (a separate chunk, never loaded inside Tauri). */
export function loadMock(): Promise<MockModule> {
  if (mockModule === null) mockModule = import("./mock");
  return mockModule;
}

/** Normalises anything a command rejected with into {@link EngineError}. */
export function toEngineError(raw: unknown): EngineError {
  if (typeof raw === "object" && raw !== null) {
    const r = raw as Record<string, unknown>;
    const kind = typeof r.kind === "string" && r.kind !== "" ? r.kind : "internal";
    const message = typeof r.message === "string" ? r.message : "";
    return { kind, message };
  }
  if (typeof raw === "string") return { kind: "internal", message: raw };
  return { kind: "internal", message: "" };
}

/** Type guard for {@link EngineError}. */
export function isEngineError(value: unknown): value is EngineError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Record<string, unknown>).kind === "string" &&
    typeof (value as Record<string, unknown>).message === "string"
  );
}
