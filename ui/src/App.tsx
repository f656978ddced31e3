/**
 * The application shell: start-up (status → onboarding or main), the sidebar with chat list,
 * search and connection state, the open chat, dialogs, toasts and global keyboard shortcuts.
 */
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { appStatus, getProfile, listChats, listGroups, takePendingInvite } from "./api/commands";
import { subscribeAll } from "./api/events";
import type { AppStatus, Chat, Group, Profile, RelayConnection, SearchHit } from "./api/types";
import { AddContactDialog } from "./components/AddContactDialog";
import { ChatList } from "./components/ChatList";
import { ChatView } from "./components/ChatView";
import { ConnectionIndicator } from "./components/ConnectionIndicator";
import { dialogOpen } from "./components/Dialog";
import { ErrorText } from "./components/ErrorText";
import { IconChat, IconLogo, IconSearch, IconSettings, IconTicket, IconUserPlus, IconUsers } from "./components/Icons";
import { I18nProvider, useI18n } from "./i18n";
import { coalesce } from "./lib/coalesce";
import { type FirstScreen, takeFirstScreen } from "./lib/firstScreen";
import { searchKey } from "./lib/format";
import { groupWithSafeNames } from "./lib/groups";
import { lazyComponent, preloadLazyComponents } from "./lib/lazy";
import { withSafeName } from "./lib/names";

// Everything the first screen (the chat list) does not draw is a chunk of its own, fetched once
// that screen is painted (docs/benchmarks.md § Desktop app); until its chunk is there, each draws
// its `fallback` (nothing unless given). The add-contact dialog stays in the first bundle: Ctrl+N
// (and a sealpost: link at start) is typed into at once, before a chunk could be fetched.
const Onboarding = lazyComponent(() => import("./components/Onboarding").then((m) => m.Onboarding));
const StartupFailure = lazyComponent(() => import("./components/StartupFailure").then((m) => m.StartupFailure));
const InviteDialog = lazyComponent(() => import("./components/InviteDialog").then((m) => m.InviteDialog));
const SettingsDialog = lazyComponent(() => import("./components/SettingsDialog").then((m) => m.SettingsDialog));
const VerifyDialog = lazyComponent(() => import("./components/VerifyDialog").then((m) => m.VerifyDialog));
const MessageSearch = lazyComponent(() => import("./components/MessageSearch").then((m) => m.MessageSearch));
const RenameDialog = lazyComponent(() => import("./components/ContactDialogs").then((m) => m.RenameDialog));
const DeleteDialog = lazyComponent(() => import("./components/ContactDialogs").then((m) => m.DeleteDialog));
const RepairDialog = lazyComponent(() => import("./components/ContactDialogs").then((m) => m.RepairDialog));
const GroupView = lazyComponent(() => import("./components/GroupView").then((m) => m.GroupView));
const NewGroupDialog = lazyComponent(() => import("./components/GroupDialogs").then((m) => m.NewGroupDialog));
const GroupMembersDialog = lazyComponent(() => import("./components/GroupDialogs").then((m) => m.GroupMembersDialog));
const RenameGroupDialog = lazyComponent(() => import("./components/GroupDialogs").then((m) => m.RenameGroupDialog));
const LeaveGroupDialog = lazyComponent(() => import("./components/GroupDialogs").then((m) => m.LeaveGroupDialog));

/** Moves focus to the open conversation's composer once it is drawn (its view may still be loading). */
function focusComposer(framesLeft = 30) {
  requestAnimationFrame(() => {
    const composer = document.getElementById("composer-text");
    if (composer !== null) composer.focus();
    else if (framesLeft > 0) focusComposer(framesLeft - 1);
  });
}

/** How long after the main screen's first paint the lazy dialogs and views are fetched. */
const PRELOAD_DELAY_MS = 200;

export function App() {
  return (
    <I18nProvider>
      <Root />
    </I18nProvider>
  );
}

type Phase =
  | { kind: "loading" }
  | { kind: "failed"; error: unknown }
  | { kind: "onboarding"; status: AppStatus }
  | { kind: "ready"; status: AppStatus; chats: Chat[] | null };

/** The phase the first screen's handed-over data starts in (./lib/firstScreen). */
function handedPhase({ status, chats }: FirstScreen): Phase {
  return status.onboarded
    ? { kind: "ready", status, chats: chats === null ? null : chats.map(withSafeName) }
    : { kind: "onboarding", status };
}

function Root() {
  const { t } = useI18n();
  // The first screen's data, when the app handed it over with the page: the first render draws it
  // with no round trip (docs/benchmarks.md, Desktop app); otherwise `start` asks the commands.
  const [handed] = useState(takeFirstScreen);
  const [phase, setPhase] = useState<Phase>(() => (handed === null ? { kind: "loading" } : handedPhase(handed)));
  const [pendingInvite, setPendingInvite] = useState<string | null>(null);

  // A link that started the app arrived before anyone listened: ask for it once the profile is ready.
  const askPendingInvite = useCallback(async () => {
    const text = await takePendingInvite().catch(() => null);
    if (text !== null) setPendingInvite(text);
  }, []);

  const start = useCallback(async () => {
    setPhase({ kind: "loading" });
    try {
      // Asked together: both wait for the profile to open, so the chat list is ready with the
      // status instead of one more round trip later (docs/benchmarks.md, Desktop app).
      const early = listChats()
        .then((list) => list.map(withSafeName))
        .catch(() => null);
      const status = await appStatus();
      setPhase(status.onboarded ? { kind: "ready", status, chats: await early } : { kind: "onboarding", status });
      if (status.onboarded) await askPendingInvite();
    } catch (error) {
      setPhase({ kind: "failed", error });
    }
  }, [askPendingInvite]);

  useEffect(() => {
    if (handed === null) void start();
    else if (handed.status.onboarded) void askPendingInvite();
    // A deep link only fills the add-contact form; it is kept until the profile is ready.
    return subscribeAll({ "open-invite": ({ text }) => setPendingInvite(text) });
  }, [start, askPendingInvite, handed]);

  const splash = (
    <main class="splash" aria-busy="true">
      <IconLogo size={56} />
      <p role="status">{t("app.loading")}</p>
    </main>
  );
  switch (phase.kind) {
    case "loading":
      return splash;
    case "failed":
      return <StartupFailure error={phase.error} onRetry={() => void start()} fallback={splash} />;
    case "onboarding":
      return <Onboarding profile={phase.status.profile} onDone={() => void start()} fallback={splash} />;
    case "ready":
      return (
        <MainScreen
          status={phase.status}
          statusHanded={handed !== null && handed.status === phase.status}
          initialChats={phase.chats}
          pendingInvite={pendingInvite}
          clearPendingInvite={() => setPendingInvite(null)}
        />
      );
  }
}

type DialogState =
  | { kind: "add"; text: string; fromLink: boolean }
  | { kind: "invite" }
  | { kind: "settings" }
  | { kind: "search" }
  | { kind: "verify"; contactId: string }
  | { kind: "rename"; contactId: string }
  | { kind: "delete"; contactId: string }
  | { kind: "repair"; contactId: string }
  | { kind: "newGroup" }
  | { kind: "groupMembers"; groupId: string }
  | { kind: "groupRename"; groupId: string }
  | { kind: "groupLeave"; groupId: string }
  | null;

interface Toast {
  id: number;
  text: string;
}

function MainScreen({
  status,
  statusHanded,
  initialChats,
  pendingInvite,
  clearPendingInvite,
}: {
  status: AppStatus;
  /**
   * `status` came with the page (./lib/firstScreen), read when the profile opened: asked again
   * once subscribed, so a connection change before that is not missed.
   */
  statusHanded: boolean;
  /** The chat list fetched with the status at start, or null to fetch it now. */
  initialChats: Chat[] | null;
  pendingInvite: string | null;
  clearPendingInvite: () => void;
}) {
  const { t } = useI18n();
  const [chats, setChats] = useState<Chat[] | null>(initialChats);
  const [chatsError, setChatsError] = useState<unknown>(null);
  const [profile, setProfile] = useState<Profile | null>(null);
  const [connections, setConnections] = useState<RelayConnection[]>(status.connections);
  const [selectedId, setSelectedId] = useState<string | null>(null);
  /** The search result the open chat was opened at (its words are highlighted). */
  const [foundAt, setFoundAt] = useState<SearchHit | null>(null);
  const [groups, setGroups] = useState<Group[]>([]);
  const [selectedGroupId, setSelectedGroupId] = useState<string | null>(null);
  const [query, setQuery] = useState("");
  const [dialog, setDialog] = useState<DialogState>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [liveStatus, setLiveStatus] = useState<AppStatus>(status);
  const search = useRef<HTMLInputElement>(null);
  const toastId = useRef(0);

  const notify = useCallback((text: string) => {
    toastId.current += 1;
    const id = toastId.current;
    setToasts((list) => [...list, { id, text }]);
    setTimeout(() => setToasts((list) => list.filter((toast) => toast.id !== id)), 6000);
  }, []);

  // Coalesced: a burst of engine events (an offline backlog) costs at most two listChats calls.
  const refreshChats = useMemo(
    () =>
      coalesce(async () => {
        try {
          const list = (await listChats()).map(withSafeName);
          setChats(list);
          setChatsError(null);
          setSelectedId((id) => (id !== null && !list.some((c) => c.contactId === id) ? null : id));
        } catch (error) {
          setChatsError(error);
        }
      }),
    [],
  );

  const refreshGroups = useMemo(
    () =>
      coalesce(async () => {
        try {
          setGroups((await listGroups()).map(groupWithSafeNames));
        } catch {
          // keep the last list; the next group event retries
        }
      }),
    [],
  );

  // The list follows the engine's group events (new texts change unread counts and order; roster
  // changes names and membership); asked again once subscribed, so nothing in between is missed.
  useEffect(() => {
    const stop = subscribeAll({
      "group-message-received": () => void refreshGroups(),
      "group-roster-changed": () => void refreshGroups(),
    });
    void refreshGroups();
    return stop;
  }, [refreshGroups]);

  /** A group changed by the user's own action: shown at once, the list refreshed. */
  const groupChanged = useCallback(
    (group: Group) => {
      setGroups((list) => list.map((g) => (g.id === group.id ? group : g)));
      void refreshGroups();
    },
    [refreshGroups],
  );

  const refreshStatus = useCallback(async () => {
    try {
      setLiveStatus(await appStatus());
    } catch {
      // keep the last known status
    }
  }, []);

  useEffect(() => {
    // Again once subscribed (even with `initialChats`), so nothing that arrived in between is missed.
    void refreshChats();
    if (statusHanded) {
      appStatus()
        .then((fresh) => {
          setLiveStatus(fresh);
          setConnections(fresh.connections);
        })
        .catch(() => undefined);
    }
    getProfile()
      .then(setProfile)
      .catch(() => undefined);
    return subscribeAll({
      "message-received": () => void refreshChats(),
      "contact-updated": () => void refreshChats(),
      "messages-expired": () => void refreshChats(),
      "key-changed": () => void refreshChats(),
      "connection-state": ({ connections: next }) => {
        setConnections(next);
        void refreshStatus();
      },
      "invite-misuse": () => notify(t("invite.misuse")),
    });
  }, [refreshChats, refreshStatus, statusHanded, notify, t]);

  // The dialogs and views of ./lib/lazy, fetched once the chat list is on screen (not before: the
  // first paint waits for nothing it does not draw).
  useEffect(() => {
    const timer = setTimeout(() => void preloadLazyComponents(), PRELOAD_DELAY_MS);
    return () => clearTimeout(timer);
  }, []);

  useEffect(() => {
    if (pendingInvite === null) return;
    setDialog({ kind: "add", text: pendingInvite, fromLink: true });
    clearPendingInvite();
  }, [pendingInvite, clearPendingInvite]);

  // Unread count in the window title (the tray badge is the shell's job).
  useEffect(() => {
    const unread =
      (chats ?? []).reduce((sum, chat) => sum + (chat.blocked ? 0 : chat.unread), 0) +
      groups.reduce((sum, group) => sum + group.unreadCount, 0);
    const name = status.profile === "default" ? t("app.name") : `${t("app.name")} — ${status.profile}`;
    document.title = unread > 0 ? `(${unread}) ${name}` : name;
  }, [chats, groups, t, status.profile]);

  const visibleChats = useMemo(() => {
    if (chats === null) return [];
    const needle = searchKey(query.trim());
    if (needle === "") return chats;
    return chats.filter(
      (chat) => searchKey(chat.displayName).includes(needle) || searchKey(chat.lastMessage?.text ?? "").includes(needle),
    );
  }, [chats, query]);

  const visibleGroups = useMemo(() => {
    const needle = searchKey(query.trim());
    return needle === "" ? groups : groups.filter((group) => searchKey(group.name).includes(needle));
  }, [groups, query]);

  const openGroup = useCallback((groupId: string) => {
    setFoundAt(null);
    setSelectedId(null);
    setSelectedGroupId(groupId);
    focusComposer();
  }, []);

  const openChat = useCallback((contactId: string) => {
    setFoundAt(null);
    setSelectedGroupId(null);
    setSelectedId(contactId);
    // Move focus to the composer so typing can start at once.
    requestAnimationFrame(() => document.getElementById("composer-text")?.focus());
  }, []);

  // Global shortcuts, in place from the first painted frame (the chat list can be there at once).
  useLayoutEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const mod = event.ctrlKey || event.metaKey;
      if (dialogOpen()) return;
      const key = event.key.toLowerCase();
      if (mod && key === "f") {
        // Ctrl+F and Ctrl+Shift+F: search the text of every message.
        event.preventDefault();
        setDialog({ kind: "search" });
      } else if (mod && key === "k") {
        event.preventDefault();
        search.current?.focus();
        search.current?.select();
      } else if (mod && key === "n") {
        event.preventDefault();
        setDialog({ kind: "add", text: "", fromLink: false });
      } else if (mod && !event.shiftKey && key === "g") {
        event.preventDefault();
        setDialog({ kind: "newGroup" });
      } else if (mod && event.shiftKey && key === "m" && selectedGroupId !== null) {
        event.preventDefault();
        setDialog({ kind: "groupMembers", groupId: selectedGroupId });
      } else if (mod && key === "i") {
        event.preventDefault();
        setDialog({ kind: "invite" });
      } else if (mod && key === ",") {
        event.preventDefault();
        setDialog({ kind: "settings" });
      } else if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
        // Groups first, then contacts, as the list shows them.
        const rows = [
          ...visibleGroups.map((g) => ({ group: true, id: g.id })),
          ...visibleChats.map((c) => ({ group: false, id: c.contactId })),
        ];
        if (rows.length === 0) return;
        event.preventDefault();
        const index = rows.findIndex((r) => (r.group ? r.id === selectedGroupId : r.id === selectedId));
        const step = event.key === "ArrowDown" ? 1 : -1;
        const next = rows[(index + step + rows.length) % rows.length];
        if (next !== undefined) (next.group ? openGroup : openChat)(next.id);
      } else if (event.key === "Escape" && document.activeElement === search.current && query !== "") {
        setQuery("");
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [visibleChats, visibleGroups, selectedId, selectedGroupId, query, openChat, openGroup]);

  const selected = chats?.find((c) => c.contactId === selectedId) ?? null;
  const dialogChat =
    dialog !== null && "contactId" in dialog ? (chats?.find((c) => c.contactId === dialog.contactId) ?? null) : null;
  const closeDialog = () => setDialog(null);
  const noChats = chats !== null && chats.length === 0 && groups.length === 0;
  const selectedGroup = groups.find((g) => g.id === selectedGroupId) ?? null;
  const dialogGroup =
    dialog !== null && "groupId" in dialog ? (groups.find((g) => g.id === dialog.groupId) ?? null) : null;

  return (
    <div class="layout">
      <aside class="sidebar" aria-label={t("nav.chats")}>
        <header class="sidebar-header">
          <div class="brand">
            <IconLogo size={30} />
            <div class="brand-text">
              <h1>{t("app.name")}</h1>
              {profile !== null && (
                <p class="muted truncate">
                  {profile.displayName}
                  {status.profile !== "default" && <span class="profile-tag"> · {status.profile}</span>}
                </p>
              )}
            </div>
          </div>
          <nav class="toolbar" aria-label={t("app.name")}>
            <button
              type="button"
              class="icon-button"
              aria-label={t("nav.searchMessages")}
              data-testid="open-message-search"
              title={`${t("nav.searchMessages")} (Ctrl+F)`}
              aria-keyshortcuts="Control+F Control+Shift+F"
              onClick={() => setDialog({ kind: "search" })}
            >
              <IconSearch />
            </button>
            <button
              type="button"
              class="icon-button"
              aria-label={t("nav.addContact")}
              data-testid="open-add-contact"
              title={`${t("nav.addContact")} (Ctrl+N)`}
              aria-keyshortcuts="Control+N"
              onClick={() => setDialog({ kind: "add", text: "", fromLink: false })}
            >
              <IconUserPlus />
            </button>
            <button
              type="button"
              class="icon-button"
              aria-label={t("nav.newGroup")}
              data-testid="open-new-group"
              title={`${t("nav.newGroup")} (Ctrl+G)`}
              aria-keyshortcuts="Control+G"
              onClick={() => setDialog({ kind: "newGroup" })}
            >
              <IconUsers />
            </button>
            <button
              type="button"
              class="icon-button"
              aria-label={t("nav.myInvite")}
              data-testid="open-invite"
              title={`${t("nav.myInvite")} (Ctrl+I)`}
              aria-keyshortcuts="Control+I"
              onClick={() => setDialog({ kind: "invite" })}
            >
              <IconTicket />
            </button>
            <button
              type="button"
              class="icon-button"
              aria-label={t("nav.settings")}
              data-testid="open-settings"
              title={`${t("nav.settings")} (Ctrl+,)`}
              aria-keyshortcuts="Control+,"
              onClick={() => setDialog({ kind: "settings" })}
            >
              <IconSettings />
            </button>
          </nav>
        </header>

        <div class="search" role="search">
          <IconSearch />
          <label for="chat-search" class="sr-only">
            {t("nav.searchLabel")}
          </label>
          <input
            id="chat-search"
            ref={search}
            type="search"
            value={query}
            placeholder={`${t("nav.searchPlaceholder")}  (Ctrl+K)`}
            aria-keyshortcuts="Control+K"
            autoComplete="off"
            onInput={(event) => setQuery(event.currentTarget.value)}
            onKeyDown={(event) => {
              const first = visibleChats[0];
              const firstGroup = visibleGroups[0];
              if (event.key === "Enter" && firstGroup !== undefined) {
                event.preventDefault();
                openGroup(firstGroup.id);
              } else if (event.key === "Enter" && first !== undefined) {
                event.preventDefault();
                openChat(first.contactId);
              } else if (event.key === "ArrowDown") {
                event.preventDefault();
                document.querySelector<HTMLElement>(".chat-row")?.focus();
              }
            }}
          />
        </div>

        <div class="sidebar-list">
          <ErrorText error={chatsError} />
          {chats !== null && (chats.length > 0 || groups.length > 0) && (
            <ChatList
              chats={visibleChats}
              selectedId={selectedId}
              onSelect={openChat}
              groups={visibleGroups}
              selectedGroupId={selectedGroupId}
              onSelectGroup={openGroup}
            />
          )}
          {chats !== null && chats.length + groups.length > 0 && visibleChats.length + visibleGroups.length === 0 && (
            <p class="muted pad" role="status">
              {t("nav.noMatches", { query })}
            </p>
          )}
          {noChats && <p class="muted pad">{t("chats.emptyTitle")}</p>}
        </div>

        <footer class="sidebar-footer">
          <ConnectionIndicator connections={connections} />
        </footer>
      </aside>

      <main class="main">
        {selectedGroup !== null ? (
          <GroupView
            key={selectedGroup.id}
            group={selectedGroup}
            onOpenMembers={() => setDialog({ kind: "groupMembers", groupId: selectedGroup.id })}
            onRename={() => setDialog({ kind: "groupRename", groupId: selectedGroup.id })}
            onLeave={() => setDialog({ kind: "groupLeave", groupId: selectedGroup.id })}
            foundAt={foundAt !== null && foundAt.groupId === selectedGroup.id ? foundAt : null}
            onChanged={() => void refreshGroups()}
          />
        ) : selected !== null ? (
          <ChatView
            key={selected.contactId}
            chat={selected}
            foundAt={foundAt !== null && foundAt.contactId === selected.contactId ? foundAt : null}
            onOpenVerify={() => setDialog({ kind: "verify", contactId: selected.contactId })}
            onRename={() => setDialog({ kind: "rename", contactId: selected.contactId })}
            onDelete={() => setDialog({ kind: "delete", contactId: selected.contactId })}
            onRepair={() => setDialog({ kind: "repair", contactId: selected.contactId })}
            onChanged={() => void refreshChats()}
            notify={notify}
          />
        ) : noChats ? (
          <div class="empty-state">
            <IconChat />
            <h2>{t("chats.emptyTitle")}</h2>
            <p>{t("chats.emptyBody")}</p>
            <div class="row center">
              <button type="button" class="button primary" onClick={() => setDialog({ kind: "invite" })}>
                {t("chats.emptyInvite")}
              </button>
              <button
                type="button"
                class="button secondary"
                onClick={() => setDialog({ kind: "add", text: "", fromLink: false })}
              >
                {t("chats.emptyAdd")}
              </button>
            </div>
          </div>
        ) : (
          <div class="empty-state quiet">
            <IconChat />
            <h2>{t("main.noChatTitle")}</h2>
            <p>{t("main.noChatBody", { keys: "Ctrl+N" })}</p>
          </div>
        )}
      </main>

      {dialog?.kind === "add" && (
        <AddContactDialog
          initialText={dialog.text}
          fromLink={dialog.fromLink}
          onClose={closeDialog}
          onAdded={(chat) => {
            closeDialog();
            notify(t("add.added", { name: chat.displayName }));
            void refreshChats().then(() => openChat(chat.contactId));
          }}
        />
      )}
      {dialog?.kind === "search" && (
        <MessageSearch
          chats={chats ?? []}
          groups={groups}
          onClose={closeDialog}
          onOpen={(hit) => {
            closeDialog();
            if (hit.groupId !== null) {
              openGroup(hit.groupId);
            } else {
              setSelectedGroupId(null);
              setSelectedId(hit.contactId);
            }
            setFoundAt(hit);
          }}
        />
      )}
      {dialog?.kind === "invite" && <InviteDialog onClose={closeDialog} notify={notify} />}
      {dialog?.kind === "settings" && (
        <SettingsDialog
          status={liveStatus}
          connections={connections}
          onClose={closeDialog}
          onProfileChanged={(next) => setProfile(next)}
        />
      )}
      {dialog?.kind === "verify" && dialogChat !== null && (
        <VerifyDialog chat={dialogChat} onClose={closeDialog} onChanged={() => void refreshChats()} />
      )}
      {dialog?.kind === "rename" && dialogChat !== null && (
        <RenameDialog
          chat={dialogChat}
          onClose={closeDialog}
          onDone={() => {
            closeDialog();
            void refreshChats();
          }}
        />
      )}
      {dialog?.kind === "delete" && dialogChat !== null && (
        <DeleteDialog
          chat={dialogChat}
          onClose={closeDialog}
          onDone={() => {
            closeDialog();
            setSelectedId(null);
            void refreshChats();
          }}
        />
      )}

      {dialog?.kind === "repair" && dialogChat !== null && (
        <RepairDialog
          chat={dialogChat}
          onClose={closeDialog}
          onDone={() => {
            closeDialog();
            notify(t("repair.done", { name: dialogChat.displayName }));
            void refreshChats();
          }}
        />
      )}

      {dialog?.kind === "newGroup" && (
        <NewGroupDialog
          chats={chats ?? []}
          onClose={closeDialog}
          onCreated={(group) => {
            closeDialog();
            notify(t("group.created", { name: group.name }));
            setGroups((list) => [group, ...list.filter((g) => g.id !== group.id)]);
            openGroup(group.id);
            void refreshGroups();
          }}
        />
      )}
      {dialog?.kind === "groupMembers" && dialogGroup !== null && (
        <GroupMembersDialog
          group={dialogGroup}
          chats={chats ?? []}
          onClose={closeDialog}
          onChanged={groupChanged}
          notify={notify}
        />
      )}
      {dialog?.kind === "groupRename" && dialogGroup !== null && (
        <RenameGroupDialog
          group={dialogGroup}
          onClose={closeDialog}
          onDone={(group) => {
            closeDialog();
            notify(t("group.renamed"));
            groupChanged(group);
          }}
        />
      )}
      {dialog?.kind === "groupLeave" && dialogGroup !== null && (
        <LeaveGroupDialog
          group={dialogGroup}
          onClose={closeDialog}
          onDone={(group) => {
            closeDialog();
            notify(t("group.left", { name: group.name }));
            groupChanged(group);
          }}
        />
      )}

      <div class="toasts" role="status" aria-live="polite">
        {toasts.map((toast) => (
          <p key={toast.id} class="toast">
            {toast.text}
          </p>
        ))}
      </div>
    </div>
  );
}
