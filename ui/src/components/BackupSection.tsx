/** Settings → Backup: one passphrase-encrypted file with the whole profile (docs/backup.md). A
 * generated passphrase is offered (made in the window, never sent back over IPC); a typed one is
 * checked by the engine. Progress comes from `backup-progress` events. */
import { useEffect, useState } from "preact/hooks";
import { exportBackup } from "../api/commands";
import { onEngineEvent } from "../api/events";
import type { BackupProgress, BackupSummary } from "../api/types";
import { useI18n } from "../i18n";
import { generatePassphrase } from "../lib/passphrase";
import { copyText } from "./copy";
import { ErrorText } from "./ErrorText";
import { useCommand } from "./Form";

/** Whole percent of a progress event. */
export function percentOf(progress: BackupProgress | null): number {
  if (progress === null || progress.total <= 0) return 0;
  return Math.min(100, Math.floor((progress.done * 100) / progress.total));
}

/** Listens to `backup-progress` while `active`. */
export function useBackupProgress(active: boolean): BackupProgress | null {
  const [progress, setProgress] = useState<BackupProgress | null>(null);
  useEffect(() => {
    if (!active) {
      setProgress(null);
      return;
    }
    let stop: (() => void) | null = null;
    let stopped = false;
    void onEngineEvent("backup-progress", setProgress).then((unlisten) => {
      if (stopped) unlisten();
      else stop = unlisten;
    });
    return () => {
      stopped = true;
      stop?.();
    };
  }, [active]);
  return progress;
}

export function BackupSection() {
  const { t } = useI18n();
  const [mode, setMode] = useState<"generated" | "typed">("generated");
  const [generated, setGenerated] = useState(() => generatePassphrase());
  const [written, setWritten] = useState(false);
  const [typed, setTyped] = useState("");
  const [confirm, setConfirm] = useState("");
  const [path, setPath] = useState("");
  const { busy, error, run } = useCommand();
  const [done, setDone] = useState<BackupSummary | null>(null);
  const [copied, setCopied] = useState(false);
  const progress = useBackupProgress(busy);

  const mismatch = mode === "typed" && confirm !== "" && typed !== confirm;
  const ready = mode === "generated" ? written : typed !== "" && typed === confirm;

  const submit = (event: Event) => {
    event.preventDefault();
    if (busy || !ready) return;
    setDone(null);
    void run(async () => {
      const summary = await exportBackup({ path: path.trim(), passphrase: mode === "generated" ? generated : typed });
      setDone(summary);
      setTyped("");
      setConfirm("");
    });
  };

  return (
    <section class="settings-section" aria-labelledby="set-backup" data-testid="settings-backup">
      <h3 id="set-backup">{t("backup.title")}</h3>
      <p class="hint">{t("backup.lead")}</p>
      <form class="field" onSubmit={submit} aria-busy={busy}>
        <fieldset class="choice-group">
          <legend>{t("backup.passphraseLegend")}</legend>
          <label class={`choice ${mode === "generated" ? "selected" : ""}`}>
            <input type="radio" name="backup-mode" checked={mode === "generated"} onChange={() => setMode("generated")} />
            <span class="choice-text">
              <span class="choice-title">{t("backup.generated")}</span>
            </span>
          </label>
          {mode === "generated" && (
            <div class="field nested">
              <p class="mono" data-testid="backup-generated" aria-label={t("backup.generatedLabel")}>
                {generated}
              </p>
              <div class="row">
                <button
                  type="button"
                  class="button"
                  onClick={() => void copyText(generated).then(() => setCopied(true))}
                >
                  {copied ? t("common.copied") : t("common.copy")}
                </button>
                <button
                  type="button"
                  class="button"
                  onClick={() => {
                    setGenerated(generatePassphrase());
                    setWritten(false);
                    setCopied(false);
                  }}
                >
                  {t("backup.another")}
                </button>
              </div>
              <label class="checkbox">
                <input type="checkbox" checked={written} onChange={(e) => setWritten(e.currentTarget.checked)} />{" "}
                {t("backup.writtenDown")}
              </label>
            </div>
          )}
          <label class={`choice ${mode === "typed" ? "selected" : ""}`}>
            <input type="radio" name="backup-mode" checked={mode === "typed"} onChange={() => setMode("typed")} />
            <span class="choice-text">
              <span class="choice-title">{t("backup.typed")}</span>
              <span class="hint">{t("backup.typedHint")}</span>
            </span>
          </label>
          {mode === "typed" && (
            <div class="field nested">
              <label for="backup-passphrase">{t("backup.passphrase")}</label>
              <input
                id="backup-passphrase"
                type="password"
                value={typed}
                onInput={(e) => setTyped(e.currentTarget.value)}
                autoComplete="new-password"
              />
              <label for="backup-confirm">{t("backup.confirm")}</label>
              <input
                id="backup-confirm"
                type="password"
                value={confirm}
                onInput={(e) => setConfirm(e.currentTarget.value)}
                autoComplete="new-password"
                aria-invalid={mismatch}
              />
              {mismatch && <p class="error-text">{t("backup.mismatch")}</p>}
            </div>
          )}
        </fieldset>
        <label for="backup-path">{t("backup.path")}</label>
        <input
          id="backup-path"
          type="text"
          class="mono"
          value={path}
          onInput={(e) => setPath(e.currentTarget.value)}
          placeholder={t("backup.pathPlaceholder")}
          autoComplete="off"
          spellcheck={false}
        />
        <p class="hint">{t("backup.warning")}</p>
        {busy && (
          <progress max={100} value={percentOf(progress)} aria-label={t("backup.progress")} data-testid="backup-progress" />
        )}
        <ErrorText error={error} />
        {done !== null && (
          <p class="hint" role="status" data-testid="backup-done">
            {t("backup.done", { path: done.path })}
          </p>
        )}
        <button type="submit" class="button primary" disabled={busy || !ready} data-testid="backup-submit">
          {busy ? t("backup.working") : t("backup.submit")}
        </button>
      </form>
    </section>
  );
}
