/**
 * One conversation: header, key-change banner, history with paging back when scrolled to the top,
 * delivery states, and the composer. Message text is rendered as text nodes only.
 */
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import {
  acceptKeyChange,
  blockContact,
  getMessages,
  markRead,
  rejectKeyChange,
  sendMessage,
  setChatTimer,
} from "../api/commands";
import { subscribeAll } from "../api/events";
import type { Chat, Message, SearchHit } from "../api/types";
import { useI18n } from "../i18n";
import { filesOf, isNearBottom, NEAR_TOP_PX, useReadWhenSeen, useScrollToResult } from "../lib/conversation";
import { formatDateTime } from "../lib/format";
import {
  applyMessageState,
  mergeMessages,
  newestUnreadIncomingSeq,
  oldestSeq,
  stateLabelKey,
  TIMER_SETTINGS,
  timerKey,
} from "../lib/messages";
import { sendFiles, useAttachments } from "./Attachments";
import type { Attachment } from "../api/types";
import { Avatar } from "./Avatar";
import { Composer } from "./Composer";
import { ErrorText } from "./ErrorText";
import { IconMore, IconShield, IconShieldSmall, IconWarning, StateGlyph } from "./Icons";
import { MenuButton } from "./Menu";
import { HistoryScroller, MessageBody, MessageList, messageRowAttributes, MessageTimes, PendingUploads, TimerTag } from "./MessageParts";

/** Messages fetched per page. */
export const PAGE_SIZE = 40;

type ScrollIntent = { kind: "bottom" } | { kind: "keep"; fromBottom: number } | null;

export function ChatView({
  chat,
  foundAt = null,
  onOpenVerify,
  onRename,
  onDelete,
  onRepair,
  onChanged,
  notify,
}: {
  chat: Chat;
  /** A search result in this chat: scrolled to, its words highlighted. */
  foundAt?: SearchHit | null;
  onOpenVerify: () => void;
  onRename: () => void;
  onDelete: () => void;
  onRepair: () => void;
  onChanged: () => void;
  notify: (text: string) => void;
}) {
  const { t } = useI18n();
  const contactId = chat.contactId;
  const [messages, setMessages] = useState<Message[]>([]);
  const [hasMore, setHasMore] = useState(false);
  const [loading, setLoading] = useState<"initial" | "older" | null>("initial");
  const [loadError, setLoadError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [newBelow, setNewBelow] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);
  const intent = useRef<ScrollIntent>({ kind: "bottom" });
  const loadingRef = useRef(false);

  const nearBottom = () => isNearBottom(scroller.current);

  // First page.
  useEffect(() => {
    let live = true;
    loadingRef.current = true;
    getMessages({ contactId, beforeSeq: null, limit: PAGE_SIZE })
      .then((page) => {
        if (!live) return;
        intent.current = { kind: "bottom" };
        setMessages((current) => mergeMessages(current, page.messages));
        setHasMore(page.hasMore);
        setLoadError(null);
      })
      .catch((error: unknown) => live && setLoadError(error))
      .finally(() => {
        loadingRef.current = false;
        if (live) setLoading(null);
      });
    return () => {
      live = false;
    };
  }, [contactId]);

  const loadOlder = useCallback(async () => {
    if (loadingRef.current || !hasMore) return;
    const before = oldestSeq(messages);
    if (before === null) return;
    loadingRef.current = true;
    setLoading("older");
    const el = scroller.current;
    try {
      const page = await getMessages({ contactId, beforeSeq: before, limit: PAGE_SIZE });
      intent.current = el === null ? null : { kind: "keep", fromBottom: el.scrollHeight - el.scrollTop };
      setMessages((current) => mergeMessages(current, page.messages));
      setHasMore(page.hasMore);
    } catch (error) {
      setLoadError(error);
    } finally {
      loadingRef.current = false;
      setLoading(null);
    }
  }, [contactId, hasMore, messages]);

  // Opened at a search result: load older pages until it is there, then show it.
  useScrollToResult({
    scroller,
    foundAt,
    messages,
    ready: loading === null,
    hasMore,
    loadOlder,
    onReached: () => (intent.current = null),
  });

  // Attachments; when an upload finishes, its message exists: fetch the newest page again.
  const attachments = useAttachments(contactId, () => {
    void getMessages({ contactId, beforeSeq: null, limit: PAGE_SIZE }).then((page) => {
      if (nearBottom()) intent.current = { kind: "bottom" };
      setMessages((current) => mergeMessages(current, page.messages));
    });
  });
  const { attachmentOf, pendingUploads } = filesOf(attachments);

  // Live updates for this conversation.
  useEffect(
    () =>
      subscribeAll({
        "message-received": ({ contactId: from, message }) => {
          if (from !== contactId) return;
          if (nearBottom()) intent.current = { kind: "bottom" };
          else setNewBelow(true);
          setMessages((current) => mergeMessages(current, [message]));
        },
        "message-state": ({ contactId: from, messageId, state }) => {
          if (from === contactId) setMessages((current) => applyMessageState(current, messageId, state));
        },
        // Disappearing messages whose timer ran out: gone from the store, gone from the view.
        "messages-expired": ({ contactId: from, messageIds }) => {
          if (from !== contactId) return;
          const gone = new Set(messageIds);
          setMessages((current) => current.filter((m) => !gone.has(m.id)));
        },
      }),
    [contactId],
  );

  // Apply the scroll intent after the DOM has the new messages; fill the view if it is short.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el === null) return;
    const want = intent.current;
    intent.current = null;
    if (want?.kind === "bottom") el.scrollTop = el.scrollHeight;
    else if (want?.kind === "keep") el.scrollTop = el.scrollHeight - want.fromBottom;
    // (Not after an error: that would retry in a loop; the "load earlier" button stays.)
    if (loading === null && hasMore && loadError === null && el.scrollHeight <= el.clientHeight + NEAR_TOP_PX) {
      void loadOlder();
    }
  }, [messages, loading, hasMore, loadOlder, loadError]);

  // Mark read what the person can see: the chat is open, scrolled to the newest messages, and the
  // window is visible and focused.
  const recheckRead = useReadWhenSeen(scroller, messages, contactId, () => {
    const seq = newestUnreadIncomingSeq(messages);
    if (seq === null) return null;
    return markRead({ contactId, upToSeq: seq }).then(() => {
      setMessages((current) =>
        current.map((m) => (!m.outgoing && m.seq <= seq && m.state !== "read" ? { ...m, state: "read" } : m)),
      );
      onChanged();
    });
  });

  const send = async (text: string) => {
    const message = await sendMessage({ contactId, text });
    intent.current = { kind: "bottom" };
    setMessages((current) => mergeMessages(current, [message]));
    onChanged();
  };

  const runAction = async (action: () => Promise<void>, done?: string) => {
    setActionError(null);
    try {
      await action();
      if (done !== undefined) notify(done);
      onChanged();
    } catch (error) {
      setActionError(error);
    }
  };

  const unblock = () =>
    void runAction(() => blockContact({ contactId, blocked: false }), t("unblock.done", { name: chat.displayName }));

  const disabledReason = chat.keyChanged
    ? t("composer.blockedKeyChange", { name: chat.displayName })
    : chat.blocked
      ? t("composer.blockedContact", { name: chat.displayName })
      : null;

  return (
    <section class="chat-view" aria-labelledby="chat-title">
      <header class="chat-header">
        <Avatar id={contactId} name={chat.displayName} />
        <div class="chat-header-text">
          <h2 id="chat-title" class="truncate">
            {chat.displayName}
          </h2>
          <p class={`chat-header-sub ${chat.verified ? "verified" : ""}`}>
            {chat.verified ? (
              <>
                <IconShieldSmall /> {t("chat.verifiedBadge")}
              </>
            ) : (
              t("chat.notVerified")
            )}
            {chat.blocked && <span class="blocked-tag">{t("chats.blocked")}</span>}
            <TimerTag seconds={chat.timerSeconds} testId="chat-timer" />
          </p>
        </div>
        <button type="button" class="button ghost" onClick={onOpenVerify} data-testid="open-verify">
          <IconShield /> {t("chat.verify")}
        </button>
        <MenuButton
          label={t("chat.menu")}
          icon={<IconMore />}
          items={[
            { label: t("chat.rename"), onSelect: onRename },
            chat.blocked
              ? { label: t("chat.unblock"), onSelect: unblock }
              : {
                  label: t("chat.block"),
                  onSelect: () =>
                    void runAction(
                      () => blockContact({ contactId, blocked: true }),
                      t("block.done", { name: chat.displayName }),
                    ),
                },
            ...TIMER_SETTINGS.map((seconds) => ({
              label:
                t("timer.menuItem", { setting: t(timerKey(seconds)) }) +
                (seconds === chat.timerSeconds ? " ✓" : ""),
              onSelect: () =>
                void runAction(async () => {
                  const line = await setChatTimer({ contactId, seconds });
                  intent.current = { kind: "bottom" };
                  setMessages((current) => mergeMessages(current, [line]));
                }),
            })),
            { label: t("chat.repair"), onSelect: onRepair },
            { label: t("chat.delete"), onSelect: onDelete, danger: true },
          ]}
        />
      </header>

      {chat.keyChanged && (
        <div class="key-banner" role="alert" data-testid="key-banner">
          <IconWarning size={22} />
          <div class="key-banner-text">
            <h3>{t("keyChange.title", { name: chat.displayName })}</h3>
            <p>{t("keyChange.body", { name: chat.displayName })}</p>
            <div class="key-banner-actions">
              <button type="button" class="button primary" onClick={onOpenVerify}>
                {t("keyChange.compare")}
              </button>
              <button
                type="button"
                class="button secondary"
                onClick={() => void runAction(() => acceptKeyChange({ contactId }))}
              >
                {t("keyChange.accept")}
              </button>
              <button
                type="button"
                class="button secondary"
                onClick={() => void runAction(() => rejectKeyChange({ contactId }))}
              >
                {t("keyChange.reject")}
              </button>
            </div>
          </div>
        </div>
      )}
      <ErrorText error={actionError} />

      <HistoryScroller
        scroller={scroller}
        label={t("chat.messagesLabel", { name: chat.displayName })}
        busy={loading !== null}
        onScroll={(event) => {
          if (event.currentTarget.scrollTop < NEAR_TOP_PX) void loadOlder();
          if (nearBottom()) {
            if (newBelow) setNewBelow(false);
            if (newestUnreadIncomingSeq(messages) !== null) recheckRead();
          }
        }}
      >
        <div class="history-edge">
          {loading === "older" || (loading === "initial" && messages.length === 0) ? (
            <p class="muted" role="status">
              {t("chat.loadingEarlier")}
            </p>
          ) : hasMore ? (
            <button type="button" class="button ghost small" onClick={() => void loadOlder()}>
              {t("chat.loadEarlier")}
            </button>
          ) : (
            <p class="muted history-start">
              {messages.length === 0 ? t("chat.emptyConversation") : t("chat.beginning", { name: chat.displayName })}
            </p>
          )}
          <ErrorText error={loadError} />
        </div>
        <MessageList
          messages={messages}
          sameRun={(previous, message) => previous.outgoing === message.outgoing}
          row={(message, continued) => (
            <MessageRow
              message={message}
              attachment={attachmentOf.get(message.id) ?? null}
              continued={continued}
              name={chat.displayName}
              found={foundAt !== null && foundAt.messageId === message.id ? foundAt : null}
            />
          )}
        />
      </HistoryScroller>

      {newBelow && (
        <div class="jump-wrap">
          <button
            type="button"
            class="button primary small jump-latest"
            onClick={() => {
              const el = scroller.current;
              if (el !== null) el.scrollTop = el.scrollHeight;
              setNewBelow(false);
            }}
          >
            {t("chat.jumpLatest")}
          </button>
        </div>
      )}
      <PendingUploads uploads={pendingUploads} />
      <Composer
        onFiles={(files) => sendFiles(contactId, files)}
        draftKey={contactId}
        name={chat.displayName}
        disabledReason={disabledReason}
        disabledAction={chat.blocked && !chat.keyChanged ? { label: t("chat.unblock"), onClick: unblock } : null}
        onSend={send}
      />
    </section>
  );
}


function MessageRow({
  message,
  attachment,
  continued,
  name,
  found,
}: {
  message: Message;
  /** The file this message carries, if any (its text is the file name). */
  attachment: Attachment | null;
  continued: boolean;
  name: string;
  /** The search result this message is: its words are marked. */
  found: SearchHit | null;
}) {
  const { t, locale } = useI18n();
  if (message.timerChange !== null) {
    const setting = t(timerKey(message.timerChange));
    return (
      <li class="system-line" data-message-id={message.id} data-seq={message.seq} data-testid="timer-line">
        <span>
          {message.outgoing ? t("timer.changedByYou", { setting }) : t("timer.changedByThem", { name, setting })}
        </span>
      </li>
    );
  }
  const stateLabel = t(stateLabelKey(message.state));
  const tooltip =
    message.receivedAt !== null
      ? `${t("chat.sentAt", { time: formatDateTime(message.sentAt, locale) })}\n${t("chat.receivedAt", { time: formatDateTime(message.receivedAt, locale) })}`
      : t("chat.sentAt", { time: formatDateTime(message.sentAt, locale) });
  return (
    <li {...messageRowAttributes(message, continued, found)} data-testid="message">
      <div class="bubble">
        <span class="sr-only">{message.outgoing ? t("chat.youSaid") : t("chat.sentBy", { name })}: </span>
        <MessageBody text={message.text} attachment={attachment} found={found} testId="message-text" />
        <span class="message-meta">
          <MessageTimes sentAt={message.sentAt} title={tooltip} expiresAt={message.expiresAt} />
          {message.outgoing && (
            <span class={`message-state ${message.state}`} role="img" aria-label={stateLabel} title={stateLabel}>
              <StateGlyph state={message.state} />
            </span>
          )}
        </span>
      </div>
      {message.outgoing && message.state === "failed" && <p class="message-failed">{stateLabel}</p>}
    </li>
  );
}
