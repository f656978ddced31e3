/** Onboarding's "Restore from a backup": the backup file and its passphrase. The engine checks
 * the whole file before anything changes; on success the app relaunches with the restored
 * profile, whose sessions all restart (docs/backup.md). */
import { useState } from "preact/hooks";
import { restoreBackup } from "../api/commands";
import { useI18n } from "../i18n";
import { percentOf, useBackupProgress } from "./BackupSection";
import { ErrorText } from "./ErrorText";

export function RestoreBackup({ onBack, onDone }: { onBack: () => void; onDone: () => void }) {
  const { t } = useI18n();
  const [path, setPath] = useState("");
  const [passphrase, setPassphrase] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const progress = useBackupProgress(busy);

  const submit = async (event: Event) => {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await restoreBackup({ path: path.trim(), passphrase });
      setPassphrase("");
      onDone();
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };

  return (
    <form class="onboarding-card" onSubmit={submit} aria-labelledby="restore-title" aria-busy={busy}>
      <h1 id="restore-title">{t("restore.title")}</h1>
      <p class="lead">{t("restore.lead")}</p>
      <div class="field">
        <label for="restore-path">{t("restore.path")}</label>
        <input
          id="restore-path"
          data-testid="restore-path"
          type="text"
          class="mono"
          value={path}
          onInput={(e) => setPath(e.currentTarget.value)}
          required
          autoComplete="off"
          spellcheck={false}
          autoFocus
        />
      </div>
      <div class="field">
        <label for="restore-passphrase">{t("restore.passphrase")}</label>
        <input
          id="restore-passphrase"
          data-testid="restore-passphrase"
          type="password"
          value={passphrase}
          onInput={(e) => setPassphrase(e.currentTarget.value)}
          required
          autoComplete="off"
        />
        <p class="hint">{t("restore.hint")}</p>
      </div>
      {busy && <progress max={100} value={percentOf(progress)} aria-label={t("backup.progress")} />}
      <ErrorText error={error} />
      <button type="submit" class="button primary wide" disabled={busy} data-testid="restore-submit">
        {busy ? t("restore.working") : t("restore.submit")}
      </button>
      <button type="button" class="button wide" onClick={onBack} disabled={busy}>
        {t("restore.back")}
      </button>
    </form>
  );
}
