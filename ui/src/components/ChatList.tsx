/**
 * The chat list: one row per group (name, member count, unread count) and one per contact (last
 * message, time, unread count).
 */
import type { Chat, Group } from "../api/types";
import { useI18n } from "../i18n";
import { formatDateTime, formatListStamp } from "../lib/format";
import { Avatar } from "./Avatar";
import { IconBlock, IconShieldSmall, IconWarning } from "./Icons";

/** Up/Down/Home/End move focus between rows (Tab still walks them too). */
function moveFocus(event: KeyboardEvent) {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const list = event.currentTarget as HTMLElement;
  const rows = [...list.querySelectorAll<HTMLElement>(".chat-row")];
  const index = rows.indexOf(document.activeElement as HTMLElement);
  if (index < 0) return;
  const target =
    event.key === "ArrowDown"
      ? rows[Math.min(index + 1, rows.length - 1)]
      : event.key === "ArrowUp"
        ? index === 0
          ? document.getElementById("chat-search")
          : rows[index - 1]
        : event.key === "Home"
          ? rows[0]
          : event.key === "End"
            ? rows[rows.length - 1]
            : undefined;
  if (target === undefined || target === null) return;
  event.preventDefault();
  target.focus();
}

export function ChatList({
  chats,
  selectedId,
  onSelect,
  groups = [],
  selectedGroupId = null,
  onSelectGroup = () => undefined,
}: {
  chats: Chat[];
  selectedId: string | null;
  onSelect: (contactId: string) => void;
  /** Groups, most recent activity first, listed above the contacts. */
  groups?: Group[];
  selectedGroupId?: string | null;
  onSelectGroup?: (groupId: string) => void;
}) {
  const { t, locale } = useI18n();
  return (
    <ul class="chat-list" data-testid="chat-list" aria-label={t("nav.chatListLabel")} onKeyDown={moveFocus}>
      {groups.map((group) => {
        const selected = group.id === selectedGroupId;
        return (
          <li key={`g-${group.id}`}>
            <button
              type="button"
              class={`chat-row group-row ${selected ? "selected" : ""} ${group.unreadCount > 0 ? "has-unread" : ""}`}
              aria-current={selected ? "true" : undefined}
              data-group-id={group.id}
              data-testid="group-row"
              onClick={() => onSelectGroup(group.id)}
            >
              <Avatar id={group.id} name={group.name} />
              <span class="chat-row-body">
                <span class="chat-row-top">
                  <span class="chat-row-name">
                    <span class="truncate" data-testid="group-row-name">{group.name}</span>
                    <span class="group-tag">{t("chats.group")}</span>
                  </span>
                </span>
                <span class="chat-row-bottom">
                  <span class="chat-row-preview truncate">
                    {group.isMember ? t("chats.groupMembers", { count: group.members.length }) : t("chats.groupLeft")}
                  </span>
                  {group.unreadCount > 0 && (
                    <>
                      <span class="unread-badge" aria-hidden="true" data-testid="group-row-unread">
                        {group.unreadCount > 99 ? "99+" : group.unreadCount}
                      </span>
                      <span class="sr-only">{t("chats.unread", { count: group.unreadCount })}</span>
                    </>
                  )}
                </span>
              </span>
            </button>
          </li>
        );
      })}
      {chats.map((chat) => {
        const last = chat.lastMessage;
        const preview = last === null ? t("chats.noMessages") : last.outgoing ? t("chats.youPrefix", { text: last.text }) : last.text;
        const selected = chat.contactId === selectedId;
        return (
          <li key={chat.contactId}>
            <button
              type="button"
              class={`chat-row ${selected ? "selected" : ""} ${chat.unread > 0 ? "has-unread" : ""}`}
              aria-current={selected ? "true" : undefined}
              data-contact-id={chat.contactId}
              data-testid="chat-row"
              onClick={() => onSelect(chat.contactId)}
            >
              <Avatar id={chat.contactId} name={chat.displayName} />
              <span class="chat-row-body">
                <span class="chat-row-top">
                  <span class="chat-row-name">
                    <span class="truncate" data-testid="chat-row-name">{chat.displayName}</span>
                    {chat.verified && (
                      <span class="badge-icon verified" role="img" aria-label={t("chats.verified")} title={t("chats.verified")}>
                        <IconShieldSmall />
                      </span>
                    )}
                    {chat.blocked && (
                      <span class="badge-icon blocked" role="img" aria-label={t("chats.blocked")} title={t("chats.blocked")}>
                        <IconBlock />
                      </span>
                    )}
                  </span>
                  {last !== null && (
                    <time class="chat-row-time" dateTime={new Date(last.at).toISOString()} title={formatDateTime(last.at, locale)}>
                      {formatListStamp(last.at, locale)}
                    </time>
                  )}
                </span>
                <span class="chat-row-bottom">
                  {chat.keyChanged ? (
                    <span class="chat-row-preview warning">
                      <IconWarning size={14} /> {t("chats.keyChanged")}
                    </span>
                  ) : (
                    <span class="chat-row-preview truncate">{preview}</span>
                  )}
                  {chat.unread > 0 && (
                    <>
                      <span class="unread-badge" aria-hidden="true" data-testid="chat-row-unread">
                        {chat.unread > 99 ? "99+" : chat.unread}
                      </span>
                      <span class="sr-only">{t("chats.unread", { count: chat.unread })}</span>
                    </>
                  )}
                </span>
              </span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}
