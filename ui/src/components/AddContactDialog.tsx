/**
 * Add a contact: paste an invite (or a deep link fills it in), preview who it is from, choose a
 * name, then add. Nothing is added before the person confirms (`docs/engine.md` § Invites).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { acceptInvite, previewInvite } from "../api/commands";
import { previewWithSafeName, withSafeName } from "../lib/names";
import type { Chat, InvitePreview } from "../api/types";
import { useI18n } from "../i18n";
import { formatDateTime } from "../lib/format";
import { Dialog } from "./Dialog";
import { ErrorText } from "./ErrorText";

export function AddContactDialog({
  initialText,
  fromLink,
  onClose,
  onAdded,
}: {
  initialText: string;
  fromLink: boolean;
  onClose: () => void;
  onAdded: (chat: Chat) => void;
}) {
  const { t, locale } = useI18n();
  const [text, setText] = useState(initialText);
  const [preview, setPreview] = useState<InvitePreview | null>(null);
  const [name, setName] = useState("");
  const [busy, setBusy] = useState<"check" | "add" | null>(null);
  const [error, setError] = useState<unknown>(null);
  const nameInput = useRef<HTMLInputElement>(null);

  const check = async (value: string) => {
    if (value.trim() === "") return;
    setBusy("check");
    setError(null);
    setPreview(null);
    try {
      const result = previewWithSafeName(await previewInvite({ text: value.trim() }));
      setPreview(result);
      setName(result.displayName);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(null);
    }
  };

  // A deep link (or a re-opened link) is checked right away; it is still not added. The text is
  // replaced only when a new link comes while the dialog is open: at mount the state already holds
  // `initialText`, and this effect runs after the first paint, so setting it again would erase
  // what was typed or pasted in between (the first keys after Ctrl+N).
  const shownInitialText = useRef(initialText);
  useEffect(() => {
    if (shownInitialText.current !== initialText) {
      shownInitialText.current = initialText;
      setText(initialText);
    }
    if (initialText.trim() !== "") void check(initialText);
  }, [initialText]);

  useEffect(() => {
    if (preview !== null) nameInput.current?.focus();
  }, [preview]);

  const add = async (event: Event) => {
    event.preventDefault();
    if (preview === null || busy !== null) return;
    setBusy("add");
    setError(null);
    try {
      const chat = withSafeName(await acceptInvite({ text: text.trim(), displayName: name.trim() }));
      onAdded(chat);
    } catch (caught) {
      setError(caught);
      setBusy(null);
    }
  };

  return (
    <Dialog title={t("add.title")} onClose={onClose} describedBy="add-lead">
      <p class="lead" id="add-lead">
        {fromLink ? t("add.fromLink") : t("add.lead")}
      </p>
      <form
        class="stack"
        onSubmit={(event) => {
          event.preventDefault();
          void check(text);
        }}
      >
        <div class="field">
          <label for="add-text">{t("add.textLabel")}</label>
          <textarea
            id="add-text"
            data-testid="add-contact-text"
            class="mono"
            rows={3}
            value={text}
            placeholder={t("add.textPlaceholder")}
            spellcheck={false}
            autoComplete="off"
            data-autofocus={initialText === "" ? true : undefined}
            onInput={(event) => {
              setText(event.currentTarget.value);
              setPreview(null);
              setError(null);
            }}
            onKeyDown={(event) => {
              if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
                event.preventDefault();
                void check(text);
              }
            }}
          />
        </div>
        {preview === null && (
          <div class="row end">
            <button type="submit" class="button primary" disabled={busy !== null || text.trim() === ""} data-testid="add-contact-check">
              {busy === "check" ? t("add.checking") : t("add.check")}
            </button>
          </div>
        )}
      </form>
      <ErrorText error={error} />
      {preview !== null && (
        <form class="preview-card stack" onSubmit={add} aria-labelledby="preview-title">
          <h3 id="preview-title">{t("add.previewTitle", { name: preview.displayName })}</h3>
          <dl class="facts">
            <dt>{t("add.safetyPreview")}</dt>
            <dd class="mono">{preview.safetyPreview}</dd>
            <dt>{t("add.relays")}</dt>
            <dd class="mono">{preview.relays.join(", ")}</dd>
          </dl>
          <p class="hint">{t("add.safetyHint")}</p>
          <p class="hint">{t("add.expires", { date: formatDateTime(preview.expiresAt, locale) })}</p>
          <div class="field">
            <label for="add-name">{t("add.nameLabel")}</label>
            <input
              id="add-name"
              data-testid="add-contact-name"
              ref={nameInput}
              type="text"
              value={name}
              maxLength={64}
              required
              autoComplete="off"
              aria-describedby="add-name-hint"
              onInput={(event) => setName(event.currentTarget.value)}
            />
            <p class="hint" id="add-name-hint">
              {t("add.nameHint")}
            </p>
          </div>
          <div class="row end">
            <button type="button" class="button secondary" onClick={onClose}>
              {t("common.cancel")}
            </button>
            <button type="submit" class="button primary" disabled={busy !== null || name.trim() === ""} data-testid="add-contact-accept">
              {busy === "add" ? t("add.adding") : t("add.accept")}
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}
