// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { LocalRelaySettings } from "./LocalRelaySettings";
import type { NotificationSettings } from "./NotificationSettings";

/**
 * `Settings`: all user settings. `update_settings` takes the whole object (but
 * `relaysWithPassword` and `socksProxy`) and returns the stored one.
 */
export type Settings = { 
/**
 * Notifications.
 */
notifications: NotificationSettings, 
/**
 * Send read receipts (§3a rule 7).
 */
readReceipts: boolean, 
/**
 * The local test relay.
 */
localRelay: LocalRelaySettings, 
/**
 * Relays new mailboxes are made on (1..=4).
 */
relays: Array<string>, 
/**
 * Which of `relays` have a stored password (output only: `update_settings` ignores it, and
 * the password itself never leaves the engine; see [`RelayPassword`]).
 */
relaysWithPassword: Array<string>, 
/**
 * The SOCKS5 proxy (`IP:port`, e.g. Tor's `127.0.0.1:9050`) every relay connection goes
 * through, or `None` for direct connections. Changed only by `set_socks_proxy`
 * (`update_settings` keeps the stored one).
 */
socksProxy: string | null, };
