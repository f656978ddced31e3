// The first screen's data handed over with the page (./firstScreen, ui/CONTRACT.md § First
// screen): the app draws the chat list from it at the first render, without the start-up's
// `app_status` / `list_chats` round trips, and falls back to them when the block is absent or bad.
import { cleanup, render, screen } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AppStatus, Chat } from "../api/types";

/** Start-up commands that never answer unless a test lets them (`answer`). */
let answer = false;
const appStatus = vi.fn(async (): Promise<AppStatus> => {
  const mock = await import("../api/mock");
  if (!answer) return new Promise<AppStatus>(() => undefined);
  return mock.mockInvoke<AppStatus>("app_status", {});
});
const listChats = vi.fn(async (): Promise<Chat[]> => {
  const mock = await import("../api/mock");
  if (!answer) return new Promise<Chat[]>(() => undefined);
  return mock.mockInvoke<Chat[]>("list_chats", {});
});
vi.mock("../api/commands", async (importOriginal) => ({
  ...(await importOriginal<typeof import("../api/commands")>()),
  appStatus: () => appStatus(),
  listChats: () => listChats(),
}));

const { App } = await import("../App");
const { startMock } = await import("../test/support");
const { FIRST_SCREEN_ID, takeFirstScreen } = await import("./firstScreen");

const status: AppStatus = {
  profile: "default",
  onboarded: true,
  localRelay: { enabled: false, running: false, url: null },
  connections: [],
};

function chat(contactId: string, displayName: string): Chat {
  return {
    contactId,
    displayName,
    lastMessage: null,
    unread: 0,
    verified: false,
    keyChanged: false,
    blocked: false,
    timerSeconds: 0,
  };
}

/** Puts the data block into the page as the app does (before the UI starts). */
function handOver(text: string, type = "application/json") {
  const block = document.createElement("script");
  block.type = type;
  block.id = FIRST_SCREEN_ID;
  block.textContent = text;
  document.head.append(block);
}

beforeEach(() => {
  startMock("demo");
  answer = false;
  appStatus.mockClear();
  listChats.mockClear();
});
afterEach(() => {
  cleanup();
  document.getElementById(FIRST_SCREEN_ID)?.remove();
});

describe("the first screen's handed-over data", () => {
  it("renders from the initial state without calling the commands", () => {
    handOver(JSON.stringify({ status, chats: [chat("c1", "Ada \u202Eevil"), chat("c2", "Grace")] }));
    render(<App />);
    // Drawn at the first render: the start-up commands never answer in this test.
    const names = screen.getAllByTestId("chat-row-name").map((name) => name.textContent);
    expect(names).toEqual(["Ada evil", "Grace"]); // names drawn safe, as from list_chats
    expect(document.querySelector(".splash")).toBeNull(); // no splash
    expect(document.getElementById(FIRST_SCREEN_ID)).toBeNull(); // taken once
    // No start-up round trip: only the main screen's catch-up once subscribed (one of each).
    expect(appStatus).toHaveBeenCalledTimes(1);
    expect(listChats).toHaveBeenCalledTimes(1);
  });

  it("a profile not onboarded yet starts at onboarding, without the commands", async () => {
    handOver(JSON.stringify({ status: { ...status, onboarded: false }, chats: null }));
    render(<App />);
    expect(await screen.findByRole("heading", { level: 1 })).toBeTruthy(); // onboarding's title
    expect(screen.queryByTestId("chat-list")).toBeNull();
    expect(appStatus).not.toHaveBeenCalled();
    expect(listChats).not.toHaveBeenCalled();
  });

  it("without the block, the app asks the commands as before", async () => {
    answer = true;
    render(<App />);
    expect(await screen.findByText("Chloé Martin")).toBeTruthy();
    expect(appStatus).toHaveBeenCalled();
    expect(listChats).toHaveBeenCalled();
  });

  it.each([
    ["not JSON", "{", "application/json"],
    ["the wrong shape", JSON.stringify({ status: { profile: 1 }, chats: [] }), "application/json"],
    ["chats that are not chats", JSON.stringify({ status, chats: [1] }), "application/json"],
    ["not a data block", JSON.stringify({ status, chats: [] }), "text/plain"],
  ])("a block that is %s is ignored and removed", (_what, text, type) => {
    handOver(text, type);
    expect(takeFirstScreen()).toBeNull();
    expect(document.getElementById(FIRST_SCREEN_ID)).toBeNull();
  });
});
