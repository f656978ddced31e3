/** My invite: the newest open invite as text and QR, its expiry, copy, revoke, and a new one. */
import { useEffect, useState } from "preact/hooks";
import { createInvite, listInvites, revokeInvite } from "../api/commands";
import type { Invite } from "../api/types";
import { useI18n } from "../i18n";
import { daysUntil, formatDateTime } from "../lib/format";
import { svgDataUrl } from "../lib/safety";
import { copyText } from "./copy";
import { Dialog } from "./Dialog";
import { ErrorText } from "./ErrorText";
import { useCommand } from "./Form";
import { IconCopy } from "./Icons";

export function InviteDialog({ onClose, notify }: { onClose: () => void; notify: (text: string) => void }) {
  const { t, locale } = useI18n();
  const [invites, setInvites] = useState<Invite[] | null>(null);
  const [copied, setCopied] = useState(false);
  const { busy, error, setError, run } = useCommand();

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const open = await listInvites();
        const list = open.length > 0 ? open : [await createInvite()];
        if (live) setInvites(list);
      } catch (caught) {
        if (live) {
          setError(caught);
          setInvites([]);
        }
      }
    })();
    return () => {
      live = false;
    };
  }, []);

  const current = invites?.[0];
  const others = invites?.slice(1) ?? [];

  const makeNew = () =>
    run(async () => {
      const invite = await createInvite();
      setInvites((list) => [invite, ...(list ?? [])]);
      setCopied(false);
    });

  const revoke = async (id: string) => {
    setError(null);
    try {
      await revokeInvite({ id });
      setInvites((list) => (list ?? []).filter((i) => i.id !== id));
      setCopied(false);
      notify(t("invite.revoked"));
    } catch (caught) {
      setError(caught);
    }
  };

  const expiry = (invite: Invite) => {
    const days = daysUntil(invite.expiresAt);
    return days <= 1 ? t("invite.expiresToday") : t("invite.expiresInDays", { count: days });
  };

  return (
    <Dialog title={t("invite.title")} onClose={onClose} size="medium" describedBy="invite-lead">
      <p class="lead" id="invite-lead">
        {t("invite.lead")}
      </p>
      {invites === null && (
        <p class="muted" role="status">
          {t("invite.creating")}
        </p>
      )}
      {current !== undefined && (
        <div class="invite-card">
          <img class="qr" src={svgDataUrl(current.qrSvg)} alt={t("invite.qrAlt")} width={200} height={200} />
          <div class="invite-details">
            <label for="invite-text" class="field-label">
              {t("invite.textLabel")}
            </label>
            <textarea
              id="invite-text"
              data-testid="invite-text"
              class="invite-text mono"
              readOnly
              rows={4}
              value={current.text}
              spellcheck={false}
              onFocus={(event) => event.currentTarget.select()}
            />
            <div class="row">
              <button
                type="button"
                class="button primary"
                data-autofocus
                onClick={async () => {
                  const ok = await copyText(current.text);
                  setCopied(ok);
                }}
              >
                <IconCopy /> {copied ? t("common.copied") : t("common.copy")}
              </button>
              <span class="muted" title={formatDateTime(current.expiresAt, locale)}>
                {expiry(current)}
              </span>
            </div>
            <span class="sr-only" role="status">
              {copied ? t("common.copied") : ""}
            </span>
            <div class="row">
              <button type="button" class="button secondary" onClick={makeNew} disabled={busy}>
                {t("invite.new")}
              </button>
              <button type="button" class="button danger-ghost" onClick={() => void revoke(current.id)}>
                {t("invite.revoke")}
              </button>
            </div>
            <p class="hint">{t("invite.revokeHint")}</p>
          </div>
        </div>
      )}
      {invites !== null && current === undefined && (
        <div class="row">
          <p class="muted">{t("invite.none")}</p>
          <button type="button" class="button primary" onClick={makeNew} disabled={busy}>
            {t("invite.new")}
          </button>
        </div>
      )}
      <ErrorText error={error} />
      {others.length > 0 && (
        <section class="invite-others" aria-labelledby="invite-others-title">
          <h3 id="invite-others-title">{t("invite.others")}</h3>
          <ul>
            {others.map((invite) => (
              <li key={invite.id} class="invite-other">
                <span class="mono truncate">{invite.text}</span>
                <span class="muted">{t("invite.createdAt", { date: formatDateTime(invite.createdAt, locale) })}</span>
                <button type="button" class="button danger-ghost small" onClick={() => void revoke(invite.id)}>
                  {t("invite.revoke")}
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
    </Dialog>
  );
}
