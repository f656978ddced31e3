// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { GroupMember } from "./GroupMember";

/**
 * `Group`: a group as the app shows it (`docs/engine.md` § Groups).
 */
export type Group = { 
/**
 * The group id (32 hex digits).
 */
id: string, 
/**
 * Its name.
 */
name: string, 
/**
 * Its description.
 */
description: string, 
/**
 * The effective members, ourselves included.
 */
members: Array<GroupMember>, 
/**
 * Whether we are a member (false once we left or were removed).
 */
isMember: boolean, 
/**
 * Whether we are an admin.
 */
isAdmin: boolean, 
/**
 * Incoming texts not read yet.
 */
unreadCount: number, 
/**
 * The group's disappearing timer, seconds (0 = off; set by an admin, `docs/engine.md` §
 * Disappearing messages).
 */
timerSeconds: number, };
