/** Turns engine errors into words a person understands, in the UI's language. */
import { isEngineError, toEngineError } from "../api/runtime";
import type { MessageKey, Translate } from "../i18n/index";
import { hasKey } from "../i18n/index";

/** The i18n key for an error kind, if the UI has words for it. */
export function errorKey(kind: string): MessageKey | null {
  if (kind === "withDetail") return null; // a template, not an error kind
  const key = `error.${kind}`;
  return hasKey(key) ? key : null;
}

/**
 * A sentence for the person: the translated text for a known kind; otherwise the engine's
 * message; otherwise a generic sentence.
 */
export function errorText(error: unknown, t: Translate): string {
  const engineError = isEngineError(error) ? error : toEngineError(error);
  const key = errorKey(engineError.kind);
  if (key !== null && engineError.kind !== "internal") return t(key);
  if (engineError.message.trim() !== "") return t("error.withDetail", { detail: engineError.message });
  return t("error.internal");
}
