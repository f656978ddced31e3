/**
 * Message search (Ctrl+F / Ctrl+Shift+F): a field, results newest first with the chat and the
 * date, keyboard first (type, ArrowDown/ArrowUp, Enter opens the chat at that message). Snippets
 * are text nodes with `<mark>` elements from the engine's offsets (`docs/engine.md` § Search).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { searchMessages } from "../api/commands";
import type { Chat, Group, SearchHit } from "../api/types";
import { useI18n } from "../i18n";
import { formatDateTime } from "../lib/format";
import { Dialog } from "./Dialog";
import { ErrorText } from "./ErrorText";
import { Highlighted } from "./Highlighted";

/** Results fetched per page. */
export const SEARCH_PAGE = 30;
/** Wait this long after the last keystroke before searching. */
const DEBOUNCE_MS = 150;

export function MessageSearch({
  chats,
  groups = [],
  onOpen,
  onClose,
}: {
  chats: readonly Chat[];
  groups?: readonly Group[];
  onOpen: (hit: SearchHit) => void;
  onClose: () => void;
}) {
  const { t, locale } = useI18n();
  const [query, setQuery] = useState("");
  const [hits, setHits] = useState<SearchHit[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [active, setActive] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [searched, setSearched] = useState(false);
  const generation = useRef(0);

  useEffect(() => {
    const mine = ++generation.current;
    if (query.trim() === "") {
      setHits([]);
      setNext(null);
      setSearched(false);
      return;
    }
    const timer = setTimeout(() => {
      searchMessages({ query, limit: SEARCH_PAGE, before: null })
        .then((page) => {
          if (mine !== generation.current) return;
          setHits(page.hits);
          setNext(page.next);
          setActive(0);
          setError(null);
          setSearched(true);
        })
        .catch((e: unknown) => mine === generation.current && setError(e));
    }, DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [query]);

  const loadMore = () => {
    if (next === null) return;
    const mine = generation.current;
    searchMessages({ query, limit: SEARCH_PAGE, before: next })
      .then((page) => {
        if (mine !== generation.current) return;
        setHits((current) => [...current, ...page.hits]);
        setNext(page.next);
      })
      .catch((e: unknown) => setError(e));
  };

  /** The chat's name: the contact's, or the group's. */
  const name = (hit: SearchHit) =>
    hit.groupId !== null
      ? (groups.find((g) => g.id === hit.groupId)?.name ?? "")
      : (chats.find((c) => c.contactId === hit.contactId)?.displayName ?? "");

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      setActive((i) => Math.min(i + 1, Math.max(hits.length - 1, 0)));
      if (active >= hits.length - 2) loadMore();
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      setActive((i) => Math.max(i - 1, 0));
    } else if (event.key === "Enter") {
      const hit = hits[active];
      if (hit !== undefined) {
        event.preventDefault();
        onOpen(hit);
      }
    }
  };

  return (
    <Dialog title={t("search.title")} onClose={onClose} size="large">
      <div class="search" role="search">
        <label for="message-search" class="sr-only">
          {t("search.label")}
        </label>
        <input
          id="message-search"
          data-autofocus
          type="search"
          value={query}
          placeholder={t("search.placeholder")}
          autoComplete="off"
          aria-controls="message-search-results"
          aria-activedescendant={hits[active] ? `search-hit-${active}` : undefined}
          onInput={(event) => setQuery(event.currentTarget.value)}
          onKeyDown={onKeyDown}
        />
      </div>
      <ErrorText error={error} />
      {searched && hits.length === 0 && (
        <p class="muted pad" role="status">
          {t("search.noResults", { query: query.trim() })}
        </p>
      )}
      <ul id="message-search-results" class="search-results" role="listbox" aria-label={t("search.results")}>
        {hits.map((hit, index) => (
          <li
            key={hit.messageId ?? `group-${hit.groupId}`}
            id={`search-hit-${index}`}
            role="option"
            aria-selected={index === active}
            class={`search-hit ${index === active ? "active" : ""}`}
            data-testid="search-hit"
            onClick={() => onOpen(hit)}
          >
            <span class="search-hit-head">
              <strong>{hit.outgoing ? t("search.you") : name(hit)}</strong>
              {hit.outgoing && <span class="muted"> → {name(hit)}</span>}
              <time dateTime={new Date(hit.at).toISOString()}>{formatDateTime(hit.at, locale)}</time>
            </span>
            <span class="search-hit-snippet" data-testid="search-snippet">
              {hit.cutBefore && "…"}
              <Highlighted text={hit.snippet} ranges={hit.snippetMatches} />
              {hit.cutAfter && "…"}
            </span>
          </li>
        ))}
      </ul>
      {next !== null && (
        <button type="button" class="button ghost small" onClick={loadMore}>
          {t("search.more")}
        </button>
      )}
    </Dialog>
  );
}
