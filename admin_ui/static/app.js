// Small progressive enhancements; every page also works without JavaScript.
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // Done checkboxes: send on change, then update the row and the open count in place.
  document.querySelectorAll("form.done-form").forEach((form) => {
    const box = form.querySelector("input[type=checkbox][name=done]");
    if (!box || box.disabled) return;
    box.addEventListener("change", async () => {
      const body = new FormData(form); // before disabling: disabled fields are left out
      box.disabled = true;
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body,
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (!response.ok) throw new Error(String(response.status));
        const result = await response.json();
        box.checked = result.done;
        const row = form.closest(".entry, .entry-detail");
        if (row) {
          row.classList.toggle("done", result.done);
          row.classList.toggle("open", !result.done);
        }
        document.querySelectorAll("#open-count, [data-open-count]").forEach((count) => {
          // the server counts up to 1000 open entries and no further (storage COUNT_LIMIT)
          count.textContent = result.open_count >= 1000 ? "999+" : String(result.open_count);
        });
        box.disabled = false;
      } catch {
        box.disabled = false;
        form.submit(); // let the server answer the ordinary way (and show any error)
      }
    });
  });

  // Setup: the agency's time zone starts as the browser's (the server shows UTC without script).
  document.querySelectorAll("input[data-browser-time-zone]").forEach((input) => {
    try {
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone && input.value === "UTC") input.value = zone;
    } catch (error) {
      // no Intl: UTC stays
    }
  });
});

// Bulk actions: "select all on this page" ticks every row's box; a button that deletes asks.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const boxes = () => document.querySelectorAll("input[type=checkbox][name=entry][form=bulk-form]");
  const page = form.querySelector("input[data-select-page]");
  if (page) {
    page.addEventListener("change", () => {
      boxes().forEach((box) => { box.checked = page.checked; });
    });
  }
  form.querySelectorAll("button[data-confirm]").forEach((button) => {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
});
