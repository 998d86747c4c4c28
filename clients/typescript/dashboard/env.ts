// A project card's "Environment" section: its env vars (read and edited as one map, saved with
// setEnv) and its secrets (name, last four, when and by whom; set through a password input, never
// shown). A section is built once per project and kept across refreshes, so a half-typed form
// survives the page's re-render; it reloads its own data after each change.
import { SandmanError } from "../src/index.js";
import type { Sandman, SecretAnswer } from "../src/index.js";
import { h } from "./dom.js";

const sections = new Map<string, HTMLElement>();

/** The section of `projectId`, built on first use; sections of projects no longer listed are dropped. */
export function environment(client: Sandman, projectId: string): HTMLElement {
  let section = sections.get(projectId);
  if (!section) {
    section = build(client, projectId);
    sections.set(projectId, section);
  }
  return section;
}

export function forgetExcept(projectIds: string[]) {
  for (const id of sections.keys()) if (!projectIds.includes(id)) sections.delete(id);
}

const masked = (s: SecretAnswer) => (s.set ? `••••${s.lastFour ?? ""}` : "not set (copied from a fork's source)");

function build(client: Sandman, projectId: string): HTMLElement {
  const vars = h("dl", { class: "vars" });
  const secrets = h("ul", { class: "secrets" });
  const note = h("p", { class: "muted" });
  const error = h("p", { class: "error", role: "alert" });
  let current: Record<string, string> = {};

  const run = async (change: () => Promise<unknown>) => {
    error.textContent = "";
    try {
      await change();
      await refresh();
      return true;
    } catch (failure) {
      error.textContent = failure instanceof SandmanError ? `${failure.status ? `${failure.status}: ` : ""}${failure.message}` : String(failure);
      return false;
    }
  };
  const remove = (label: string, onClick: () => void) => {
    const button = h("button", { type: "button", class: "remove", title: label }, "×");
    button.addEventListener("click", onClick);
    return button;
  };

  async function refresh() {
    const [env, list] = await Promise.all([client.getEnv(projectId), client.listSecrets(projectId)]);
    current = env.vars;
    const names = Object.keys(current).sort();
    vars.replaceChildren(
      ...names.flatMap((name) => [
        h("dt", { class: "mono" }, name),
        h(
          "dd",
          { class: "mono", "data-var": name },
          current[name]!,
          remove(`remove ${name}`, () => {
            const { [name]: _, ...rest } = current;
            void run(() => client.setEnv(projectId, rest));
          }),
        ),
      ]),
    );
    if (!names.length) vars.replaceChildren(h("dt", { class: "muted" }, "no env vars"));
    secrets.replaceChildren(
      ...list.items.map((s) =>
        h(
          "li",
          { "data-secret": s.name },
          h("span", { class: "mono" }, `${s.name} ${masked(s)}`),
          ` → ${s.hosts.join(", ")} · updated ${new Date(s.updatedAt).toLocaleString()} by ${s.updatedBy} `,
          remove(`delete ${s.name}`, () => void run(() => client.deleteSecret(projectId, s.name))),
        ),
      ),
    );
    if (!list.items.length) secrets.replaceChildren(h("li", { class: "muted" }, "no secrets"));
    note.textContent = env.restartRequired || list.restartRequired ? "the running sandbox has older values: they apply at its next start" : "";
  }

  const varName = h("input", { name: "name", placeholder: "NAME", autocomplete: "off", required: "" });
  const varValue = h("input", { name: "value", placeholder: "value", autocomplete: "off" });
  const varForm = h("form", { class: "env-form", "data-form": "env" }, varName, varValue, h("button", { type: "submit" }, "Set var"));
  varForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void run(() => client.setEnv(projectId, { ...current, [varName.value.trim()]: varValue.value })).then((ok) => ok && varForm.reset());
  });

  const secretName = h("input", { name: "name", placeholder: "SECRET_NAME", autocomplete: "off", required: "" });
  const secretValue = h("input", { name: "value", type: "password", placeholder: "value (write-only)", autocomplete: "new-password", required: "" });
  const secretHosts = h("input", { name: "hosts", placeholder: "api.example.com, …", autocomplete: "off", required: "" });
  const secretForm = h("form", { class: "env-form", "data-form": "secret" }, secretName, secretValue, secretHosts, h("button", { type: "submit" }, "Set secret"));
  secretForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const hosts = secretHosts.value.split(/[\s,]+/).filter(Boolean);
    const value = secretValue.value;
    secretValue.value = ""; // the value leaves the page as it is sent
    void run(() => client.putSecret(projectId, secretName.value.trim(), { value, hosts })).then((ok) => ok && secretForm.reset());
  });

  void run(async () => {});
  return h("section", { class: "environment", "data-env": projectId }, h("h4", {}, "Environment"), vars, varForm, h("h4", {}, "Secrets"), secrets, secretForm, note, error);
}
