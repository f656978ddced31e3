/** First run: display name (kept local), keys made by the engine, relay choice (local test relay
 * first); or "Restore from a backup" (RestoreBackup.tsx). */
import { useState } from "preact/hooks";
import { onboard, setSocksProxy } from "../api/commands";
import type { Profile } from "../api/types";
import { useI18n } from "../i18n";
import { ErrorText } from "./ErrorText";
import { TextField, useCommand } from "./Form";
import { IconLock, IconLogo } from "./Icons";
import { RestoreBackup } from "./RestoreBackup";

export function Onboarding({ profile, onDone }: { profile: string; onDone: (profile: Profile) => void }) {
  const { t } = useI18n();
  const [name, setName] = useState("");
  const [relayKind, setRelayKind] = useState<"local" | "remote">("local");
  const [url, setUrl] = useState("");
  const [password, setPassword] = useState("");
  const [useProxy, setUseProxy] = useState(false);
  const [proxy, setProxy] = useState("127.0.0.1:9050");
  const { busy, error, run } = useCommand();
  const [restoring, setRestoring] = useState(false);

  const submit = (event: Event) => {
    event.preventDefault();
    if (busy) return;
    void run(
      async () => {
        // The proxy first, so no relay connection is ever made without it.
        await setSocksProxy({ address: useProxy ? proxy.trim() : null });
        const result = await onboard({
          displayName: name.trim(),
          relay:
            relayKind === "local"
              ? { kind: "local" }
              : password === ""
                ? { kind: "remote", url: url.trim() }
                : { kind: "remote", url: url.trim(), password },
        });
        onDone(result);
      },
      { staysBusy: true },
    );
  };

  if (restoring) {
    return (
      <main class="onboarding">
        <RestoreBackup onBack={() => setRestoring(false)} onDone={() => location.reload()} />
      </main>
    );
  }

  return (
    <main class="onboarding">
      <form class="onboarding-card" onSubmit={submit} aria-labelledby="onboarding-title" aria-busy={busy}>
        <div class="onboarding-brand">
          <IconLogo size={40} />
        </div>
        <h1 id="onboarding-title">{t("onboarding.title")}</h1>
        <p class="lead">{t("onboarding.lead")}</p>

        <TextField
          id="onboarding-name"
          testId="onboarding-name"
          label={t("onboarding.nameLabel")}
          value={name}
          onValue={setName}
          placeholder={t("onboarding.namePlaceholder")}
          maxLength={64}
          required
          describedBy="onboarding-name-hint"
          autofocus
          focusOnMount
        >
          <p class="hint" id="onboarding-name-hint">
            {t("onboarding.nameHint")}
          </p>
        </TextField>

        <fieldset class="choice-group">
          <legend>{t("onboarding.relayLegend")}</legend>
          <label class={`choice ${relayKind === "local" ? "selected" : ""}`}>
            <input
              type="radio"
              name="relay"
              value="local"
              checked={relayKind === "local"}
              onChange={() => setRelayKind("local")}
              aria-describedby="relay-local-hint"
            />
            <span class="choice-text">
              <span class="choice-title">{t("onboarding.relayLocal")}</span>
              <span class="hint" id="relay-local-hint">
                {t("onboarding.relayLocalHint")}
              </span>
            </span>
          </label>
          <label class={`choice ${relayKind === "remote" ? "selected" : ""}`}>
            <input
              type="radio"
              name="relay"
              value="remote"
              checked={relayKind === "remote"}
              onChange={() => setRelayKind("remote")}
              aria-describedby="relay-remote-hint"
            />
            <span class="choice-text">
              <span class="choice-title">{t("onboarding.relayRemote")}</span>
              <span class="hint" id="relay-remote-hint">
                {t("onboarding.relayRemoteHint")}
              </span>
            </span>
          </label>
          {relayKind === "remote" && (
            <div class="field nested">
              <label for="onboarding-url">{t("onboarding.relayUrlLabel")}</label>
              <input
                id="onboarding-url"
                type="url"
                value={url}
                onInput={(e) => setUrl(e.currentTarget.value)}
                placeholder={t("onboarding.relayUrlPlaceholder")}
                required
                autoComplete="off"
                spellcheck={false}
              />
              <label for="onboarding-relay-password">{t("onboarding.relayPasswordLabel")}</label>
              <input
                id="onboarding-relay-password"
                type="password"
                value={password}
                onInput={(e) => setPassword(e.currentTarget.value)}
                autoComplete="off"
                aria-describedby="onboarding-relay-password-hint"
              />
              <p class="hint" id="onboarding-relay-password-hint">
                {t("onboarding.relayPasswordHint")}
              </p>
            </div>
          )}
        </fieldset>

        <div class="field">
          <label class="checkbox">
            <input
              type="checkbox"
              checked={useProxy}
              onChange={(e) => setUseProxy(e.currentTarget.checked)}
            />{" "}
            {t("onboarding.proxy")}
          </label>
          {useProxy && (
            <TextField
              id="onboarding-proxy"
              fieldClass="field nested"
              inputClass="mono"
              label={t("onboarding.proxyAddress")}
              value={proxy}
              onValue={setProxy}
              required
              spellcheck={false}
            />
          )}
        </div>

        <ErrorText error={error} />

        <button type="submit" class="button primary wide" disabled={busy} data-testid="onboarding-submit">
          {busy ? t("onboarding.working") : t("onboarding.submit")}
        </button>
        <button
          type="button"
          class="button wide"
          onClick={() => setRestoring(true)}
          disabled={busy}
          data-testid="onboarding-restore"
        >
          {t("onboarding.restore")}
        </button>
        <p class="fineprint">
          <IconLock /> {t("onboarding.keysNote")}
        </p>
        <p class="fineprint muted">{t("onboarding.profile", { profile })}</p>
      </form>
    </main>
  );
}
