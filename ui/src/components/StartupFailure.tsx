/**
 * What the window shows when the profile could not be opened. A missing identity key or
 * database key, or an unreachable keychain, gets its own recovery screen: what happened, what it
 * means, and "Try again" (the shell re-opens the profile on the next command). There is no
 * "start over" button: Sealpost never replaces a profile's identity, and the screen says how to
 * use another profile instead. Anything else shows the error in words and "Try again".
 */
import { isEngineError, toEngineError } from "../api/runtime";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n";
import { ErrorText } from "./ErrorText";
import { IconLogo } from "./Icons";

interface Recovery {
  title: MessageKey;
  paragraphs: MessageKey[];
}

/** The recovery screen for an error kind, if it has one. */
function recoveryFor(kind: string): Recovery | null {
  switch (kind) {
    case "identity_missing":
      return {
        title: "recovery.identityTitle",
        paragraphs: ["recovery.identityBody", "recovery.identityMeaning", "recovery.whatToDo", "recovery.startOver"],
      };
    case "database_key_missing":
      return {
        title: "recovery.databaseKeyTitle",
        paragraphs: ["recovery.databaseKeyBody", "recovery.whatToDo", "recovery.startOver"],
      };
    case "keychain_unavailable":
      return { title: "recovery.keychainTitle", paragraphs: ["recovery.keychainBody", "recovery.whatToDo"] };
    default:
      return null;
  }
}

export function StartupFailure({ error, onRetry }: { error: unknown; onRetry: () => void }) {
  const { t } = useI18n();
  const engineError = isEngineError(error) ? error : toEngineError(error);
  const recovery = recoveryFor(engineError.kind);
  return (
    <main class="splash" data-testid="startup-failure" data-kind={engineError.kind}>
      <IconLogo size={56} />
      {recovery === null ? (
        <>
          <h1>{t("app.startFailed")}</h1>
          <ErrorText error={error} />
        </>
      ) : (
        <>
          <h1>{t(recovery.title)}</h1>
          {recovery.paragraphs.map((key) => (
            <p key={key} class="recovery-text">
              {t(key)}
            </p>
          ))}
        </>
      )}
      <button type="button" class="button primary" onClick={onRetry}>
        {t("app.retry")}
      </button>
    </main>
  );
}
