// Settings → Backup and onboarding's "Restore from a backup", against the mock.
import { cleanup, fireEvent, render, screen } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { mockInvoke } from "../api/mock";
import type { AppStatus } from "../api/types";
import { renderSettings, useScenario } from "../test/support";

beforeEach(() => {
  localStorage.setItem("sealpost.locale", "en");
});
afterEach(() => cleanup());

describe("Settings → Backup", () => {
  it("offers a generated passphrase and saves only once it is written down", async () => {
    useScenario("demo");
    await renderSettings();
    const generated = await screen.findByTestId("backup-generated");
    expect(generated.textContent).toMatch(/^[A-Z2-7]{4}(-[A-Z2-7]{4}){5}$/);
    const submit = screen.getByTestId("backup-submit") as HTMLButtonElement;
    expect(submit.disabled).toBe(true);
    fireEvent.click(screen.getByLabelText("I have written this passphrase down"));
    expect(submit.disabled).toBe(false);
    fireEvent.submit(submit.closest("form") as HTMLFormElement);
    expect((await screen.findByTestId("backup-done")).textContent).toContain("sealpost-backup");
  });

  it("shows the engine's refusal of a weak typed passphrase in words", async () => {
    useScenario("demo");
    await renderSettings();
    fireEvent.click(await screen.findByLabelText(/Choose my own passphrase/));
    fireEvent.input(screen.getByLabelText("Passphrase"), { target: { value: "password" } });
    fireEvent.input(screen.getByLabelText("Passphrase again"), { target: { value: "password" } });
    fireEvent.submit(screen.getByTestId("backup-submit").closest("form") as HTMLFormElement);
    expect((await screen.findByRole("alert")).textContent).toContain("too easy to guess");
  });
});

describe("Restore from a backup", () => {
  it("is an onboarding path; a wrong passphrase is a typed error and nothing is onboarded", async () => {
    useScenario("fresh");
    render(<App />);
    fireEvent.click(await screen.findByTestId("onboarding-restore"));
    fireEvent.input(screen.getByTestId("restore-path"), { target: { value: "/home/me/a.sealpost" } });
    fireEvent.input(screen.getByTestId("restore-passphrase"), { target: { value: "a wrong one" } });
    fireEvent.submit(screen.getByTestId("restore-submit").closest("form") as HTMLFormElement);
    expect((await screen.findByRole("alert")).textContent).toContain("does not open the backup");
    const status = await mockInvoke<AppStatus>("app_status", {});
    expect(status.onboarded).toBe(false);
    fireEvent.click(screen.getByText("Back"));
    expect(await screen.findByTestId("onboarding-name")).toBeTruthy();
  });
});
