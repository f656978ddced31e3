/** The connection state in the sidebar footer; a polite live region so changes are announced. */
import { useEffect, useState } from "preact/hooks";
import type { RelayConnection } from "../api/types";
import { useI18n } from "../i18n";
import { summarizeConnections } from "../lib/connection";

export function ConnectionIndicator({ connections }: { connections: RelayConnection[] }) {
  const { t } = useI18n();
  const summary = summarizeConnections(connections);
  // Count the retry down locally between engine updates.
  const [retry, setRetry] = useState(summary.retryInSeconds);
  useEffect(() => {
    setRetry(summary.retryInSeconds);
    if (summary.retryInSeconds === null) return;
    const timer = setInterval(() => setRetry((r) => (r === null || r <= 1 ? r : r - 1)), 1000);
    return () => clearInterval(timer);
  }, [connections]);

  let text: string;
  switch (summary.state) {
    case "connected":
      text =
        summary.connected === summary.total
          ? t("connection.connected")
          : t("connection.connectedSome", { connected: summary.connected, total: summary.total });
      break;
    case "connecting":
      text = t("connection.connecting");
      break;
    case "offline":
      text = retry !== null ? t("connection.offlineRetry", { seconds: retry }) : t("connection.offline");
      break;
    case "proxy_unreachable":
      text = t("connection.proxy_unreachable");
      break;
    case "none":
      text = t("connection.none");
      break;
  }
  const title = connections.map((c) => `${c.relayUrl} — ${c.state}`).join("\n");
  return (
    <div class={`connection connection-${summary.state}`} role="status" title={title}>
      <span class="connection-dot" aria-hidden="true" />
      <span class="sr-only">{t("connection.label")}: </span>
      <span class="connection-text">{text}</span>
    </div>
  );
}
