// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `Invite`: one single-use invite of this profile.
 */
export type Invite = { 
/**
 * Opaque id.
 */
id: string, 
/**
 * The `sealpost:` text (meant to be shared).
 */
text: string, 
/**
 * QR code of the text, a complete SVG document made by the engine; shown only as an image
 * (`<img src="data:…">`), never as markup.
 */
qrSvg: string, 
/**
 * Unix ms.
 */
createdAt: number, 
/**
 * Unix ms.
 */
expiresAt: number, };
