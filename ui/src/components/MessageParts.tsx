/**
 * What a 1:1 chat (ChatView.tsx) and a group (GroupView.tsx) draw alike: the scrolling history
 * log, the list with day separators, a message row's attributes, body and times, the timer tag of
 * the header, and the uploads still running. Text is rendered as text nodes only.
 *
 * ChatView is in the first bundle, so this module is too (lib/lazy.test.tsx); it imports nothing
 * that is loaded lazily.
 */
import { Fragment, type ComponentChildren, type GenericEventHandler, type RefObject } from "preact";
import type { Attachment, MessageState, SearchHit } from "../api/types";
import { useI18n } from "../i18n";
import { dayKey, dayLabel, formatDateTime, formatTime } from "../lib/format";
import { timerKey } from "../lib/messages";
import { AttachmentCard } from "./Attachments";
import { Highlighted } from "./Highlighted";

/** Messages of one author closer than this are drawn as one run. */
const RUN_GAP_MS = 3 * 60_000;

/** The conversation's history: a focusable log that scrolls, busy while a page loads. */
export function HistoryScroller({
  scroller,
  label,
  busy,
  onScroll,
  children,
}: {
  scroller: RefObject<HTMLDivElement | null>;
  label: string;
  busy: boolean;
  onScroll: GenericEventHandler<HTMLDivElement>;
  children: ComponentChildren;
}) {
  return (
    <div class="message-scroller" ref={scroller} role="log" tabIndex={0} aria-label={label} aria-busy={busy} onScroll={onScroll}>
      {children}
    </div>
  );
}

/** The header's "Disappearing messages: …" tag (nothing while the timer is off). */
export function TimerTag({ seconds, testId }: { seconds: number; testId: string }) {
  const { t } = useI18n();
  if (seconds === 0) return null;
  return (
    <span class="timer-tag" data-testid={testId}>
      {t("timer.header", { setting: t(timerKey(seconds)) })}
    </span>
  );
}

/** A card per upload still without its message, above the composer (nothing when there is none). */
export function PendingUploads({ uploads }: { uploads: readonly Attachment[] }) {
  if (uploads.length === 0) return null;
  return (
    <div class="pending-uploads" data-testid="pending-uploads">
      {uploads.map((attachment) => (
        <AttachmentCard key={attachment.id} attachment={attachment} />
      ))}
    </div>
  );
}

/**
 * The history list: a separator before each new day, and each message drawn by `row`, told
 * whether it continues the run of the one before (`sameRun` of the two, on the same day, less
 * than three minutes apart).
 */
export function MessageList<M extends { id: string; sentAt: number }>({
  messages,
  sameRun,
  row,
}: {
  messages: readonly M[];
  sameRun: (previous: M, message: M) => boolean;
  row: (message: M, continued: boolean) => ComponentChildren;
}) {
  const { t, locale } = useI18n();
  return (
    <ol class="messages">
      {messages.map((message, index) => {
        const previous = index > 0 ? messages[index - 1] : undefined;
        const newDay = previous === undefined || dayKey(previous.sentAt) !== dayKey(message.sentAt);
        const continued =
          !newDay &&
          previous !== undefined &&
          sameRun(previous, message) &&
          message.sentAt - previous.sentAt < RUN_GAP_MS;
        return (
          <Fragment key={message.id}>
            {newDay && (
              <li class="day-separator">
                <span>{dayLabel(message.sentAt, locale, { today: t("chat.today"), yesterday: t("chat.yesterday") })}</span>
              </li>
            )}
            {row(message, continued)}
          </Fragment>
        );
      })}
    </ol>
  );
}

/** What a message row's `<li>` carries in both views: its classes and its id, seq and state. */
export function messageRowAttributes(
  message: { id: string; seq: number; state: MessageState; outgoing: boolean },
  continued: boolean,
  found: SearchHit | null,
) {
  return {
    class: `message ${message.outgoing ? "outgoing" : "incoming"} ${continued ? "continued" : ""} state-${message.state}${found !== null ? " found" : ""}`,
    "data-message-id": message.id,
    "data-seq": message.seq,
    "data-state": message.state,
  };
}

/** A message's body: the card of the file it carries, or its text (with a search result's words marked). */
export function MessageBody({
  text,
  attachment,
  found,
  testId,
}: {
  text: string;
  attachment: Attachment | null;
  found: SearchHit | null;
  testId: string;
}) {
  if (attachment !== null) return <AttachmentCard attachment={attachment} />;
  return (
    <p class="message-text" data-testid={testId}>
      {found !== null ? <Highlighted text={text} ranges={found.matches} /> : text}
    </p>
  );
}

/** When a message was sent (`title`: the long form), and the timer mark if it disappears. */
export function MessageTimes({ sentAt, title, expiresAt }: { sentAt: number; title: string; expiresAt: number | null }) {
  const { t, locale } = useI18n();
  return (
    <>
      <time dateTime={new Date(sentAt).toISOString()} title={title}>
        {formatTime(sentAt, locale)}
      </time>
      {expiresAt !== null && (
        <span
          class="message-timer"
          role="img"
          data-testid="message-timer"
          aria-label={t("timer.indicator", { time: formatDateTime(expiresAt, locale) })}
          title={t("timer.indicator", { time: formatDateTime(expiresAt, locale) })}
        >
          ⏱
        </span>
      )}
    </>
  );
}
