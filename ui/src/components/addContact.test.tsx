/**
 * The add-contact dialog keeps what is typed into it from its first frame: its mount effect runs
 * after the first paint and must not reset the text (keys typed right after Ctrl+N were lost).
 */
import { cleanup, render as renderInAct, screen, waitFor } from "@testing-library/preact";
import { render } from "preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { I18nProvider } from "../i18n";
import { startMock } from "../test/support";
import { AddContactDialog } from "./AddContactDialog";

const noop = () => undefined;

describe("AddContactDialog", () => {
  let container: HTMLElement;
  beforeEach(() => {
    startMock("demo");
    container = document.createElement("div");
    document.body.append(container);
  });
  afterEach(() => {
    render(null, container);
    container.remove();
    cleanup();
  });

  it("keeps text typed before its mount effects have run", async () => {
    // preact's own render (not testing-library's, which flushes effects at once): the passive
    // effects wait for the next frame, as in the app.
    render(
      <I18nProvider>
        <AddContactDialog initialText="" fromLink={false} onClose={noop} onAdded={noop} />
      </I18nProvider>,
      container,
    );
    const textarea = container.querySelector<HTMLTextAreaElement>("[data-testid='add-contact-text']");
    expect(textarea).not.toBeNull();
    if (textarea === null) return;
    textarea.value = "sealpost:typed-at-once";
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    // Let the mount effects and the re-render run.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(textarea.value).toBe("sealpost:typed-at-once");
  });

  it("still takes a new link's text while open", async () => {
    const { rerender } = renderInAct(
      <I18nProvider>
        <AddContactDialog initialText="" fromLink={false} onClose={noop} onAdded={noop} />
      </I18nProvider>,
    );
    rerender(
      <I18nProvider>
        <AddContactDialog initialText="sealpost:from-a-link" fromLink={true} onClose={noop} onAdded={noop} />
      </I18nProvider>,
    );
    await waitFor(() =>
      expect(screen.getByTestId<HTMLTextAreaElement>("add-contact-text").value).toBe("sealpost:from-a-link"),
    );
  });
});
