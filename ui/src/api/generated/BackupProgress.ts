// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { BackupPhase } from "./BackupPhase";

/**
 * Progress of an export or a restore, in payload bytes (`backup_progress` event).
 */
export type BackupProgress = { 
/**
 * What is happening.
 */
phase: BackupPhase, 
/**
 * Bytes done.
 */
done: number, 
/**
 * Bytes in all.
 */
total: number, };
