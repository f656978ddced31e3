/**
 * Attachments in a conversation: the attach button, reading dropped / pasted / chosen files,
 * a card per file (name as a text node, size, progress bar with Cancel, Download, Save, errors)
 * and image previews. Previews are PNGs the engine encoded itself (never the peer's bytes, never
 * SVG), shown through a data: URL.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import {
  attachmentPreview,
  cancelAttachment,
  downloadAttachment,
  getAttachments,
  getGroupAttachments,
  saveAttachment,
  sendAttachment,
  sendGroupAttachment,
} from "../api/commands";
import { subscribeAll } from "../api/events";
import type { Attachment, OutgoingFile } from "../api/types";
import { useI18n } from "../i18n";
import { neutraliseBidi } from "../lib/names";
import { ErrorText } from "./ErrorText";

/** Reads a browser `File` into what `send_attachment` takes (its bytes as they are, no copy). */
export async function readFile(file: File): Promise<OutgoingFile> {
  const buffer = await file.arrayBuffer();
  return {
    fileName: file.name || "file",
    mediaType: file.type || "application/octet-stream",
    bytes: new Uint8Array(buffer),
  };
}

/** Sends every file to the contact, one after the other. */
export async function sendFiles(contactId: string, files: File[]): Promise<void> {
  for (const file of files) {
    await sendAttachment({ contactId, file: await readFile(file) });
  }
}

/** Sends every file to the group's members (each uploaded once), one after the other. */
export async function sendGroupFiles(groupId: string, files: File[]): Promise<void> {
  for (const file of files) {
    await sendGroupAttachment({ groupId, file: await readFile(file) });
  }
}

/** Whose attachments `useAttachments` follows: a contact's (1:1 chat) or a group's. */
export type AttachmentScope = "contact" | "group";

/**
 * The conversation's attachments, kept current from `attachment-updated` events. A received file
 * arrives with its message (`message-received`, or `group-message-received` in a group), not with
 * an event of its own, so each message of the chat fetches the list again; what is known already
 * stays as its events made it (an event is never older than a fetch that raced it).
 */
export function useAttachments(chatId: string, onLinked: () => void, scope: AttachmentScope = "contact"): Attachment[] {
  const [attachments, setAttachments] = useState<Attachment[]>([]);
  const linked = useRef(onLinked);
  linked.current = onLinked;
  useEffect(() => {
    let live = true;
    const fetchNew = () =>
      void (scope === "group" ? getGroupAttachments({ groupId: chatId }) : getAttachments({ contactId: chatId })).then(
        (list) => {
          if (!live) return;
          setAttachments((current) => {
            const known = new Set(current.map((a) => a.id));
            const added = list.filter((a) => !known.has(a.id));
            return added.length === 0 ? current : [...current, ...added];
          });
        },
      );
    fetchNew();
    const stop = subscribeAll({
      "message-received": ({ contactId: from }) => {
        if (scope === "contact" && from === chatId) fetchNew();
      },
      "group-message-received": ({ groupId }) => {
        if (scope === "group" && groupId === chatId) fetchNew();
      },
      "attachment-updated": ({ attachment }) => {
        if ((scope === "group" ? attachment.groupId : attachment.contactId) !== chatId) return;
        setAttachments((list) => {
          const before = list.find((a) => a.id === attachment.id);
          if (before !== undefined && before.messageId === null && attachment.messageId !== null) {
            linked.current();
          }
          return before === undefined
            ? [...list, attachment]
            : list.map((a) => (a.id === attachment.id ? attachment : a));
        });
      },
    });
    return () => {
      live = false;
      stop();
    };
  }, [chatId, scope]);
  return attachments;
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** A `data:` URL of PNG bytes (the CSP allows `data:` images, not `blob:`). */
export function toDataUrl(png: Uint8Array): string {
  let binary = "";
  // In slices: one `fromCharCode` call per byte is slow, and one for all of them overflows the stack.
  for (let start = 0; start < png.length; start += 0x8000) {
    binary += String.fromCharCode(...png.subarray(start, start + 0x8000));
  }
  return `data:image/png;base64,${btoa(binary)}`;
}

/** One file: preview (images), name, size, progress with Cancel, Download or Save, errors. */
export function AttachmentCard({ attachment }: { attachment: Attachment }) {
  const { t } = useI18n();
  const [preview, setPreview] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const { id, state, isImage } = attachment;
  useEffect(() => {
    if (!isImage) return;
    let live = true;
    attachmentPreview({ attachmentId: id })
      .then((png) => {
        if (live) setPreview(toDataUrl(png));
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [id, isImage, state]);
  const run = (action: () => Promise<unknown>) => {
    setError(null);
    action().catch(setError);
  };
  const busy = state === "uploading" || state === "downloading";
  const failure = attachment.error !== null ? { kind: attachment.error, message: "" } : null;
  return (
    <div class="attachment-card" data-testid="attachment" data-state={state}>
      {preview !== null && <img class="attachment-preview" src={preview} alt={neutraliseBidi(attachment.fileName)} />}
      <p class="attachment-name" data-testid="attachment-name">
        {neutraliseBidi(attachment.fileName)}
      </p>
      <p class="attachment-size muted">{formatSize(attachment.size)}</p>
      {busy && (
        <div class="attachment-progress">
          <progress
            max={Math.max(attachment.totalChunks, 1)}
            value={attachment.doneChunks}
            aria-label={t(state === "uploading" ? "attachment.uploading" : "attachment.downloading")}
          />
          <button type="button" class="button ghost small" onClick={() => run(() => cancelAttachment({ attachmentId: id }))}>
            {t("attachment.cancel")}
          </button>
        </div>
      )}
      {!attachment.outgoing && (state === "offered" || state === "failed" || state === "cancelled") && (
        <button
          type="button"
          class="button secondary small"
          data-testid="attachment-download"
          onClick={() => run(() => downloadAttachment({ attachmentId: id }))}
        >
          {t("attachment.download")}
        </button>
      )}
      {state === "complete" && (
        <button
          type="button"
          class="button secondary small"
          data-testid="attachment-save"
          onClick={() => run(async () => setSaved(await saveAttachment({ attachmentId: id })))}
        >
          {t("attachment.save")}
        </button>
      )}
      {saved !== null && (
        <p class="muted" role="status" data-testid="attachment-saved">
          {t("attachment.saved", { path: saved })}
        </p>
      )}
      <ErrorText error={failure ?? error} />
    </div>
  );
}

/** The paper-clip button: opens the file chooser and hands the chosen files on. */
export function AttachButton({ onFiles }: { onFiles: (files: File[]) => void }) {
  const { t } = useI18n();
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <input
        ref={input}
        type="file"
        multiple
        class="sr-only"
        tabIndex={-1}
        data-testid="attach-input"
        onChange={(event) => {
          const files = Array.from(event.currentTarget.files ?? []);
          event.currentTarget.value = "";
          if (files.length > 0) onFiles(files);
        }}
      />
      <button
        type="button"
        class="attach-button"
        aria-label={t("attachment.attach")}
        title={t("attachment.attach")}
        data-testid="attach-button"
        onClick={() => input.current?.click()}
      >
        📎
      </button>
    </>
  );
}
