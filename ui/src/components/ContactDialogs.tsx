/** Small dialogs about a contact: rename, repair session and delete (with confirmation). */
import { useState } from "preact/hooks";
import { deleteContact, renameContact, repairSession } from "../api/commands";
import type { Chat } from "../api/types";
import { useI18n } from "../i18n";
import { Dialog } from "./Dialog";
import { ErrorText } from "./ErrorText";
import { SaveDialog, TextField, useCommand } from "./Form";

/** What a dialog about a contact gets: its chat, and what to do once the command succeeded. */
interface ChatDialogProps {
  chat: Chat;
  onClose: () => void;
  onDone: () => void;
}

export function RenameDialog({ chat, onClose, onDone }: ChatDialogProps) {
  const { t } = useI18n();
  const [name, setName] = useState(chat.displayName);
  const save = async () => {
    await renameContact({ contactId: chat.contactId, displayName: name.trim() });
    onDone();
  };
  return (
    <SaveDialog title={t("rename.title")} canSave={name.trim() !== ""} save={save} onClose={onClose}>
      <TextField id="rename-name" label={t("rename.label")} value={name} onValue={setName} maxLength={64} required autofocus />
    </SaveDialog>
  );
}

interface ConfirmProps {
  title: string;
  body: string;
  /** Id of the body paragraph (the dialog's description). */
  bodyId: string;
  confirmLabel: string;
  tone: "danger" | "primary";
  /** The command to run; the dialog shows its error and stays open if it fails. */
  action: () => Promise<void>;
  onClose: () => void;
  onDone: () => void;
  testId?: string;
}

/** A yes/no dialog for one command (contacts and groups): Cancel is focused first, the command's error is shown. */
export function ConfirmDialog({ title, body, bodyId, confirmLabel, tone, action, onClose, onDone, testId }: ConfirmProps) {
  const { t } = useI18n();
  const { busy, error, run } = useCommand();
  const confirm = () =>
    run(
      async () => {
        await action();
        onDone();
      },
      { staysBusy: true },
    );
  return (
    <Dialog title={title} onClose={onClose} size="small" describedBy={bodyId}>
      <p id={bodyId}>{body}</p>
      <ErrorText error={error} />
      <div class="row end">
        <button type="button" class="button secondary" onClick={onClose} data-autofocus>
          {t("common.cancel")}
        </button>
        <button type="button" class={`button ${tone}`} onClick={() => void confirm()} disabled={busy} data-testid={testId}>
          {confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

export function DeleteDialog({ chat, onClose, onDone }: ChatDialogProps) {
  const { t } = useI18n();
  return (
    <ConfirmDialog
      title={t("delete.title", { name: chat.displayName })}
      body={t("delete.body", { name: chat.displayName })}
      bodyId="delete-body"
      confirmLabel={t("delete.confirm")}
      tone="danger"
      action={() => deleteContact({ contactId: chat.contactId })}
      onClose={onClose}
      onDone={onDone}
    />
  );
}

/** Confirms the user's "repair session": a new session with X3DH, old undelivered messages lost. */
export function RepairDialog({ chat, onClose, onDone }: ChatDialogProps) {
  const { t } = useI18n();
  return (
    <ConfirmDialog
      title={t("repair.title", { name: chat.displayName })}
      body={t("repair.body", { name: chat.displayName })}
      bodyId="repair-body"
      confirmLabel={t("repair.confirm")}
      tone="primary"
      action={() => repairSession({ contactId: chat.contactId })}
      onClose={onClose}
      onDone={onDone}
      testId="repair-confirm"
    />
  );
}
