// Small progressive enhancements; every page also works without JavaScript.
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // Done checkboxes: send on change, then update the row and the open count in place and say
  // so in the live region (the words come from the page and the server, in the reader's
  // language). The box stays enabled while sending (a disabled box would lose the keyboard
  // focus); a tick in the meantime is refused instead.
  const live = document.getElementById("live");
  document.querySelectorAll("form.done-form").forEach((form) => {
    const box = form.querySelector("input[type=checkbox][name=done]");
    if (!box || box.disabled) return;
    let sending = false;
    box.addEventListener("click", (event) => {
      if (sending) event.preventDefault();
    });
    box.addEventListener("change", async () => {
      const body = new FormData(form);
      sending = true;
      form.setAttribute("aria-busy", "true");
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
        const said = result.done ? form.dataset.saidDone : form.dataset.saidOpen;
        if (live && said) live.textContent = [said, result.open_words].filter(Boolean).join(" ");
      } catch {
        form.submit(); // let the server answer the ordinary way (and show any error)
      } finally {
        sending = false;
        form.removeAttribute("aria-busy");
      }
    });
  });

  // A page that opens with a flash message or a notice (the answer to a form just sent: mail
  // assigned, entries marked done, name or signature saved: p.flash[role=status]) moves the
  // focus to it, so a screen reader reads it and the next Tab goes on from there instead of
  // from the top of the page. A page opened at a row or section (#entry-…: mail to a customer
  // queued; #time-zone) keeps the keyboard there: a message inside that section takes the
  // focus, one elsewhere is said in #live. A standing warning (.flash without a role) is no
  // answer and never takes the focus.
  const flashes = document.querySelector("main .flashes, main .flash[role=status]");
  if (flashes) {
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (!target) {
      flashes.setAttribute("tabindex", "-1");
      flashes.focus();
    } else if (target.contains(flashes)) {
      // after the browser has scrolled to the section, which would take the focus back
      flashes.setAttribute("tabindex", "-1");
      window.addEventListener("load", () => flashes.focus());
    } else if (live) {
      const words = flashes.textContent.replace(/\s+/g, " ").trim();
      window.addEventListener("load", () => { live.textContent = words; });
    }
  } else {
    // A form sent back refused: the first refused field (aria-invalid, its message named in
    // aria-describedby) takes the focus, so a screen reader says why and the keyboard is
    // where the correction goes.
    const refused = document.querySelector("main [aria-invalid=true]");
    if (refused) refused.focus();
  }

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

// Enter on a checkbox sends its form with the form's first button (Chromium): on a bulk box
// ("Select …", "Select all N matching") that is "Mark done" for every chosen entry, on a done
// box a reload that loses the focus. Space ticks a box; Enter on one of these does nothing.
document.addEventListener("keydown", (event) => {
  const box = event.target;
  if (event.key !== "Enter" || !(box instanceof HTMLInputElement) || box.type !== "checkbox") return;
  const form = box.form;
  if (form && (form.id === "bulk-form" || form.classList.contains("done-form"))) {
    event.preventDefault();
  }
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
