// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `SafetyNumber`: the safety number of the user and one contact.
 */
export type SafetyNumber = { 
/**
 * Exactly 60 ASCII digits. While a key change is pending: the NEW key's number.
 */
digits: string, 
/**
 * QR code of `digits`' safety number payload, a complete SVG document.
 */
qrSvg: string, 
/**
 * True while a key change is pending: `digits` belong to the key that accepting installs.
 */
isPendingKey: boolean, 
/**
 * While a key change is pending: the current (previous) key's 60 digits; otherwise none.
 */
previousDigits: string | null, };
