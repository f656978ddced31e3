/** Settings: profile name, relays (local test relay switch and servers), notifications, privacy,
 * backup, language. */
import { useEffect, useState } from "preact/hooks";
import { getProfile, getSettings, setDisplayName, setRelayPassword, setSocksProxy, updateSettings } from "../api/commands";
import type { AppStatus, Profile, RelayConnection, Settings } from "../api/types";
import { useI18n, type LocaleChoice } from "../i18n";
import { BackupSection } from "./BackupSection";
import { Dialog } from "./Dialog";
import { ErrorText } from "./ErrorText";
import { Switch } from "./Switch";

type Section = "profile" | "relays" | "proxy" | "notifications" | "privacy" | "language";

export function SettingsDialog({
  status,
  connections,
  onClose,
  onProfileChanged,
}: {
  status: AppStatus;
  connections: RelayConnection[];
  onClose: () => void;
  onProfileChanged: (profile: Profile) => void;
}) {
  const { t, choice, setChoice } = useI18n();
  const [settings, setSettings] = useState<Settings | null>(null);
  const [profile, setProfile] = useState<Profile | null>(null);
  const [name, setName] = useState("");
  const [nameSaved, setNameSaved] = useState(false);
  const [newRelay, setNewRelay] = useState("");
  const [passwordRelay, setPasswordRelay] = useState("");
  const [relayPassword, setRelayPasswordText] = useState("");
  const [proxyAddress, setProxyAddress] = useState<string | null>(null);
  const [errors, setErrors] = useState<Partial<Record<Section, unknown>>>({});
  const [loadError, setLoadError] = useState<unknown>(null);

  useEffect(() => {
    Promise.all([getSettings(), getProfile()])
      .then(([s, p]) => {
        setSettings(s);
        setProfile(p);
        setName(p.displayName);
      })
      .catch((caught: unknown) => setLoadError(caught));
  }, []);

  const save = async (section: Section, next: Settings): Promise<boolean> => {
    const previous = settings;
    setSettings(next); // show the change at once; roll back on error
    setErrors((e) => ({ ...e, [section]: null }));
    try {
      setSettings(await updateSettings(next));
      return true;
    } catch (caught) {
      setSettings(previous);
      setErrors((e) => ({ ...e, [section]: caught }));
      return false;
    }
  };

  const saveName = async (event: Event) => {
    event.preventDefault();
    setErrors((e) => ({ ...e, profile: null }));
    try {
      const updated = await setDisplayName({ displayName: name.trim() });
      setProfile(updated);
      setNameSaved(true);
      onProfileChanged(updated);
    } catch (caught) {
      setErrors((e) => ({ ...e, profile: caught }));
    }
  };

  const addRelay = async (event: Event) => {
    event.preventDefault();
    if (settings === null || newRelay.trim() === "") return;
    const ok = await save("relays", { ...settings, relays: [...settings.relays, newRelay.trim()] });
    if (ok) setNewRelay("");
  };

  const savePassword = async (event: Event, password: string | null) => {
    event.preventDefault();
    if (settings === null) return;
    const url = passwordRelay !== "" ? passwordRelay : settings.relays[0];
    if (url === undefined) return;
    setErrors((e) => ({ ...e, relays: null }));
    try {
      setSettings(await setRelayPassword({ url, password }));
      setRelayPasswordText("");
    } catch (caught) {
      setErrors((e) => ({ ...e, relays: caught }));
    }
  };

  const saveProxy = async (address: string | null) => {
    setErrors((e) => ({ ...e, proxy: null }));
    try {
      const next = await setSocksProxy({ address });
      setSettings(next);
      setProxyAddress(next.socksProxy);
    } catch (caught) {
      setErrors((e) => ({ ...e, proxy: caught }));
    }
  };

  const stateOf = (url: string) => connections.find((c) => c.relayUrl === url);

  return (
    <Dialog title={t("settings.title")} onClose={onClose} size="large">
      <ErrorText error={loadError} />
      {settings !== null && profile !== null && (
        <div class="settings">
          <section class="settings-section" aria-labelledby="set-profile">
            <h3 id="set-profile">{t("settings.profile")}</h3>
            <form class="field" onSubmit={saveName}>
              <label for="settings-name">{t("settings.displayName")}</label>
              <div class="row">
                <input
                  id="settings-name"
                  type="text"
                  value={name}
                  maxLength={64}
                  required
                  autoComplete="off"
                  aria-describedby="settings-name-hint"
                  data-autofocus
                  onInput={(event) => {
                    setName(event.currentTarget.value);
                    setNameSaved(false);
                  }}
                />
                <button
                  type="submit"
                  class="button secondary"
                  disabled={name.trim() === "" || name.trim() === profile.displayName}
                >
                  {nameSaved ? t("common.saved") : t("common.save")}
                </button>
              </div>
              <p class="hint" id="settings-name-hint">
                {t("settings.displayNameHint")}
              </p>
            </form>
            <p class="kv">
              <span class="muted">{t("settings.profileName")}</span> <span class="mono">{profile.profile}</span>
            </p>
            <ErrorText error={errors.profile} />
          </section>

          <section class="settings-section" aria-labelledby="set-relays">
            <h3 id="set-relays">{t("settings.relays")}</h3>
            <Switch
              id="settings-local-relay"
              label={t("settings.localRelay")}
              hint={t("settings.localRelayHint", { port: settings.localRelay.port })}
              checked={settings.localRelay.enabled}
              onChange={(enabled) => void save("relays", { ...settings, localRelay: { ...settings.localRelay, enabled } })}
            />
            <p class="hint status-line" data-testid="local-relay-status">
              {status.localRelay.running && status.localRelay.url !== null
                ? t("settings.localRelayRunning", { url: status.localRelay.url })
                : t("settings.localRelayStopped")}
            </p>
            <h4>{t("settings.remoteRelays")}</h4>
            {settings.relays.length === 0 ? (
              <p class="muted">{t("settings.noRemoteRelays")}</p>
            ) : (
              <ul class="relay-list">
                {settings.relays.map((url) => {
                  const connection = stateOf(url);
                  return (
                    <li key={url} class="relay-item">
                      <span class={`connection-dot small ${connection?.state ?? "offline"}`} aria-hidden="true" />
                      <span class="mono truncate">{url}</span>
                      {settings.relaysWithPassword.includes(url) && (
                        <span class="muted" data-testid="relay-has-password">
                          {t("settings.relayHasPassword")}
                        </span>
                      )}
                      <span class="muted">
                        {connection === undefined ? "" : t(`connection.${connection.state}`)}
                      </span>
                      <button
                        type="button"
                        class="button danger-ghost small"
                        aria-label={t("settings.removeRelay", { url })}
                        onClick={() => void save("relays", { ...settings, relays: settings.relays.filter((r) => r !== url) })}
                      >
                        {t("common.remove")}
                      </button>
                    </li>
                  );
                })}
              </ul>
            )}
            <form class="field" onSubmit={addRelay}>
              <label for="settings-add-relay">{t("settings.addRelayLabel")}</label>
              <div class="row">
                <input
                  id="settings-add-relay"
                  type="url"
                  class="mono"
                  value={newRelay}
                  placeholder={t("onboarding.relayUrlPlaceholder")}
                  spellcheck={false}
                  autoComplete="off"
                  onInput={(event) => setNewRelay(event.currentTarget.value)}
                />
                <button type="submit" class="button secondary" disabled={newRelay.trim() === ""}>
                  {t("common.add")}
                </button>
              </div>
            </form>
            {settings.relays.length > 0 && (
              <form class="field" onSubmit={(event) => void savePassword(event, relayPassword)}>
                <label for="settings-relay-password">{t("settings.relayPasswordLabel")}</label>
                <div class="row">
                  <select
                    id="settings-relay-password-relay"
                    aria-label={t("settings.relayPasswordRelay")}
                    value={passwordRelay !== "" ? passwordRelay : settings.relays[0]}
                    onChange={(event) => setPasswordRelay(event.currentTarget.value)}
                  >
                    {settings.relays.map((url) => (
                      <option key={url} value={url}>
                        {url}
                      </option>
                    ))}
                  </select>
                  <input
                    id="settings-relay-password"
                    type="password"
                    value={relayPassword}
                    autoComplete="off"
                    aria-describedby="settings-relay-password-hint"
                    onInput={(event) => setRelayPasswordText(event.currentTarget.value)}
                  />
                  <button type="submit" class="button secondary" disabled={relayPassword === ""}>
                    {t("common.save")}
                  </button>
                  {settings.relaysWithPassword.includes(passwordRelay !== "" ? passwordRelay : (settings.relays[0] ?? "")) && (
                    <button
                      type="button"
                      class="button danger-ghost small"
                      onClick={(event) => void savePassword(event, null)}
                    >
                      {t("settings.relayPasswordClear")}
                    </button>
                  )}
                </div>
                <p class="hint" id="settings-relay-password-hint">
                  {t("settings.relayPasswordHint")}
                </p>
              </form>
            )}
            <ErrorText error={errors.relays} />
          </section>

          <section class="settings-section" aria-labelledby="set-proxy">
            <h3 id="set-proxy">{t("settings.proxy")}</h3>
            <p class="hint">{t("settings.proxyHint")}</p>
            <form
              class="field"
              onSubmit={(event) => {
                event.preventDefault();
                void saveProxy((proxyAddress ?? settings.socksProxy ?? "").trim());
              }}
            >
              <label for="settings-proxy">{t("settings.proxyAddress")}</label>
              <div class="row">
                <input
                  id="settings-proxy"
                  type="text"
                  class="mono"
                  value={proxyAddress ?? settings.socksProxy ?? ""}
                  placeholder="127.0.0.1:9050"
                  spellcheck={false}
                  autoComplete="off"
                  onInput={(event) => setProxyAddress(event.currentTarget.value)}
                />
                <button
                  type="submit"
                  class="button secondary"
                  disabled={(proxyAddress ?? settings.socksProxy ?? "").trim() === ""}
                >
                  {t("common.save")}
                </button>
                {settings.socksProxy !== null && (
                  <button type="button" class="button danger-ghost small" onClick={() => void saveProxy(null)}>
                    {t("settings.proxyOff")}
                  </button>
                )}
              </div>
            </form>
            <ErrorText error={errors.proxy} />
          </section>

          <section class="settings-section" aria-labelledby="set-connections">
            <h3 id="set-connections">{t("settings.connections")}</h3>
            {connections.length === 0 ? (
              <p class="muted">{t("connection.none")}</p>
            ) : (
              <ul class="relay-list">
                {connections.map((connection) => (
                  <li key={connection.relayUrl} class="relay-item connection-item">
                    <span class={`connection-dot small ${connection.state}`} aria-hidden="true" />
                    <span class="mono truncate">{connection.relayUrl}</span>
                    <span class="muted">
                      {connection.state === "offline" && connection.retryInSeconds !== null
                        ? t("connection.offlineRetry", { seconds: connection.retryInSeconds })
                        : t(`connection.${connection.state}`)}
                    </span>
                  </li>
                ))}
              </ul>
            )}
          </section>

          <section class="settings-section" aria-labelledby="set-notifications">
            <h3 id="set-notifications">{t("settings.notifications")}</h3>
            <Switch
              id="settings-notify"
              label={t("settings.notificationsEnabled")}
              checked={settings.notifications.enabled}
              onChange={(enabled) =>
                void save("notifications", { ...settings, notifications: { ...settings.notifications, enabled } })
              }
            />
            <Switch
              id="settings-notify-text"
              label={t("settings.notificationsShowText")}
              hint={t("settings.notificationsShowTextHint")}
              checked={settings.notifications.showText}
              disabled={!settings.notifications.enabled}
              onChange={(showText) =>
                void save("notifications", { ...settings, notifications: { ...settings.notifications, showText } })
              }
            />
            <ErrorText error={errors.notifications} />
          </section>

          <section class="settings-section" aria-labelledby="set-privacy">
            <h3 id="set-privacy">{t("settings.privacy")}</h3>
            <Switch
              id="settings-receipts"
              label={t("settings.readReceipts")}
              hint={t("settings.readReceiptsHint")}
              checked={settings.readReceipts}
              onChange={(readReceipts) => void save("privacy", { ...settings, readReceipts })}
            />
            <ErrorText error={errors.privacy} />
          </section>

          <BackupSection />

          <section class="settings-section" aria-labelledby="set-language">
            <h3 id="set-language">{t("settings.language")}</h3>
            <div class="field">
              <label for="settings-language" class="sr-only">
                {t("settings.language")}
              </label>
              <select
                id="settings-language"
                value={choice}
                onChange={(event) => setChoice(event.currentTarget.value as LocaleChoice)}
              >
                <option value="auto">{t("settings.languageAuto")}</option>
                <option value="en" lang="en">
                  English
                </option>
                <option value="ja" lang="ja">
                  日本語
                </option>
              </select>
            </div>
          </section>

          <section class="settings-section" aria-labelledby="set-shortcuts">
            <h3 id="set-shortcuts">{t("settings.shortcuts")}</h3>
            <dl class="shortcuts">
              <dt><kbd>Ctrl</kbd> + <kbd>K</kbd></dt>
              <dd>{t("shortcut.search")}</dd>
              <dt><kbd>Ctrl</kbd> + <kbd>N</kbd></dt>
              <dd>{t("shortcut.add")}</dd>
              <dt><kbd>Ctrl</kbd> + <kbd>I</kbd></dt>
              <dd>{t("shortcut.invite")}</dd>
              <dt><kbd>Ctrl</kbd> + <kbd>,</kbd></dt>
              <dd>{t("shortcut.settings")}</dd>
              <dt><kbd>Alt</kbd> + <kbd>↓</kbd> / <kbd>↑</kbd></dt>
              <dd>{t("shortcut.nextChat")}</dd>
              <dt><kbd>Enter</kbd></dt>
              <dd>{t("shortcut.send")}</dd>
              <dt><kbd>Shift</kbd> + <kbd>Enter</kbd></dt>
              <dd>{t("shortcut.newline")}</dd>
              <dt><kbd>Esc</kbd></dt>
              <dd>{t("shortcut.close")}</dd>
            </dl>
          </section>
        </div>
      )}
    </Dialog>
  );
}
