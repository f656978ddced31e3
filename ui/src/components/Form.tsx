/**
 * What the forms and small dialogs share: the state of their command, busy and its error
 * ({@link useCommand}), a labelled text field ({@link TextField}), a dialog that is one form with
 * Cancel and a submit button ({@link FormDialog}), and the small one that saves a change
 * ({@link SaveDialog}). Only lazily loaded screens use it (lib/lazy.test.tsx: dialogs stay out of
 * the first bundle).
 */
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { useI18n } from "../i18n";
import { Dialog } from "./Dialog";
import { ErrorText } from "./ErrorText";

/**
 * A form's or a dialog's command: `busy` while it runs (the caller disables its buttons, so one
 * runs at a time), its failure in `error` (cleared when the next one starts; drawn by ErrorText).
 * A failure frees the form again; so does a success, unless the run asks `{ staysBusy: true }`:
 * the form closes or moves on then, and cannot be sent twice meanwhile. `run` never rejects.
 */
export function useCommand() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (command: () => Promise<void>, { staysBusy = false } = {}): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await command();
      if (!staysBusy) setBusy(false);
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

/**
 * A labelled input in a `.field`, with no autocomplete; `children` come after the input (a hint).
 * `autofocus` marks it for the dialog's first focus (`data-autofocus`), `focusOnMount` focuses it
 * on its own (a screen outside a dialog).
 */
export function TextField({
  id,
  label,
  value,
  onValue,
  type = "text",
  maxLength,
  required = false,
  placeholder,
  spellcheck,
  describedBy,
  testId,
  inputClass,
  fieldClass = "field",
  autofocus = false,
  focusOnMount = false,
  children,
}: {
  id: string;
  label: string;
  value: string;
  onValue: (value: string) => void;
  type?: "text" | "password";
  maxLength?: number;
  required?: boolean;
  placeholder?: string;
  spellcheck?: boolean;
  describedBy?: string;
  testId?: string;
  inputClass?: string;
  /** The wrapper's classes. */
  fieldClass?: string;
  autofocus?: boolean;
  focusOnMount?: boolean;
  children?: ComponentChildren;
}) {
  return (
    <div class={fieldClass}>
      <label for={id}>{label}</label>
      <input
        id={id}
        // A literal type in each branch: the input's allowed ARIA roles depend on it.
        {...(type === "password" ? { type } : { type })}
        class={inputClass}
        value={value}
        onInput={(event) => onValue(event.currentTarget.value)}
        maxLength={maxLength}
        required={required}
        placeholder={placeholder}
        autoComplete="off"
        spellcheck={spellcheck}
        aria-describedby={describedBy}
        data-testid={testId}
        data-autofocus={autofocus ? true : undefined}
        autoFocus={focusOnMount}
      />
      {children}
    </div>
  );
}

/**
 * A dialog that is one form: its fields, the command's error, then Cancel (closes) and the submit
 * button (`submitLabel`, off while `submitDisabled`).
 */
export function FormDialog({
  title,
  size,
  onClose,
  onSubmit,
  error,
  submitLabel,
  submitDisabled,
  formTestId,
  submitTestId,
  children,
}: {
  title: string;
  size?: "small";
  onClose: () => void;
  onSubmit: (event: Event) => void;
  error: unknown;
  submitLabel: string;
  submitDisabled: boolean;
  formTestId?: string;
  submitTestId?: string;
  children: ComponentChildren;
}) {
  const { t } = useI18n();
  return (
    <Dialog title={title} onClose={onClose} size={size}>
      <form class="stack" onSubmit={onSubmit} data-testid={formTestId}>
        {children}
        <ErrorText error={error} />
        <div class="row end">
          <button type="button" class="button secondary" onClick={onClose}>
            {t("common.cancel")}
          </button>
          <button type="submit" class="button primary" disabled={submitDisabled} data-testid={submitTestId}>
            {submitLabel}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/**
 * A small dialog whose form saves one change with `save` (which closes it on success): Save is
 * off while `canSave` is false and while it runs; a failure is shown and the dialog stays open.
 */
export function SaveDialog({
  title,
  canSave,
  save,
  onClose,
  children,
}: {
  title: string;
  canSave: boolean;
  save: () => Promise<void>;
  onClose: () => void;
  children: ComponentChildren;
}) {
  const { t } = useI18n();
  const { busy, error, run } = useCommand();
  return (
    <FormDialog
      title={title}
      size="small"
      onClose={onClose}
      onSubmit={(event) => {
        event.preventDefault();
        void run(save, { staysBusy: true });
      }}
      error={error}
      submitLabel={t("common.save")}
      submitDisabled={busy || !canSave}
    >
      {children}
    </FormDialog>
  );
}
