/**
 * Dialogs about groups: a new group (pick contacts, name it), the member list with roles and the
 * admin's add / remove / promote, rename, and leave (with confirmation). Names from peers are
 * drawn as text only, bidi controls removed (`ui/src/lib/names.ts`).
 */
import { useMemo, useState } from "preact/hooks";
import {
  addGroupMember,
  createGroup,
  leaveGroup,
  promoteGroupMember,
  removeGroupMember,
  renameGroup,
} from "../api/commands";
import type { Chat, Group, GroupMember } from "../api/types";
import { useI18n } from "../i18n";
import { searchKey } from "../lib/format";
import { groupWithSafeNames, memberName } from "../lib/groups";
import { ConfirmDialog } from "./ContactDialogs";
import { Dialog } from "./Dialog";
import { ErrorText } from "./ErrorText";
import { FormDialog, SaveDialog, TextField, useCommand } from "./Form";

const NAME_MAX = 64;

/** "New group": the name, then the contacts to add (Space toggles one), Enter creates. */
export function NewGroupDialog({
  chats,
  onClose,
  onCreated,
}: {
  chats: Chat[];
  onClose: () => void;
  onCreated: (group: Group) => void;
}) {
  const { t } = useI18n();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [filter, setFilter] = useState("");
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const { busy, error, run } = useCommand();
  const candidates = useMemo(() => chats.filter((chat) => !chat.blocked), [chats]);
  const shown = useMemo(() => {
    const needle = searchKey(filter.trim());
    return needle === "" ? candidates : candidates.filter((chat) => searchKey(chat.displayName).includes(needle));
  }, [candidates, filter]);

  const toggle = (contactId: string) =>
    setPicked((current) => {
      const next = new Set(current);
      if (next.has(contactId)) next.delete(contactId);
      else next.add(contactId);
      return next;
    });

  const submit = (event: Event) => {
    event.preventDefault();
    if (busy || name.trim() === "" || picked.size === 0) return;
    void run(
      async () => {
        const group = await createGroup({
          name: name.trim(),
          description: description.trim(),
          contactIds: candidates.filter((c) => picked.has(c.contactId)).map((c) => c.contactId),
        });
        onCreated(groupWithSafeNames(group));
      },
      { staysBusy: true },
    );
  };

  return (
    <FormDialog
      title={t("group.newTitle")}
      onClose={onClose}
      onSubmit={submit}
      error={error}
      submitLabel={t("group.create")}
      submitDisabled={busy || name.trim() === "" || picked.size === 0}
      formTestId="new-group-form"
      submitTestId="new-group-create"
    >
      <NameFields
        idPrefix="new-group"
        name={name}
        onName={setName}
        description={description}
        onDescription={setDescription}
        nameTestId="new-group-name"
      />
      {candidates.length === 0 ? (
        <p class="muted">{t("group.noContacts")}</p>
      ) : (
        <fieldset class="field group-pick">
          <legend>{t("group.pickLabel")}</legend>
          <p class="muted small">{t("group.pickHint")}</p>
          {candidates.length > 6 && (
            <input
              type="search"
              value={filter}
              aria-label={t("group.pickFilter")}
              placeholder={t("group.pickFilter")}
              autoComplete="off"
              onInput={(event) => setFilter(event.currentTarget.value)}
            />
          )}
          <ul class="pick-list" data-testid="new-group-contacts">
            {shown.map((chat) => (
              <li key={chat.contactId}>
                <label class="pick-row">
                  <input
                    type="checkbox"
                    checked={picked.has(chat.contactId)}
                    data-testid="new-group-contact"
                    data-contact-id={chat.contactId}
                    onChange={() => toggle(chat.contactId)}
                    onKeyDown={(event) => {
                      // Enter in the list creates the group, as in the name field.
                      if (event.key === "Enter") submit(event);
                    }}
                  />
                  <span class="truncate">{chat.displayName}</span>
                </label>
              </li>
            ))}
          </ul>
        </fieldset>
      )}
    </FormDialog>
  );
}

/** A group's name (required, focused first) and description fields; ids `<idPrefix>-name` and `-description`. */
function NameFields({
  idPrefix,
  name,
  onName,
  description,
  onDescription,
  nameTestId,
}: {
  idPrefix: string;
  name: string;
  onName: (name: string) => void;
  description: string;
  onDescription: (description: string) => void;
  nameTestId?: string;
}) {
  const { t } = useI18n();
  return (
    <>
      <TextField
        id={`${idPrefix}-name`}
        label={t("group.nameLabel")}
        value={name}
        onValue={onName}
        maxLength={NAME_MAX}
        required
        autofocus
        testId={nameTestId}
      />
      <TextField
        id={`${idPrefix}-description`}
        label={t("group.descriptionLabel")}
        value={description}
        onValue={onDescription}
        maxLength={200}
      />
    </>
  );
}

type MembersStep = { kind: "list" } | { kind: "confirm-remove"; member: GroupMember };

/**
 * The member list with roles. An admin can add a contact, make a member an admin and remove a
 * member (after a confirmation step in the same dialog: Cancel is focused first).
 */
export function GroupMembersDialog({
  group,
  chats,
  onClose,
  onChanged,
  notify,
}: {
  group: Group;
  chats: Chat[];
  onClose: () => void;
  onChanged: (group: Group) => void;
  notify: (text: string) => void;
}) {
  const { t } = useI18n();
  const [step, setStep] = useState<MembersStep>({ kind: "list" });
  const command = useCommand();
  const { busy, error, setError } = command;
  const [adding, setAdding] = useState("");
  const memberContacts = new Set(group.members.map((m) => m.contactId).filter((id) => id !== null));
  const addable = chats.filter((chat) => !chat.blocked && !memberContacts.has(chat.contactId));
  const canManage = group.isAdmin && group.isMember;

  const run = (action: () => Promise<Group>, done: string) =>
    command.run(async () => {
      onChanged(groupWithSafeNames(await action()));
      notify(done);
      setStep({ kind: "list" });
    });

  if (step.kind === "confirm-remove") {
    const name = memberName(step.member, t);
    return (
      <Dialog
        key="confirm-remove"
        title={t("group.removeTitle", { name })} onClose={() => setStep({ kind: "list" })} size="small" describedBy="group-remove-body">
        <p id="group-remove-body">{t("group.removeBody", { name })}</p>
        <ErrorText error={error} />
        <div class="row end">
          <button type="button" class="button secondary" onClick={() => setStep({ kind: "list" })} data-autofocus>
            {t("common.cancel")}
          </button>
          <button
            type="button"
            class="button danger"
            disabled={busy}
            data-testid="group-remove-confirm"
            onClick={() =>
              void run(() => removeGroupMember({ groupId: group.id, memberKey: step.member.key }), t("group.removed", { name }))
            }
          >
            {t("group.remove")}
          </button>
        </div>
      </Dialog>
    );
  }

  const members = [...group.members].sort(
    (a, b) => Number(b.isMe) - Number(a.isMe) || Number(b.isAdmin) - Number(a.isAdmin),
  );
  return (
    <Dialog key="list" title={t("group.membersTitle", { name: group.name })} onClose={onClose}>
      <ul class="member-list" data-testid="group-members" aria-label={t("group.pickLabel")}>
        {members.map((member) => {
          const name = memberName(member, t);
          return (
            <li key={member.key} class="member-row" data-testid="group-member" data-member-key={member.key}>
              <span class="member-name truncate" data-testid="group-member-name">
                {name}
              </span>
              <span class={`role-badge ${member.isAdmin ? "admin" : ""}`} data-testid="group-member-role">
                {member.isAdmin ? t("group.admin") : t("group.member")}
              </span>
              {canManage && !member.isMe && !member.isAdmin && (
                <span class="member-actions">
                  <button
                    type="button"
                    class="button ghost small"
                    disabled={busy}
                    data-testid="group-member-promote"
                    onClick={() =>
                      void run(
                        () => promoteGroupMember({ groupId: group.id, memberKey: member.key }),
                        t("group.promoted", { name }),
                      )
                    }
                  >
                    {t("group.promote")}
                  </button>
                  <button
                    type="button"
                    class="button ghost small danger-text"
                    disabled={busy}
                    data-testid="group-member-remove"
                    onClick={() => {
                      setError(null);
                      setStep({ kind: "confirm-remove", member });
                    }}
                  >
                    {t("group.remove")}
                  </button>
                </span>
              )}
            </li>
          );
        })}
      </ul>
      {canManage && (
        <form
          class="row add-member"
          onSubmit={(event) => {
            event.preventDefault();
            const chat = addable.find((c) => c.contactId === adding);
            if (chat === undefined) return;
            void run(
              () => addGroupMember({ groupId: group.id, contactId: chat.contactId }),
              t("group.added", { name: chat.displayName }),
            ).then(() => setAdding(""));
          }}
        >
          {addable.length === 0 ? (
            <p class="muted small">{t("group.addNone")}</p>
          ) : (
            <>
              <label for="group-add-member" class="sr-only">
                {t("group.addLabel")}
              </label>
              <select
                id="group-add-member"
                value={adding}
                data-testid="group-add-select"
                onChange={(event) => setAdding(event.currentTarget.value)}
              >
                <option value="">{t("group.addLabel")}…</option>
                {addable.map((chat) => (
                  <option key={chat.contactId} value={chat.contactId}>
                    {chat.displayName}
                  </option>
                ))}
              </select>
              <button type="submit" class="button secondary" disabled={busy || adding === ""} data-testid="group-add-member">
                {t("common.add")}
              </button>
            </>
          )}
        </form>
      )}
      <ErrorText error={error} />
    </Dialog>
  );
}

/** What a dialog that changes the group gets: the group, and where its new state goes. */
interface GroupChangeProps {
  group: Group;
  onClose: () => void;
  /** The group as the command left it (names made safe to draw). */
  onDone: (group: Group) => void;
}

/** Rename the group (admins): name and description. */
export function RenameGroupDialog({ group, onClose, onDone }: GroupChangeProps) {
  const { t } = useI18n();
  const [name, setName] = useState(group.name);
  const [description, setDescription] = useState(group.description);
  const save = async () =>
    onDone(groupWithSafeNames(await renameGroup({ groupId: group.id, name: name.trim(), description: description.trim() })));
  return (
    <SaveDialog title={t("group.renameTitle")} canSave={name.trim() !== ""} save={save} onClose={onClose}>
      <NameFields
        idPrefix="group-rename"
        name={name}
        onName={setName}
        description={description}
        onDescription={setDescription}
      />
    </SaveDialog>
  );
}

/** Confirms leaving: Cancel is focused first; the command's error keeps the dialog open. */
export function LeaveGroupDialog({ group, onClose, onDone }: GroupChangeProps) {
  const { t } = useI18n();
  let left: Group = group;
  return (
    <ConfirmDialog
      title={t("group.leaveTitle", { name: group.name })}
      body={t("group.leaveBody")}
      bodyId="group-leave-body"
      confirmLabel={t("group.leaveConfirm")}
      tone="danger"
      action={async () => {
        left = groupWithSafeNames(await leaveGroup({ groupId: group.id }));
      }}
      onClose={onClose}
      onDone={() => onDone(left)}
      testId="group-leave-confirm"
    />
  );
}
