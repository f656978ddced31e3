// The recovery screens shown when the profile cannot be opened: a missing identity key, a missing
// database key, an unreachable keychain. Each explains itself, offers only "Try again" (never a
// new identity), and "Try again" really re-opens the profile once the keychain is back.
import { cleanup, fireEvent, render, screen } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { controls } from "../api/mock";
import { startMock } from "../test/support";

beforeEach(() => startMock("empty"));
afterEach(() => {
  controls.setOpenFailure(null);
  cleanup();
});

describe("startup recovery", () => {
  it("a missing identity key explains itself, offers only Try again, and retries for real", async () => {
    controls.setOpenFailure("identity_missing");
    render(<App />);
    expect(
      await screen.findByRole("heading", { name: "Your identity key is missing from the keychain" }),
    ).toBeTruthy();
    expect(screen.getByText(/Sealpost did not make a new one/)).toBeTruthy();
    expect(screen.getByText(/this profile's data stays where it is/)).toBeTruthy();
    // The only action is Try again: nothing offers to make a new identity.
    const buttons = screen.getAllByRole("button");
    expect(buttons.map((button) => button.textContent)).toEqual(["Try again"]);

    // Still missing: Try again shows the same screen, not onboarding.
    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(
      await screen.findByRole("heading", { name: "Your identity key is missing from the keychain" }),
    ).toBeTruthy();
    expect(screen.queryByRole("heading", { name: "Welcome to Sealpost" })).toBeNull();

    // The keychain is unlocked: Try again opens the profile.
    controls.setOpenFailure(null);
    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("heading", { name: "No chats yet" })).toBeTruthy();
  });

  it("an unreachable keychain is its own retryable screen, in Japanese too", async () => {
    localStorage.setItem("sealpost.locale", "ja");
    controls.setOpenFailure("keychain_unavailable");
    render(<App />);
    expect(await screen.findByRole("heading", { name: "システムのキーチェーンを使えません" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "もう一度試す" })).toBeTruthy();
    expect(screen.getByTestId("startup-failure").getAttribute("data-kind")).toBe("keychain_unavailable");
  });

  it("a missing database key has its own screen", async () => {
    controls.setOpenFailure("database_key_missing");
    render(<App />);
    expect(
      await screen.findByRole("heading", { name: "The key to your messages is missing from the keychain" }),
    ).toBeTruthy();
  });

  it("other start failures still show the error and Try again", async () => {
    controls.setOpenFailure("storage");
    render(<App />);
    expect(await screen.findByRole("heading", { name: "Sealpost could not start." })).toBeTruthy();
    expect(screen.getByRole("alert").textContent).toMatch(/could not be saved/);
  });
});
