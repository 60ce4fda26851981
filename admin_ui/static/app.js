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

  // The browser's UTC offset, so a call's "when it happened" is stored in UTC.
  document.querySelectorAll("input[data-tz-offset]").forEach((input) => {
    input.value = String(new Date().getTimezoneOffset());
  });

  // Times are rendered in UTC; show them in the reader's own time zone.
  const pad = (n) => String(n).padStart(2, "0");
  document.querySelectorAll("time[datetime$='Z']").forEach((node) => {
    const moment = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) return;
    node.textContent = `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())} ${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
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
