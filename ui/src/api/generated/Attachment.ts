// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { AttachmentState } from "./AttachmentState";
import type { EngineErrorKind } from "./EngineErrorKind";

/**
 * `Attachment`: a file sent or received. No key and no capability is in it.
 */
export type Attachment = { 
/**
 * Opaque id.
 */
id: string, 
/**
 * The 1:1 conversation (none for a group's file).
 */
contactId: string | null, 
/**
 * The group, for a file sent to a group (`send_group_attachment`).
 */
groupId: string | null, 
/**
 * The message that carries it (none while an upload runs): a group message's id for a
 * group's file.
 */
messageId: string | null, 
/**
 * Sent by us.
 */
outgoing: boolean, 
/**
 * The file name (bidi controls removed; plain text, render as a text node).
 */
fileName: string, 
/**
 * The claimed media type.
 */
mediaType: string, 
/**
 * Size in bytes.
 */
size: number, 
/**
 * Whether it is a PNG, JPEG or WebP image with a preview to show (`attachment_preview`).
 */
isImage: boolean, 
/**
 * Its state.
 */
state: AttachmentState, 
/**
 * Chunks transferred.
 */
doneChunks: number, 
/**
 * Chunks in all (0 for a small file sent inside the message).
 */
totalChunks: number, 
/**
 * Why it failed.
 */
error: EngineErrorKind | null, };
