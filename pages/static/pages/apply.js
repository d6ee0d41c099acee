// The apply form refuses, before anything is sent, what can never pass: GPU-hours outside the
// program's bounds, a window longer than it allows, a window in the past. The server checks
// the same rules again (allocations.services.applications.request_refusals).
(function () {
  const form = document.getElementById("apply-form");
  if (!form) return;
  const rules = JSON.parse(document.getElementById("program-rules").textContent);
  const text = JSON.parse(document.getElementById("apply-messages").textContent);
  const byId = Object.fromEntries(rules.map((rule) => [rule.id, rule]));
  const field = (name) => form.elements[name];
  const fill = (template, values) =>
    template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key] ?? ""));
  const show = (name, message) => {
    const slot = form.querySelector(`.error[data-for="${name}"]`);
    if (slot) slot.textContent = message || "";
    const box = document.getElementById(`field-${name}`);
    if (box) box.classList.toggle("invalid", Boolean(message));
  };
  const days = (start, end) => Math.round((Date.parse(end) - Date.parse(start)) / 86400000) + 1;

  function problems() {
    const found = {};
    const rule = byId[field("program").value];
    const hours = Number(field("gpu_hours").value);
    const start = field("start_date").value;
    const end = field("end_date").value;
    if (rule && field("gpu_hours").value !== "" &&
        (hours < rule.min_gpu_hours || hours > rule.max_gpu_hours)) {
      found.gpu_hours = fill(text.over, {program: rule.name, min: rule.min_gpu_hours.toLocaleString(document.documentElement.lang), max: rule.max_gpu_hours.toLocaleString(document.documentElement.lang)});
    }
    if (start && start < text.today) found.start_date = text.past;
    if (start && end && end < start) found.end_date = text.order;
    else if (rule && start && end && days(start, end) > rule.max_duration_days) {
      found.end_date = fill(text.long, {program: rule.name, days: rule.max_duration_days});
    }
    return found;
  }

  function check() {
    const found = problems();
    for (const name of ["gpu_hours", "start_date", "end_date"]) show(name, found[name]);
    return Object.keys(found).length === 0;
  }

  for (const name of ["program", "gpu_hours", "start_date", "end_date"]) {
    field(name).addEventListener("change", check);
    field(name).addEventListener("input", check);
  }
  form.addEventListener("submit", (event) => {
    if (!check()) {
      event.preventDefault();
      form.dataset.refused = "true";
    }
  });
})();
