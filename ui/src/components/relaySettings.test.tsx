// Relay password (write-only) and proxy settings in onboarding and Settings, against the mock.
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { mockInvoke } from "../api/mock";
import type { Settings } from "../api/types";
import { renderSettings, useScenario } from "../test/support";

beforeEach(() => {
  localStorage.setItem("sealpost.locale", "en");
});
afterEach(() => cleanup());

const RELAY = "wss://relay.example.org";

describe("relay password", () => {
  it("onboarding on a relay at an address sends its password, which never comes back", async () => {
    useScenario("fresh");
    render(<App />);
    const name = await screen.findByLabelText("Your name");
    fireEvent.input(name, { target: { value: "Mika" } });
    fireEvent.click(screen.getByLabelText(/A relay server/));
    fireEvent.input(await screen.findByLabelText("Relay address"), { target: { value: RELAY } });
    const password = screen.getByLabelText("Relay password (if it has one)") as HTMLInputElement;
    expect(password.type).toBe("password");
    fireEvent.input(password, { target: { value: "open sesame" } });
    fireEvent.submit(name.closest("form") as HTMLFormElement);
    expect(await screen.findByRole("heading", { name: "No chats yet" })).toBeTruthy();
    const settings = await mockInvoke<Settings>("get_settings", {});
    expect(settings.relaysWithPassword).toEqual([RELAY]);
    expect(JSON.stringify(settings)).not.toContain("open sesame");
  });

  it("Settings sets and removes a relay's password and shows only that one is set", async () => {
    useScenario("fresh");
    await mockInvoke("onboard", { displayName: "Mika", relay: { kind: "remote", url: RELAY } });
    await renderSettings();
    expect(screen.queryByTestId("relay-has-password")).toBeNull();
    const input = await screen.findByLabelText("Relay password");
    fireEvent.input(input, { target: { value: "open sesame" } });
    fireEvent.submit(input.closest("form") as HTMLFormElement);
    expect(await screen.findByTestId("relay-has-password")).toBeTruthy();
    expect((input as HTMLInputElement).value).toBe("");
    const stored = await mockInvoke<Settings>("get_settings", {});
    expect(stored.relaysWithPassword).toEqual([RELAY]);
    expect(JSON.stringify(stored)).not.toContain("open sesame");
    fireEvent.click(screen.getByRole("button", { name: "Remove password" }));
    await waitFor(() => expect(screen.queryByTestId("relay-has-password")).toBeNull());
  });
});

describe("SOCKS5 proxy", () => {
  it("onboarding through a proxy sets it before anything connects", async () => {
    useScenario("fresh");
    render(<App />);
    const name = await screen.findByLabelText("Your name");
    fireEvent.input(name, { target: { value: "Mika" } });
    fireEvent.click(screen.getByLabelText(/Connect through a SOCKS5 proxy/));
    const address = (await screen.findByLabelText("Proxy address (IP:port)")) as HTMLInputElement;
    expect(address.value).toBe("127.0.0.1:9050");
    fireEvent.submit(name.closest("form") as HTMLFormElement);
    expect(await screen.findByRole("heading", { name: "No chats yet" })).toBeTruthy();
    expect((await mockInvoke<Settings>("get_settings", {})).socksProxy).toBe("127.0.0.1:9050");
  });

  it("Settings sets the proxy, refuses a host name, and turns it off", async () => {
    useScenario("fresh");
    await mockInvoke("onboard", { displayName: "Mika", relay: { kind: "remote", url: RELAY } });
    await renderSettings();
    const input = await screen.findByLabelText("Proxy address (IP:port)");
    fireEvent.input(input, { target: { value: "tor.example:9050" } });
    fireEvent.submit(input.closest("form") as HTMLFormElement);
    expect(await screen.findByRole("alert")).toBeTruthy();
    fireEvent.input(input, { target: { value: "127.0.0.1:9150" } });
    fireEvent.submit(input.closest("form") as HTMLFormElement);
    await waitFor(async () =>
      expect((await mockInvoke<Settings>("get_settings", {})).socksProxy).toBe("127.0.0.1:9150"),
    );
    fireEvent.click(await screen.findByRole("button", { name: "Connect directly" }));
    await waitFor(async () => expect((await mockInvoke<Settings>("get_settings", {})).socksProxy).toBeNull());
  });

  it("the connection indicator says the proxy is the problem", async () => {
    const { summarizeConnections } = await import("../lib/connection");
    const summary = summarizeConnections([
      { relayUrl: RELAY, state: "proxy_unreachable", retryInSeconds: 5 },
      { relayUrl: "wss://other.example", state: "offline", retryInSeconds: 3 },
    ]);
    expect(summary.state).toBe("proxy_unreachable");
  });
});
