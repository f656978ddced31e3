/**
 * Verify a contact: the 60-digit safety number in 12 groups of 5, its QR code, mark verified.
 * While a key change is pending (T8) the number shown is the NEW key's, labelled as new, with the
 * previous one beside it, and the actions are Accept and Reject.
 */
import { useEffect, useState } from "preact/hooks";
import { acceptKeyChange, getSafetyNumber, rejectKeyChange, setVerified } from "../api/commands";
import type { Chat, SafetyNumber } from "../api/types";
import { useI18n } from "../i18n";
import { groupSafetyNumber, safetyRows, svgDataUrl } from "../lib/safety";
import { Dialog } from "./Dialog";
import { ErrorText } from "./ErrorText";
import { useCommand } from "./Form";
import { IconShield, IconWarning } from "./Icons";

/** 60 digits as 12 groups of 5 in rows, or a notice if they are not 60 digits. */
function SafetyDigits({ digits, label, testId }: { digits: string; label: string; testId: string }) {
  const { t } = useI18n();
  const groups = groupSafetyNumber(digits);
  if (groups === null) return <p class="error-text">{t("verify.invalid")}</p>;
  return (
    <div class="safety-number mono" data-testid={testId} role="group" aria-label={label}>
      {safetyRows(groups).map((row, r) => (
        <div class="safety-row" key={r}>
          {row.map((group, g) => (
            <span class="safety-group" key={g}>
              {group}
            </span>
          ))}
        </div>
      ))}
    </div>
  );
}

export function VerifyDialog({ chat, onClose, onChanged }: { chat: Chat; onClose: () => void; onChanged: () => void }) {
  const { t } = useI18n();
  const [safety, setSafety] = useState<SafetyNumber | null>(null);
  const { busy, error, setError, run: runCommand } = useCommand();
  const name = chat.displayName;

  useEffect(() => {
    let live = true;
    setSafety(null);
    getSafetyNumber({ contactId: chat.contactId })
      .then((result) => live && setSafety(result))
      .catch((caught: unknown) => live && setError(caught));
    return () => {
      live = false;
    };
  }, [chat.contactId, chat.keyChanged]);

  const run = (action: () => Promise<void>) =>
    runCommand(async () => {
      await action();
      onChanged();
    });

  const pending = safety?.isPendingKey === true;

  return (
    <Dialog title={t("verify.title", { name })} onClose={onClose} describedBy="verify-lead">
      <p class="lead" id="verify-lead">
        {t("verify.lead", { name })}
      </p>
      {safety === null && error === null && (
        <p class="muted" role="status">
          {t("verify.loading")}
        </p>
      )}
      {safety !== null && (
        <div class="verify-card">
          <div>
            {pending && (
              <p>
                <strong>{t("verify.newNumberLabel")}</strong> — {t("verify.newNumberNote", { name })}
              </p>
            )}
            <SafetyDigits
              digits={safety.digits}
              label={pending ? t("verify.newNumberLabel") : t("verify.numberLabel")}
              testId="safety-number"
            />
            {pending && safety.previousDigits !== null && (
              <details class="muted">
                <summary>{t("verify.previousNumberLabel")}</summary>
                <SafetyDigits
                  digits={safety.previousDigits}
                  label={t("verify.previousNumberLabel")}
                  testId="previous-safety-number"
                />
              </details>
            )}
          </div>
          <img class="qr" src={svgDataUrl(safety.qrSvg)} alt={t("verify.qrAlt", { name })} width={180} height={180} />
        </div>
      )}
      <ErrorText error={error} />
      {chat.keyChanged ? (
        <div class="notice warning">
          <IconWarning />
          <p>{t("verify.keyChanged", { name })}</p>
          <button
            type="button"
            class="button primary"
            disabled={busy || safety === null}
            onClick={() => void run(() => acceptKeyChange({ contactId: chat.contactId }))}
          >
            {t("keyChange.accept")}
          </button>
          <button
            type="button"
            class="button secondary"
            disabled={busy}
            onClick={() => void run(() => rejectKeyChange({ contactId: chat.contactId }))}
          >
            {t("keyChange.reject")}
          </button>
        </div>
      ) : (
        <div class={`notice ${chat.verified ? "success" : ""}`}>
          {chat.verified ? <IconShield /> : null}
          <p>{chat.verified ? t("verify.isVerified", { name }) : t("verify.notVerified", { name })}</p>
          <button
            type="button"
            class={`button ${chat.verified ? "secondary" : "primary"}`}
            disabled={busy || safety === null}
            data-autofocus
            onClick={() => void run(() => setVerified({ contactId: chat.contactId, verified: !chat.verified }))}
          >
            {chat.verified ? t("verify.unmark") : t("verify.mark")}
          </button>
        </div>
      )}
    </Dialog>
  );
}
