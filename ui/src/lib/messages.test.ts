import { describe, expect, it } from "vitest";
import type { Message, MessageState } from "../api/types";
import { en } from "../i18n/en";
import { ja } from "../i18n/ja";
import {
  applyMessageState,
  mergeMessages,
  newestUnreadIncomingSeq,
  oldestSeq,
  shouldApplyState,
  stateLabelKey,
} from "./messages";

function msg(id: string, seq: number, state: MessageState = "delivered", outgoing = true, text = id): Message {
  return {
    id,
    seq,
    outgoing,
    text,
    sentAt: 1_700_000_000_000 + seq,
    receivedAt: outgoing ? null : 0,
    state,
    timerSeconds: null,
    expiresAt: null,
    timerChange: null,
  };
}

describe("mergeMessages (paging merge)", () => {
  it("orders by seq, not by arrival or time", () => {
    const page = [msg("c", 3), msg("a", 1), msg("b", 2)];
    expect(mergeMessages([], page).map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("puts an older page before the current one", () => {
    const current = [msg("m5", 5), msg("m6", 6)];
    const older = [msg("m3", 3), msg("m4", 4)];
    expect(mergeMessages(current, older).map((m) => m.id)).toEqual(["m3", "m4", "m5", "m6"]);
  });

  it("dedupes by id when pages overlap or an event repeats a message", () => {
    const current = [msg("m4", 4), msg("m5", 5)];
    const overlapping = [msg("m3", 3), msg("m4", 4), msg("m5", 5)];
    const merged = mergeMessages(mergeMessages(current, overlapping), [msg("m5", 5)]);
    expect(merged.map((m) => m.id)).toEqual(["m3", "m4", "m5"]);
  });

  it("ignores sentAt: a message with an older clock but a newer seq stays after", () => {
    const early = { ...msg("x", 10), sentAt: 5 };
    const merged = mergeMessages([msg("a", 1), msg("b", 2)], [early]);
    expect(merged.map((m) => m.id)).toEqual(["a", "b", "x"]);
  });

  it("keeps the later copy's text but never moves a delivery state backwards", () => {
    const current = [msg("m1", 1, "read")];
    const stalePage = [{ ...msg("m1", 1, "on_relay"), text: "edited" }];
    const merged = mergeMessages(current, stalePage);
    expect(merged).toHaveLength(1);
    expect(merged[0]?.state).toBe("read");
    expect(merged[0]?.text).toBe("edited");
  });

  it("breaks seq ties by id so the order is total", () => {
    expect(mergeMessages([], [msg("b", 1), msg("a", 1)]).map((m) => m.id)).toEqual(["a", "b"]);
  });

  it("does not mutate its inputs", () => {
    const current = [msg("b", 2), msg("a", 1)];
    const copy = structuredClone(current);
    mergeMessages(current, [msg("c", 3)]);
    expect(current).toEqual(copy);
  });
});

describe("delivery states", () => {
  it("moves forward queued → on_relay → delivered → read", () => {
    let list = [msg("m", 1, "queued")];
    for (const state of ["on_relay", "delivered", "read"] as const) {
      list = applyMessageState(list, "m", state);
      expect(list[0]?.state).toBe(state);
    }
  });

  it("refuses to go back, accepts failure and retry", () => {
    expect(shouldApplyState("read", "delivered")).toBe(false);
    expect(shouldApplyState("delivered", "on_relay")).toBe(false);
    expect(shouldApplyState("on_relay", "failed")).toBe(true);
    expect(shouldApplyState("failed", "queued")).toBe(true);
  });

  it("returns the same array for unknown ids and no-ops", () => {
    const list = [msg("m", 1, "delivered")];
    expect(applyMessageState(list, "other", "read")).toBe(list);
    expect(applyMessageState(list, "m", "delivered")).toBe(list);
    expect(applyMessageState(list, "m", "on_relay")).toBe(list);
  });

  it.each(["queued", "on_relay", "delivered", "read", "failed"] as const)(
    "state %s has a label in both languages",
    (state) => {
      const key = stateLabelKey(state);
      expect(key).toBe(`state.${state}`);
      expect(en[key]).toBeTruthy();
      expect(ja[key]).toBeTruthy();
    },
  );

  it("labels are distinct so a screen reader can tell states apart", () => {
    const states = ["queued", "on_relay", "delivered", "read", "failed"] as const;
    expect(new Set(states.map((s) => en[stateLabelKey(s)])).size).toBe(5);
    expect(new Set(states.map((s) => ja[stateLabelKey(s)])).size).toBe(5);
  });
});

describe("seq helpers", () => {
  it("finds the oldest seq for beforeSeq", () => {
    expect(oldestSeq([msg("b", 7), msg("a", 3)])).toBe(3);
    expect(oldestSeq([])).toBeNull();
  });

  it("finds the newest unread incoming seq for mark_read", () => {
    const list = [msg("a", 1, "read", false), msg("b", 2, "delivered", false), msg("c", 3, "queued", true)];
    expect(newestUnreadIncomingSeq(list)).toBe(2);
    expect(newestUnreadIncomingSeq([msg("a", 1, "read", false)])).toBeNull();
  });
});
