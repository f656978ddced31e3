// Disappearing messages in the chat view (`docs/engine.md` § Disappearing messages), against the
// mock backend: the chat menu sets the timer (system line + header tag), a message sent under it
// shows the timer, and `messages-expired` takes it off the screen at once.
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { controls, mockInvoke } from "../api/mock";
import type { Message } from "../api/types";
import { startMock } from "../test/support";

beforeEach(() => startMock("demo"));
afterEach(() => cleanup());

describe("disappearing messages", () => {
  it("the menu sets the timer, timed messages show it, expired ones vanish", async () => {
    render(<App />);
    fireEvent.click(await screen.findByText("Chloé Martin"));
    await screen.findByRole("heading", { name: "Chloé Martin", level: 2 });
    fireEvent.click(screen.getByRole("button", { name: "Contact options" }));
    fireEvent.click(await screen.findByRole("menuitem", { name: "Disappearing messages: 1 hour" }));
    const line = await screen.findByTestId("timer-line");
    expect(line.textContent).toBe("You set disappearing messages to 1 hour.");
    await waitFor(() => expect(screen.getByTestId("chat-timer").textContent).toBe("Disappearing messages: 1 hour"));

    const contactId = controls.contactIdOf("Chloé Martin") ?? "";
    const sent = await mockInvoke<Message>("send_message", { contactId, text: "gone in an hour" });
    expect(sent.timerSeconds).toBe(3600);
    controls.emit("message-received", { contactId, message: sent });
    const bubble = (await screen.findByText("gone in an hour")).closest("li");
    expect(bubble?.querySelector("[data-testid=message-timer]")).not.toBeNull();

    controls.emit("messages-expired", { contactId, messageIds: [sent.id] });
    await waitFor(() => expect(screen.queryByText("gone in an hour")).toBeNull());
  });
});
