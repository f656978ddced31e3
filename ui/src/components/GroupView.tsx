/**
 * One group conversation (`docs/engine.md` § Groups): header with member count and actions,
 * history where each text shows its author's name in a stable colour, system lines for roster
 * changes, "delivered to 3 of 4" on the user's own texts, and the composer (closed once the user
 * left or was removed). It follows the engine's group events (`group-message-received`,
 * `group-message-state`, `group-roster-changed`; no polling). Text and names from peers are
 * rendered as text nodes only.
 */
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { getGroup, getGroupMessages, markGroupRead, sendGroupMessage, setGroupTimer } from "../api/commands";
import { subscribeAll } from "../api/events";
import type { Attachment, Group, GroupMessage, SearchHit } from "../api/types";
import { useI18n } from "../i18n";
import { filesOf, isNearBottom, NEAR_TOP_PX, useReadWhenSeen, useScrollToResult } from "../lib/conversation";
import { formatDateTime } from "../lib/format";
import {
  authorName,
  authorTone,
  groupWithSafeNames,
  hasUnreadIncoming,
  learnNames,
  mergeGroupMessages,
  rosterLineText,
  type KnownNames,
} from "../lib/groups";
import { stateLabelKey, TIMER_SETTINGS, timerKey } from "../lib/messages";
import { sendGroupFiles, useAttachments } from "./Attachments";
import { Avatar } from "./Avatar";
import { Composer } from "./Composer";
import { ErrorText } from "./ErrorText";
import { IconMore, StateGlyph } from "./Icons";
import { MenuButton, type MenuItem } from "./Menu";
import { HistoryScroller, MessageBody, MessageList, messageRowAttributes, MessageTimes, PendingUploads, TimerTag } from "./MessageParts";

/** Messages fetched per page. */
export const GROUP_PAGE_SIZE = 60;

export function GroupView({
  group: initial,
  onOpenMembers,
  onRename,
  onLeave,
  onChanged,
  foundAt = null,
}: {
  group: Group;
  /** A search result in this group: scrolled to, its words highlighted. */
  foundAt?: SearchHit | null;
  onOpenMembers: () => void;
  onRename: () => void;
  onLeave: () => void;
  /** The group's row may have changed (unread, roster): refresh the list. */
  onChanged: () => void;
}) {
  const { t } = useI18n();
  const groupId = initial.id;
  const [group, setGroup] = useState<Group>(initial);
  const [messages, setMessages] = useState<GroupMessage[]>([]);
  const [hasMore, setHasMore] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [known, setKnown] = useState<KnownNames>(new Map());
  const scroller = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  const ownKeyRef = useRef<string | null>(null);

  const nearBottom = () => isNearBottom(scroller.current);

  /** The group and its newest page, asked again (on open, and when its roster changed). */
  const refresh = useCallback(async () => {
    try {
      const [fresh, page] = await Promise.all([
        getGroup({ groupId }),
        getGroupMessages({ groupId, beforeSeq: null, limit: GROUP_PAGE_SIZE }),
      ]);
      const safe = groupWithSafeNames(fresh);
      stickToBottom.current = nearBottom();
      setGroup(safe);
      setMessages((current) => {
        if (current.length === 0 && page.length >= GROUP_PAGE_SIZE) setHasMore(true);
        return mergeGroupMessages(current, page);
      });
      setLoadError(null);
    } catch (error) {
      setLoadError(error);
    } finally {
      setLoaded(true);
    }
  }, [groupId]);

  useEffect(
    () =>
      subscribeAll({
        "group-message-received": ({ groupId: id, message }) => {
          if (id !== groupId) return;
          stickToBottom.current = nearBottom();
          setMessages((current) => mergeGroupMessages(current, [message]));
        },
        "group-message-state": ({ groupId: id, messageId, state, recipients, deliveredTo, readBy }) => {
          if (id !== groupId) return;
          setMessages((current) =>
            current.map((m) => (m.id === messageId ? { ...m, state, recipients, deliveredTo, readBy } : m)),
          );
        },
        // A roster change adds a system line and may change names, roles and membership.
        "group-roster-changed": ({ groupId: id }) => {
          if (id === groupId) void refresh();
        },
        // Disappearing texts whose timer ran out: gone from the store, gone from the view.
        "group-messages-expired": ({ groupId: id, messageIds }) => {
          if (id !== groupId) return;
          const gone = new Set(messageIds);
          setMessages((current) => current.filter((m) => !gone.has(m.id)));
        },
      }),
    [groupId, refresh],
  );

  // The parent's copy is newer after an action of the user's (rename, add, remove, leave): show
  // it, and fetch the system line that action added.
  useEffect(() => {
    setGroup(initial);
    void refresh();
  }, [initial, refresh]);

  const loadOlder = useCallback(async () => {
    const oldest = messages[0];
    if (!hasMore || oldest === undefined) return;
    const el = scroller.current;
    const fromBottom = el === null ? 0 : el.scrollHeight - el.scrollTop;
    try {
      const page = await getGroupMessages({ groupId, beforeSeq: oldest.seq, limit: GROUP_PAGE_SIZE });
      setHasMore(page.length >= GROUP_PAGE_SIZE);
      stickToBottom.current = false;
      setMessages((current) => mergeGroupMessages(current, page));
      requestAnimationFrame(() => {
        if (el !== null) el.scrollTop = el.scrollHeight - fromBottom;
      });
    } catch (error) {
      setLoadError(error);
    }
  }, [groupId, hasMore, messages]);

  // Opened at a search result: page back until its message is loaded, then scroll to it.
  useScrollToResult({
    scroller,
    foundAt,
    messages,
    ready: loaded,
    hasMore,
    loadOlder,
    onReached: () => (stickToBottom.current = false),
  });

  const me = group.members.find((m) => m.isMe);
  if (me !== undefined) ownKeyRef.current = me.key;
  else if (ownKeyRef.current === null) {
    ownKeyRef.current = messages.find((m) => m.outgoing)?.authorKey ?? null;
  }
  const ownKey = ownKeyRef.current;

  useEffect(() => setKnown((current) => learnNames(current, group, messages, t)), [group, messages, t]);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (el !== null && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages]);

  // Mark read what the person can see: open, scrolled to the newest, window visible and focused.
  const recheckRead = useReadWhenSeen(scroller, messages, groupId, () => {
    if (!hasUnreadIncoming(messages)) return null;
    return markGroupRead({ groupId }).then(() => {
      setMessages((current) =>
        current.map((m) => (!m.outgoing && !m.isRosterChange && m.state !== "read" ? { ...m, state: "read" } : m)),
      );
      onChanged();
    });
  });

  const send = async (text: string) => {
    const message = await sendGroupMessage({ groupId, text });
    stickToBottom.current = true;
    setMessages((current) => mergeGroupMessages(current, [message]));
    onChanged();
  };

  // Files (uploaded once for every member); when an upload finishes, its message exists.
  const attachments = useAttachments(groupId, () => void refresh(), "group");
  const { attachmentOf, pendingUploads } = filesOf(attachments);

  const memberCount = group.members.length;
  const menuItems = useMemo(() => {
    const items: MenuItem[] = [{ label: t("group.membersButton"), onSelect: onOpenMembers }];
    if (group.isMember && group.isAdmin) {
      items.push({ label: t("group.rename"), onSelect: onRename });
      // The disappearing timer is the admins' to set, like the name (`docs/engine.md`).
      for (const seconds of TIMER_SETTINGS) {
        items.push({
          label: t("timer.menuItem", { setting: t(timerKey(seconds)) }) + (seconds === group.timerSeconds ? " ✓" : ""),
          onSelect: () =>
            void setGroupTimer({ groupId, seconds })
              .then((fresh) => {
                setGroup(groupWithSafeNames(fresh));
                stickToBottom.current = true;
                void refresh();
                onChanged();
              })
              .catch((error: unknown) => setLoadError(error)),
        });
      }
    }
    if (group.isMember) items.push({ label: t("group.leave"), onSelect: onLeave, danger: true });
    return items;
  }, [group.isMember, group.isAdmin, group.timerSeconds, groupId, onOpenMembers, onRename, onLeave, onChanged, refresh, t]);

  return (
    <section class="chat-view group-view" aria-labelledby="chat-title" data-testid="group-view" data-group-id={groupId}>
      <header class="chat-header">
        <Avatar id={groupId} name={group.name} />
        <div class="chat-header-text">
          <h2 id="chat-title" class="truncate" data-testid="group-title">
            {group.name}
          </h2>
          <p class="chat-header-sub">
            {group.isMember ? t("group.memberCount", { count: memberCount }) : t("chats.groupLeft")}
            {group.isMember && group.isAdmin && <span class="role-badge admin">{t("group.youAreAdmin")}</span>}
            <TimerTag seconds={group.timerSeconds} testId="group-timer" />
          </p>
        </div>
        <button
          type="button"
          class="button ghost"
          onClick={onOpenMembers}
          data-testid="open-group-members"
          title={`${t("group.membersButton")} (Ctrl+Shift+M)`}
          aria-keyshortcuts="Control+Shift+M"
        >
          {t("group.membersButton")} · {memberCount}
        </button>
        <MenuButton label={t("group.menu")} icon={<IconMore />} items={menuItems} />
      </header>

      {!group.isMember && (
        <div class="key-banner quiet" role="status" data-testid="group-not-member">
          <p>{t("group.notMember")}</p>
        </div>
      )}

      <HistoryScroller
        scroller={scroller}
        label={t("group.messagesLabel", { name: group.name })}
        busy={!loaded}
        onScroll={(event) => {
          if (event.currentTarget.scrollTop < NEAR_TOP_PX) void loadOlder();
          if (nearBottom() && hasUnreadIncoming(messages)) recheckRead();
        }}
      >
        <div class="history-edge">
          {hasMore ? (
            <button type="button" class="button ghost small" onClick={() => void loadOlder()}>
              {t("chat.loadEarlier")}
            </button>
          ) : (
            loaded && messages.length === 0 && <p class="muted history-start">{t("group.empty")}</p>
          )}
          <ErrorText error={loadError} />
        </div>
        <MessageList
          messages={messages}
          sameRun={(previous, message) => !previous.isRosterChange && previous.authorKey === message.authorKey}
          row={(message, continued) =>
            message.isRosterChange ? (
              <li class="system-line" data-testid="group-system-line" data-seq={message.seq}>
                <span>{rosterLineText(message, known, ownKey, t)}</span>
              </li>
            ) : (
              <GroupMessageRow
                message={message}
                continued={continued}
                author={authorName(message, known, ownKey, t)}
                attachment={attachmentOf.get(message.id) ?? null}
                found={foundAt !== null && foundAt.messageId === message.id ? foundAt : null}
              />
            )
          }
        />
      </HistoryScroller>

      <PendingUploads uploads={pendingUploads} />
      <Composer
        onFiles={(files) => sendGroupFiles(groupId, files)}
        draftKey={`group:${groupId}`}
        name={group.name}
        disabledReason={group.isMember ? null : t("group.notMember")}
        onSend={send}
      />
    </section>
  );
}

/** One text: the author's name (a text node, coloured by a class from the author's key). */
export function GroupMessageRow({
  message,
  continued,
  author,
  attachment = null,
  found = null,
}: {
  message: GroupMessage;
  continued: boolean;
  author: string;
  /** The file this message carries, if any. */
  attachment?: Attachment | null;
  /** The search result at this message: its words are marked. */
  found?: SearchHit | null;
}) {
  const { t, locale } = useI18n();
  const tone = authorTone(message.authorKey);
  // An own text's tick follows its copies: read or delivered once every member's copy is.
  const state =
    message.outgoing && message.recipients > 0 && message.readBy >= message.recipients
      ? "read"
      : message.outgoing && message.recipients > 0 && message.deliveredTo >= message.recipients && message.state !== "read"
        ? "delivered"
        : message.state;
  const stateLabel = t(stateLabelKey(state));
  const delivery =
    message.recipients === 0
      ? t("group.noRecipients")
      : message.readBy > 0
        ? t("group.readBy", { read: message.readBy, total: message.recipients })
        : t("group.deliveredTo", { delivered: message.deliveredTo, total: message.recipients });
  return (
    <li {...messageRowAttributes(message, continued, found)} data-author-key={message.authorKey} data-testid="group-message">
      <div class="bubble">
        {!message.outgoing && !continued && (
          <p class={`message-author author-tone-${tone}`} data-testid="group-message-author">
            {author}
          </p>
        )}
        <span class="sr-only">{message.outgoing ? t("chat.youSaid") : t("group.sentBy", { name: author })}: </span>
        <MessageBody text={message.text} attachment={attachment} found={found} testId="group-message-text" />
        <span class="message-meta">
          <MessageTimes
            sentAt={message.sentAt}
            title={t("chat.sentAt", { time: formatDateTime(message.sentAt, locale) })}
            expiresAt={message.expiresAt}
          />
          {message.outgoing && (
            <>
              <span class="group-delivery" data-testid="group-delivery">
                {delivery}
              </span>
              <span class={`message-state ${state}`} role="img" aria-label={stateLabel} title={stateLabel}>
                <StateGlyph state={state} />
              </span>
            </>
          )}
        </span>
      </div>
    </li>
  );
}
