// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { EngineErrorKind } from "./EngineErrorKind";

/**
 * The error every command rejects with; the UI reads it as `EngineError { kind, message }`
 * (generated: `ui/src/api/generated/EngineError.ts`). `kind` is one of the closed set
 * [`ErrorKind`], which the UI turns into words; `message` is detail for logs, never key
 * material.
 */
export type EngineError = { 
/**
 * Stable machine-readable code, e.g. `invite_used`.
 */
kind: EngineErrorKind, 
/**
 * Detail for logs and bug reports.
 */
message: string, };
