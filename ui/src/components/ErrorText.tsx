/** An error shown where it happened, in words a person understands. */
import { useI18n } from "../i18n";
import { errorText } from "../lib/errors";
import { IconWarning } from "./Icons";

export function ErrorText({ error, id }: { error: unknown; id?: string }) {
  const { t } = useI18n();
  if (error === null || error === undefined) return null;
  return (
    <p class="error-text" role="alert" id={id}>
      <IconWarning size={16} />
      <span>{errorText(error, t)}</span>
    </p>
  );
}
