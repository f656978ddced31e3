/**
 * A modal dialog: labelled, focus moves in on open and back on close, Tab stays inside, Esc and
 * the close button close it.
 */
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { useI18n } from "../i18n";
import { IconClose } from "./Icons";

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

const AUTOFOCUS = "[data-autofocus]:not(:disabled)";

let openCount = 0;
/** True while any dialog is open (global shortcuts stand aside). */
export function dialogOpen(): boolean {
  return openCount > 0;
}

export function Dialog({
  title,
  onClose,
  children,
  size = "medium",
  describedBy,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  size?: "small" | "medium" | "large";
  describedBy?: string;
}) {
  const { t } = useI18n();
  const panel = useRef<HTMLDivElement>(null);
  const titleId = useRef(`dialog-title-${Math.random().toString(36).slice(2)}`).current;
  const onCloseRef = useRef(onClose);
  onCloseRef.current = onClose;

  useEffect(() => {
    openCount += 1;
    const previous = document.activeElement as HTMLElement | null;
    const root = panel.current;
    // Focus the element marked data-autofocus; until async content brings one, the dialog itself
    // (so the screen reader reads its title and Tab starts inside it).
    const preferred = root?.querySelector<HTMLElement>(AUTOFOCUS);
    (preferred ?? root)?.focus();
    let observer: MutationObserver | null = null;
    if ((preferred === null || preferred === undefined) && root !== null && typeof MutationObserver !== "undefined") {
      observer = new MutationObserver(() => {
        const late = root.querySelector<HTMLElement>(AUTOFOCUS);
        if (late === null) return;
        if (document.activeElement === root) late.focus();
        observer?.disconnect();
      });
      observer.observe(root, { childList: true, subtree: true, attributes: true, attributeFilter: ["disabled"] });
    }
    return () => {
      observer?.disconnect();
      openCount -= 1;
      if (previous && document.contains(previous)) previous.focus();
    };
  }, []);

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === "Escape" && !event.isComposing) {
      event.preventDefault();
      event.stopPropagation();
      onCloseRef.current();
      return;
    }
    if (event.key !== "Tab" || panel.current === null) return;
    const items = [...panel.current.querySelectorAll<HTMLElement>(FOCUSABLE)].filter(
      (el) => el.offsetParent !== null || el === document.activeElement,
    );
    const first = items[0];
    const last = items[items.length - 1];
    if (first === undefined || last === undefined) return;
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  };

  return (
    <div
      class="dialog-backdrop"
      onMouseDown={(event) => {
        if (event.target === event.currentTarget) onClose();
      }}
    >
      <div
        ref={panel}
        class={`dialog dialog-${size}`}
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        aria-describedby={describedBy}
        tabIndex={-1}
        onKeyDown={onKeyDown}
      >
        <header class="dialog-header">
          <h2 id={titleId}>{title}</h2>
          <button
            type="button"
            class="icon-button"
            onClick={onClose}
            aria-label={t("common.close")}
            title={t("common.close")}
            data-testid="dialog-close"
          >
            <IconClose />
          </button>
        </header>
        <div class="dialog-body">{children}</div>
      </div>
    </div>
  );
}
