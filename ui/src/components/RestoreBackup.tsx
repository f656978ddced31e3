/** Onboarding's "Restore from a backup": the backup file and its passphrase. The engine checks
 * the whole file before anything changes; on success the app relaunches with the restored
 * profile, whose sessions all restart (docs/backup.md). */
import { useState } from "preact/hooks";
import { restoreBackup } from "../api/commands";
import { useI18n } from "../i18n";
import { percentOf, useBackupProgress } from "./BackupSection";
import { ErrorText } from "./ErrorText";
import { TextField, useCommand } from "./Form";

export function RestoreBackup({ onBack, onDone }: { onBack: () => void; onDone: () => void }) {
  const { t } = useI18n();
  const [path, setPath] = useState("");
  const [passphrase, setPassphrase] = useState("");
  const { busy, error, run } = useCommand();
  const progress = useBackupProgress(busy);

  const submit = (event: Event) => {
    event.preventDefault();
    if (busy) return;
    void run(
      async () => {
        await restoreBackup({ path: path.trim(), passphrase });
        setPassphrase("");
        onDone();
      },
      { staysBusy: true },
    );
  };

  return (
    <form class="onboarding-card" onSubmit={submit} aria-labelledby="restore-title" aria-busy={busy}>
      <h1 id="restore-title">{t("restore.title")}</h1>
      <p class="lead">{t("restore.lead")}</p>
      <TextField
        id="restore-path"
        testId="restore-path"
        inputClass="mono"
        label={t("restore.path")}
        value={path}
        onValue={setPath}
        required
        spellcheck={false}
        focusOnMount
      />
      <TextField
        id="restore-passphrase"
        testId="restore-passphrase"
        type="password"
        label={t("restore.passphrase")}
        value={passphrase}
        onValue={setPassphrase}
        required
      >
        <p class="hint">{t("restore.hint")}</p>
      </TextField>
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
