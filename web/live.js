// The live parts of the Streaming tab: refreshes every [data-live] section from its URL every
// few seconds, and copies connection parameters to the clipboard. Everything else on the page
// works without this script.
for (const el of document.querySelectorAll("[data-live]")) {
  const refresh = async () => {
    try {
      const response = await fetch(el.dataset.live, { credentials: "same-origin" });
      if (response.ok) {
        el.innerHTML = await response.text();
        el.setAttribute("aria-busy", "false");
      }
    } catch (e) {
      // Keep the last view; the next refresh tries again.
    }
    setTimeout(refresh, 3000);
  };
  refresh();
}
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(button.dataset.copy);
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
}
