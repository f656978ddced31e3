/**
 * Set-up shared by the component tests (not a test file itself: vitest runs `*.test.ts(x)` only):
 * the mock backend in a named scenario, opening a group in the app, the Settings dialog drawn on
 * its own, and a file card to draw.
 */
import { fireEvent, render, screen } from "@testing-library/preact";
import { controls, mockInvoke } from "../api/mock";
import type { AppStatus, Attachment } from "../api/types";
import { I18nProvider } from "../i18n";
import { SettingsDialog } from "../components/SettingsDialog";

/** The mock backend in `scenario` (demo, fresh, empty, …), answering without delay. */
export function useScenario(scenario: string): void {
  history.replaceState(null, "", `/?mock=${scenario}&latency=0`);
  controls.reset(scenario);
}

/** English, and the mock backend in `scenario`: what most tests start from (in a `beforeEach`). */
export function startMock(scenario = "demo"): void {
  localStorage.setItem("sealpost.locale", "en");
  useScenario(scenario);
}

/** Opens the group named `name` from the app's list (the app is rendered); resolves to its view. */
export async function openGroup(name: string): Promise<HTMLElement> {
  const row = await screen.findByText(name, { selector: "[data-testid='group-row-name']" });
  fireEvent.click(row.closest("[data-testid='group-row']") ?? document.body);
  return await screen.findByTestId("group-view");
}

/** The Settings dialog alone, for the mock's current profile. */
export async function renderSettings(): Promise<void> {
  const status = await mockInvoke<AppStatus>("app_status", {});
  const noop = () => undefined;
  render(
    <I18nProvider>
      <SettingsDialog status={status} connections={[]} onClose={noop} onProfileChanged={noop} />
    </I18nProvider>,
  );
}

/** A peer's file offered in a 1:1 chat, named with a right-to-left override; `fields` change it. */
export function offeredFile(fields: Partial<Attachment> = {}): Attachment {
  return {
    id: "a1",
    contactId: "c1",
    groupId: null,
    messageId: "m1",
    outgoing: false,
    fileName: "\u202Egnp.exe\u202C",
    mediaType: "application/octet-stream",
    size: 200_000,
    isImage: false,
    state: "offered",
    doneChunks: 0,
    totalChunks: 4,
    error: null,
    ...fields,
  };
}
