/** The message composer: Enter sends, Shift+Enter adds a line, focus stays in the text box. */
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { useI18n } from "../i18n";
import { composerKeyAction, sendableText } from "../lib/composer";
import { AttachButton } from "./Attachments";
import { ErrorText } from "./ErrorText";
import { IconSend } from "./Icons";

const MAX_HEIGHT_PX = 180;

/** Unsent drafts per conversation, in memory only (never written to disk). */
const drafts = new Map<string, string>();

export function Composer({
  draftKey,
  name,
  disabledReason,
  disabledAction = null,
  onSend,
  onFiles,
}: {
  /** Keeps an unsent draft per conversation while the app runs. */
  draftKey: string;
  name: string;
  /** When set, sending is blocked and this sentence says why. */
  disabledReason: string | null;
  /** An optional button beside the reason (e.g. "Unblock"). */
  disabledAction?: { label: string; onClick: () => void } | null;
  /** Resolves when the engine stored the message; rejects with an engine error. */
  onSend: (text: string) => Promise<void>;
  /** Files chosen, dropped or pasted: resolves when each is stored; rejects with an engine error. */
  onFiles?: (files: File[]) => Promise<void>;
}) {
  const { t } = useI18n();
  const [text, setTextState] = useState(() => drafts.get(draftKey) ?? "");
  const setText = (value: string) => {
    if (value === "") drafts.delete(draftKey);
    else drafts.set(draftKey, value);
    setTextState(value);
  };
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const area = useRef<HTMLTextAreaElement>(null);

  // Grow with the text up to a limit (CSSOM, allowed by the CSP; no style attributes in markup).
  useLayoutEffect(() => {
    const el = area.current;
    if (el === null) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, MAX_HEIGHT_PX)}px`;
  }, [text]);

  const submit = async () => {
    const body = sendableText(text);
    if (body === null || sending) return;
    setSending(true);
    try {
      await onSend(body);
      setText("");
      setError(null);
    } catch (caught) {
      setError(caught);
    } finally {
      setSending(false);
      area.current?.focus();
    }
  };

  const takeFiles = (files: File[]) => {
    if (onFiles === undefined || files.length === 0) return;
    setError(null);
    onFiles(files).catch(setError);
  };

  if (disabledReason !== null) {
    return (
      <div class="composer composer-disabled">
        <p class="composer-blocked">{disabledReason}</p>
        {disabledAction !== null && (
          <button type="button" class="button secondary small" onClick={disabledAction.onClick}>
            {disabledAction.label}
          </button>
        )}
      </div>
    );
  }

  return (
    <form
      class="composer"
      onSubmit={(event) => {
        event.preventDefault();
        void submit();
      }}
      onDragOver={(event) => {
        if (onFiles !== undefined) event.preventDefault();
      }}
      onDrop={(event) => {
        event.preventDefault();
        takeFiles(Array.from(event.dataTransfer?.files ?? []));
      }}
      onPaste={(event) => {
        const files = Array.from(event.clipboardData?.files ?? []);
        if (files.length > 0) {
          event.preventDefault();
          takeFiles(files);
        }
      }}
    >
      <ErrorText error={error} />
      <div class="composer-row">
        {onFiles !== undefined && <AttachButton onFiles={takeFiles} />}
        <label class="sr-only" for="composer-text">
          {t("composer.label", { name })}
        </label>
        <textarea
          id="composer-text"
          data-testid="composer-input"
          ref={area}
          rows={1}
          value={text}
          placeholder={t("composer.placeholder")}
          aria-describedby="composer-hint"
          onInput={(event) => setText(event.currentTarget.value)}
          onKeyDown={(event) => {
            if (composerKeyAction(event) === "send") {
              event.preventDefault();
              void submit();
            }
          }}
        />
        <button
          type="submit"
          class="send-button"
          aria-label={t("composer.send")}
          title={t("composer.send")}
          disabled={sendableText(text) === null}
        >
          <IconSend />
        </button>
      </div>
      <p class="composer-hint" id="composer-hint">
        {t("composer.hint")}
      </p>
    </form>
  );
}
