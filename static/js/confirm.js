// A form, or the button that submits it, with data-confirm asks before it is sent.
// (No inline onsubmit/onclick: pages carry no inline script, so that a CSP can forbid it.)
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const text = (button && button.dataset.confirm) || event.target.dataset.confirm;
  if (text && !window.confirm(text)) {
    event.preventDefault();
  }
});
