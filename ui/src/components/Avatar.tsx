/** A round avatar with initials; the colour comes from the contact id (CSS classes, no inline styles). */
import { avatarTone, initials } from "../lib/format";

export function Avatar({ id, name, size = "medium" }: { id: string; name: string; size?: "small" | "medium" | "large" }) {
  return (
    <span class={`avatar avatar-${size} tone-${avatarTone(id)}`} aria-hidden="true">
      {initials(name)}
    </span>
  );
}
